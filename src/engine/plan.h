#pragma once

#include <optional>
#include <string>

#include "engine/operation.h"
#include "engine/workspace.h"
#include "plan/plan.h"

namespace driftless::engine {

/// What to plan.
struct PlanRequest {
  std::string env;              ///< the environment (selected in the workspace)
  bool list_unchanged = false;  ///< list unchanged resources too (JSON, saved plans)
};

/// The outcome of planning.
struct PlanReport {
  /// Set when no plan could be made (declaration errors, a step that cannot be planned).
  Failure failure;
  /// The plan, its stepwise steps in Plan::steps; none when `failure` says why. Its
  /// `problems` may hold errors found while planning (a plan that cannot be applied).
  std::optional<plan::Plan> plan;

  /// True when the plan was made and has no errors.
  bool ok() const { return plan.has_value() && !plan->problems.HasErrors(); }
  /// True when applying it would change something (changes, drift to revert, or steps).
  bool HasChanges() const {
    return plan && (plan->HasChanges() || plan->DriftCount() > 0 || !plan->steps.empty());
  }
};

/// Plans the selected commit for `request.env`, with the steps of a stepwise upgrade that come
/// before it (engine/steps.h). Reads state; writes nothing.
PlanReport PlanEnvironment(Workspace& ws, const PlanRequest& request);

}  // namespace driftless::engine
