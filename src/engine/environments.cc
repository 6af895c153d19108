#include "engine/environments.h"

#include <map>

#include "base/identity.h"

namespace driftless::engine {

namespace {

std::string Short(const std::string& id) { return id.substr(0, 7); }

}  // namespace

Result<std::vector<EnvironmentSummary>> SummarizeEnvironments(Workspace& ws) {
  Result<state::StateStore*> store = ws.State();
  if (!store.ok()) return store.error();
  auto envs = (*store)->ListEnvironments();
  if (!envs.ok()) return envs.error();
  Result<const std::vector<BranchEnvironment>*> branches = ws.BranchEnvironments();
  if (!branches.ok()) return branches.error();
  Result<source::GitRepository*> repo = ws.Repo();
  if (!repo.ok()) return repo.error();
  std::map<std::string, EnvironmentSummary> rows;
  for (const auto& be : **branches) {
    EnvironmentSummary& r = rows[be.match.name];
    r.name = be.match.name;
    r.branch = be.branch.name;
    r.head = be.branch.head.short_id;
    r.is_protected = be.match.is_protected();
    r.status = "not applied yet";
  }
  for (const auto& e : *envs) {
    EnvironmentSummary& r = rows[e.name];
    r.name = e.name;
    r.serial = e.serial;
    if (*repo != nullptr && r.branch.empty()) r.branch = "(gone)";
  }
  for (auto& [name, r] : rows) {
    auto resources = (*store)->ListResources(name);
    auto last = (*store)->ListApplies(name, 1);
    auto lock = (*store)->GetLock(name);
    r.resources = resources.ok() ? resources->size() : 0;
    if (last.ok() && !last->empty()) {
      r.last_apply = FormatTime((*last)[0].started_at);
      r.status = (*last)[0].kind == "apply" ? (*last)[0].status
                                            : (*last)[0].kind + " " + (*last)[0].status;
    }
    Result<std::string> applied = ws.AppliedCommit(name);
    if (applied.ok()) r.applied = Short(*applied);
    if (*repo != nullptr && applied.ok() && !applied->empty() && !r.head.empty()) {
      for (const auto& be : **branches) {
        if (be.match.name != name) continue;
        Result<int64_t> n = (*repo)->CountBetween(*applied, be.branch.head.id);
        if (n.ok()) r.behind = *n;
      }
    }
    if (r.branch == "(gone)" && r.resources > 0) r.status += ", branch deleted: env prune";
    if (lock.ok() && *lock) r.status += " (locked by " + (*lock)->holder.UserAtHost() + ")";
  }
  std::vector<EnvironmentSummary> out;
  for (auto& [name, r] : rows) out.push_back(std::move(r));
  return out;
}

}  // namespace driftless::engine
