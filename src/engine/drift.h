#pragma once

#include <optional>
#include <string>
#include <vector>

#include "engine/drift_record.h"
#include "engine/operation.h"
#include "engine/workspace.h"
#include "plan/plan.h"

namespace driftless::engine {

/// The outcome of a drift check. Exit-code facts: ok(), HasDrift().
struct DriftReport {
  /// Set when the check could not run (declaration errors, state).
  Failure failure;
  /// The check's plan: the changes with Change::drift set are the drifted resources.
  std::optional<plan::Plan> plan;
  /// What the check wrote to the drift timeline (drift opened, drift gone by itself).
  DriftCheckRecord recorded;

  /// True when the check ran.
  bool ok() const { return plan.has_value() && !failure.any(); }
  /// The drifted resources, in plan order (pointers into `plan`).
  std::vector<const plan::Change*> Drifted() const;
  /// True when anything drifted.
  bool HasDrift() const { return !Drifted().empty(); }
  /// Resources compared: every managed one.
  size_t Checked() const { return plan ? plan->changes.size() + plan->unchanged : 0; }
};

/// Compares live objects with what was last applied for every managed resource of `env` and
/// records the timeline: new drift opens, drift seen again moves on, drift gone resolves as
/// "undone". Changes no target. `full`: read every live object, also those whose stamp says
/// unchanged (`drift --full`).
DriftReport CheckDrift(Workspace& ws, const std::string& env, bool full = false);

/// One resource of `env` as a drift check sees it, for a page that shows it alone: the plan's
/// change for `address` alone (declared, applied and live side by side, the diffs), its live
/// object read whatever its stamp says. Writes nothing (not even the drift timeline).
/// std::nullopt when the environment neither declares nor holds `address`.
Result<std::optional<plan::Change>> InspectResource(Workspace& ws, const std::string& env,
                                                    const std::string& address);

}  // namespace driftless::engine
