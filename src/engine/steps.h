#pragma once

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "base/diagnostics.h"
#include "engine/workspace.h"
#include "plan/plan.h"
#include "value/value.h"

namespace driftless::engine {

/// One field of one resource set to an intermediate value (policy.step).
struct StepOverride {
  std::string address;
  std::string field;  ///< path inside the spec ("version" for `spec.version`)
  value::Value value;
};

/// One step of a stepwise upgrade: the stepwise resources that change at `commit` (or one
/// intermediate version of them), applied and recorded on their own.
struct Step {
  source::CommitInfo commit;
  std::set<std::string, std::less<>> addresses;
  std::vector<StepOverride> overrides;
  std::vector<std::string> transitions;  ///< "kind/name spec.version: 1.27 -> 1.28"
  std::string note;                      ///< "" or "version step 1.28 of 1.29"
};

/// The steps that come before the selected commit's own plan, in order:
/// - for every first-parent commit between the environment's applied commit and the selected
///   one (exclusive) that changes a resource with `policy.upgrade: stepwise`, a step applying
///   just those resources at that commit;
/// - where such a resource has `policy.step` and its field jumps by more than one unit of
///   `by` (1.27 -> 1.29 by minor), a step per missing version (1.28) before the jump's commit.
/// Empty for a plain folder, the working tree, a first apply, a commit not ahead of the applied
/// one on the first-parent chain (a downgrade or a reset: a direct jump), or nothing stepwise.
/// Leaves the workspace reading the selected commit again. Declaration errors of an
/// intermediate commit go to diags.
Result<std::vector<Step>> PlanSteps(Workspace& ws, Diagnostics& diags);

/// Sets a step's intermediate values on an evaluated environment (and their spec hashes).
Status ApplyOverrides(config::Environment& env, const std::vector<StepOverride>& overrides);

/// The steps as the plan shows and hashes them.
std::vector<plan::PlannedStep> DescribeSteps(const std::vector<Step>& steps);

/// Versions strictly between `from` and `to`, then `to`, stepping by `by` ("major", "minor",
/// "patch"): ("1.27", "1.29", "minor") -> {"1.28", "1.29"}. Just {to} when they are not
/// versions, differ above `by`'s component, or are one step apart. Works downwards too.
std::vector<std::string> VersionSteps(const std::string& from, const std::string& to,
                                      const std::string& by);

}  // namespace driftless::engine
