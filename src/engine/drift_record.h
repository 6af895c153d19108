#pragma once

#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "apply/applier.h"
#include "config/evaluate.h"
#include "plan/plan.h"
#include "state/state_store.h"

namespace driftless::engine {

/// What one drift check wrote to the timeline.
struct DriftCheckRecord {
  std::vector<state::DriftRecord> opened;  ///< drift seen for the first time
  std::vector<std::string> undone;         ///< open drift this check saw gone ("undone")
};

/// Records what a plan saw of drift: drifted resources open (or continue) a drift; open drift of
/// a resource that the plan compared (all, or those in `only`) and found clean is resolved as
/// "undone". Only open drift is looked at: at 100,000 resources, asking about each would cost
/// more than the scan. Resources with `drift: ignore` are left as they are. `actors` (may be
/// null) names who changed a resource, by address, when its target told (a watcher's hints).
Result<DriftCheckRecord> RecordDriftCheck(
    state::StateStore& store, const std::string& env, const config::Environment& environment,
    const plan::Plan& plan, const std::set<std::string, std::less<>>* only,
    const std::map<std::string, std::string, std::less<>>* actors = nullptr);

/// The drifted resources of a plan and their actions (taken before the plan moves into Apply).
std::vector<std::pair<std::string, plan::Action>> DriftedOf(const plan::Plan& plan);

/// After an apply: the drift of every resource in `drifted` that it healed (resolved as
/// `resolution`) or recorded (resolved as "declaration") is closed; failed ones stay open.
void ResolveAppliedDrift(state::StateStore& store, const std::string& env,
                         const std::vector<std::pair<std::string, plan::Action>>& drifted,
                         const apply::ApplyResult& result, const std::string& resolution);

/// The addresses whose change failed or was skipped in an apply.
std::set<std::string, std::less<>> FailedAddresses(const apply::ApplyResult& result);

}  // namespace driftless::engine
