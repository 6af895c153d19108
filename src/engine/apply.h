#pragma once

#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "engine/operation.h"
#include "engine/workspace.h"
#include "notify/dispatcher.h"
#include "plan/plan.h"

namespace driftless::engine {

/// What to apply.
struct ApplyRequest {
  bool destroy = false;   ///< delete everything driftless created in the environment
  std::string plan_file;  ///< a plan saved by `plan --out`: the fresh plan must equal it
  /// The hash (plan::Plan::Hash) of the plan that was reviewed or approved: the fresh plan made
  /// under the lock must have it, else nothing is applied ("" : any plan).
  std::string plan_hash;
  /// Stops between steps and between changes (may be null: runs to its end).
  const StopToken* stop = nullptr;
  /// Only these resources, without steps (a served remediation: the drifted resources at the
  /// commit applied); nullptr: the whole environment.
  const std::set<std::string, std::less<>>* only = nullptr;
  /// What history records the apply as ("": "apply" or "destroy"), e.g. "remediation".
  std::string kind;
};

/// The outcome of an apply or a destroy. Exit-code facts: ok().
struct ApplyReport {
  enum class Outcome {
    kApplied,      ///< every apply ran (see steps for how each went)
    kNoChanges,    ///< nothing to change; nothing recorded
    kNotApproved,  ///< Observer::Approve said no; nothing changed
    kInvalid,      ///< the plan has errors (`plan`, problems in failure.diagnostics)
    kFailed,       ///< stopped before or between applies (failure says why, steps what ran)
  };
  Outcome outcome = Outcome::kFailed;
  std::string environment;
  /// Why it failed: declaration problems and/or a message ("" when it did not fail). Set also
  /// when the final apply failed after steps (kApplied), to say where the environment stays.
  Failure failure;
  /// The plan with errors (kInvalid), or the plan found to have nothing to do (kNoChanges).
  std::optional<plan::Plan> plan;
  /// The hash of the plan made under the lock ("" when none was made).
  std::string plan_hash;
  /// Every apply that ran or was attempted, in order (steps first, then the final one).
  std::vector<StepResult> steps;
  /// The notification sinks its events were enqueued for (nullptr when none): delivering them
  /// is the caller's (DeliverDue; the rest stays in the outbox for the next run).
  std::unique_ptr<notify::Dispatcher> dispatcher;

  /// True when the environment now equals its declarations: nothing to change, or every apply
  /// succeeded.
  bool ok() const;
};

/// Plans the environment selected in `ws` under its lock (the stepwise steps first unless
/// destroying), checks a saved plan, reports the plan to the observer, asks it to approve, and
/// applies step by step: each step planned again against the state the last one left and
/// recorded on its own; the first failing step stops the rest. Publishes apply.started,
/// apply.succeeded / apply.failed (and env.destroyed) and resolves the drift each apply healed.
/// Declarations that are not valid write nothing, not even a lock. The stop token is looked at
/// before each step and passed to the applier.
ApplyReport ApplyEnvironment(Workspace& ws, const ApplyRequest& request, Observer& observer);

/// ApplyEnvironment with `destroy` set.
ApplyReport DestroyEnvironment(Workspace& ws, ApplyRequest request, Observer& observer);

/// Checks a plan saved by `plan --out` against a fresh one made under the lock: same
/// environment, kind, commit, declarations, state serial and plan hash.
Status CheckSavedPlan(const std::string& path, const plan::Plan& fresh);

}  // namespace driftless::engine
