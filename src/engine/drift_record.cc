#include "engine/drift_record.h"

#include "base/identity.h"

namespace driftless::engine {

Result<DriftCheckRecord> RecordDriftCheck(
    state::StateStore& store, const std::string& env, const config::Environment& environment,
    const plan::Plan& plan, const std::set<std::string, std::less<>>* only,
    const std::map<std::string, std::string, std::less<>>* actors) {
  std::vector<state::DriftObservation> drifted;
  std::set<std::string, std::less<>> seen;
  for (const auto& c : plan.changes) {
    if (!c.drift) continue;
    std::string actor;
    if (actors != nullptr) {
      if (auto it = actors->find(c.address); it != actors->end()) actor = it->second;
    }
    drifted.push_back({c.address, c.drift_diff, std::move(actor)});
    seen.insert(c.address);
  }
  Result<std::vector<state::DriftRecord>> open = store.ListDrift(env, false, 1000000);
  if (!open.ok()) return open.error();
  DriftCheckRecord out;
  for (const auto& d : *open) {
    if (seen.count(d.address) || (only != nullptr && only->count(d.address) == 0)) continue;
    int i = environment.IndexOf(d.address);
    if (i >= 0 && environment.resources()[static_cast<size_t>(i)].decl->policy.drift ==
                      config::Policy::Drift::kIgnore)
      continue;
    out.undone.push_back(d.address);
  }
  Result<std::vector<state::DriftRecord>> opened =
      store.ObserveDrift(env, drifted, out.undone, "undone", NowUnix());
  if (!opened.ok()) return opened.error();
  out.opened = std::move(*opened);
  return out;
}

std::set<std::string, std::less<>> FailedAddresses(const apply::ApplyResult& result) {
  std::set<std::string, std::less<>> failed;
  for (const auto& e : result.errors) failed.insert(e.substr(0, e.find(':')));  // "ADDR: why"
  return failed;
}

std::vector<std::pair<std::string, plan::Action>> DriftedOf(const plan::Plan& plan) {
  std::vector<std::pair<std::string, plan::Action>> out;
  for (const auto& c : plan.changes) {
    if (c.drift) out.emplace_back(c.address, c.action);
  }
  return out;
}

void ResolveAppliedDrift(state::StateStore& store, const std::string& env,
                         const std::vector<std::pair<std::string, plan::Action>>& drifted,
                         const apply::ApplyResult& result, const std::string& resolution) {
  const std::set<std::string, std::less<>> failed = FailedAddresses(result);
  std::vector<std::string> healed, recorded;
  for (const auto& [address, action] : drifted) {
    if (failed.count(address)) continue;
    (action == plan::Action::kRecord ? recorded : healed).push_back(address);
  }
  const int64_t now = NowUnix();
  if (!healed.empty()) (void)store.ObserveDrift(env, {}, healed, resolution, now);
  if (!recorded.empty()) (void)store.ObserveDrift(env, {}, recorded, "declaration", now);
}

}  // namespace driftless::engine
