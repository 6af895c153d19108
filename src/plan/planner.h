#pragma once

#include <set>
#include <string>
#include <vector>

#include "config/evaluate.h"
#include "plan/plan.h"
#include "state/state_store.h"

namespace driftless::plan {

/// How a plan is made.
struct PlanOptions {
  int parallelism = 8;   ///< threads reading live objects
  bool destroy = false;  ///< plan the deletion of everything in state
  bool refresh = true;   ///< read live objects (false: compare declared with applied only)
  /// List unchanged resources in Plan::changes too (action no-op), as `--json` and plan files
  /// do; otherwise they are only counted, which keeps a large plan small.
  bool list_unchanged = false;
  /// When set, only these addresses are planned (a step of a stepwise upgrade): every other
  /// declared resource counts as unchanged and no other state row is deleted.
  const std::set<std::string, std::less<>>* only = nullptr;
};

/// What the planner knows of the environment's state.
struct PriorState {
  state::Environment environment;
  std::vector<state::ResourceState> resources;  ///< sorted by address
  std::vector<state::ChangeRecord> pending;     ///< changes in doubt from interrupted applies
};

/// The three-way comparison: declared (env) vs applied (prior) vs live (read through the
/// targets). Resources only in state are deleted in reverse dependency order. Errors reading
/// live objects fail the plan with the resource's address.
Result<Plan> MakePlan(config::Environment& env, const PriorState& prior,
                      const PlanOptions& options);

}  // namespace driftless::plan
