#include "engine/prune.h"

#include <map>

#include "base/identity.h"
#include "engine/environments.h"

namespace driftless::engine {

Observer& PruneObserver::DestroyObserver(const PruneCandidate&) { return ignore_; }

PruneReport Prune(Workspace& ws, const PruneRequest& request, PruneObserver& observer) {
  PruneReport report;
  Result<source::GitRepository*> repo = ws.Repo();
  if (!repo.ok()) {
    report.failure.message = repo.error().message;
    return report;
  }
  if (*repo == nullptr) {
    report.failure.message = "env prune needs a Git repository: environments are branches";
    return report;
  }
  Result<state::StateStore*> store = ws.State();
  if (!store.ok()) {
    report.failure.message = store.error().message;
    return report;
  }
  Result<std::vector<state::Environment>> known = (*store)->ListEnvironments();
  if (!known.ok()) {
    report.failure.message = known.error().message;
    return report;
  }
  Result<const std::vector<BranchEnvironment>*> branches = ws.BranchEnvironments();
  if (!branches.ok()) {
    report.failure.message = branches.error().message;
    return report;
  }
  // Every environment a branch maps to (protected as its last branch says) or the state knows.
  // Only a gone or expired one is read further: a server lists them at every fetch, and the
  // others cost nothing here.
  struct Row {
    bool has_branch = false;
    bool is_protected = false;
  };
  std::map<std::string, Row> rows;
  for (const auto& be : **branches) {
    Row& r = rows[be.match.name];
    r.has_branch = true;
    r.is_protected = be.match.is_protected();
  }
  for (const state::Environment& e : *known) rows.try_emplace(e.name);
  const int64_t now = NowUnix();
  for (const auto& [name, r] : rows) {
    PruneCandidate c;
    c.environment = name;
    bool is_protected = r.is_protected;
    if (r.has_branch) {
      for (const auto& be : **branches) {
        if (be.match.name != name) continue;
        int64_t ttl = be.match.ttl_seconds();
        if (ttl > 0 && now - be.branch.head.time > ttl) {
          c.reason = "no commit on " + be.branch.name + " for " +
                     std::to_string((now - be.branch.head.time) / 3600) + "h (ttl " +
                     std::to_string(ttl / 3600) + "h)";
        }
      }
      if (c.reason.empty()) continue;
    }
    Result<std::vector<state::ResourceState>> resources = (*store)->ListResources(name);
    c.resources = resources.ok() ? resources->size() : 0;
    if (c.resources == 0) continue;  // nothing to destroy (never applied, or destroyed already)
    if (!r.has_branch) {
      c.reason = "its branch is gone";
      // Protection is read from the commit it runs (the branch's rules are gone with it).
      Workspace probe(ws.options());
      probe.UseState(*store);
      Diagnostics d;
      Result<config::Environment*> e = MakeError("no commit to read");
      if (probe.Select(name).ok()) e = probe.Evaluate(name, false, false, d);
      if (!e.ok()) {
        c.decision = PruneCandidate::Decision::kUnreadable;
        ++report.failures;
        observer.OnCandidate(c);
        report.candidates.push_back(std::move(c));
        continue;
      }
      is_protected = (*e)->match().is_protected();
    }
    c.decision = is_protected       ? PruneCandidate::Decision::kProtected
                 : !request.destroy ? PruneCandidate::Decision::kWouldDestroy
                                    : PruneCandidate::Decision::kDestroy;
    if (c.decision == PruneCandidate::Decision::kDestroy && request.stop != nullptr &&
        request.stop->stop_requested()) {
      report.failure.message = "stopped before destroying environment " + c.environment;
      return report;
    }
    observer.OnCandidate(c);
    report.candidates.push_back(c);
    if (c.decision != PruneCandidate::Decision::kDestroy) continue;
    Workspace each(ws.options());
    Status s = each.Select(c.environment);
    if (!s.ok()) {
      ++report.failures;
      observer.OnDestroyed(c, s.error().message, ApplyReport());
      continue;
    }
    ApplyRequest destroy;
    destroy.destroy = true;
    destroy.stop = request.stop;
    ApplyReport done = ApplyEnvironment(each, destroy, observer.DestroyObserver(c));
    if (!done.ok()) ++report.failures;
    observer.OnDestroyed(c, "", done);
  }
  return report;
}

}  // namespace driftless::engine
