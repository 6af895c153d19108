#pragma once

// What a command prints, apart from where its data comes from: the local commands
// (commands.cc, token.cc) read the state and the repository, the commands against a server
// (remote.cc) read the API's JSON back into the same structs; both print through these, so that
// a command prints the same whichever way it ran.

#include <optional>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/token.h"
#include "engine/environments.h"
#include "plan/plan.h"
#include "state/control_store.h"
#include "state/state_store.h"

namespace driftless::cli {

/// "Environment ENV (SOURCE)", a blank line and the plan as text.
void PrintPlanText(const plan::Plan& plan, const Output& out);
/// What `plan` prints of a plan (--out, --json or text, its problems); the exit code: 1 with
/// problems, 2 with --detailed-exitcode and `has_changes`, else 0.
int ShowPlan(const plan::Plan& plan, bool has_changes, const ApplyFlags& flags, const Output& out);

/// What `drift` shows: the resources whose live object differs from what was applied.
struct DriftView {
  std::string environment;
  std::string revision;
  std::string source;
  size_t checked = 0;
  std::vector<const plan::Change*> drifted;
};
/// Prints a drift check; exit 2 when anything drifted, else 0.
int ShowDrift(const DriftView& view, const Output& out);
/// The drift timeline (env "" for all environments); `now` ends the open ones' durations.
int ShowDriftHistory(const std::vector<state::DriftRecord>& drifts, const std::string& env,
                     int64_t now, const Output& out);
/// `history`: applies, newest first (env "" when of all environments). Exit 0.
int ShowHistory(const std::vector<state::ApplyRecord>& applies, const std::string& env,
                const Output& out);
/// `history show`: one apply with its changes, and the server's run that made it (its author
/// and approvers) when there is one. Exit 0.
int ShowApplyRecord(const state::ApplyRecord& apply, const std::optional<state::RunRecord>& run,
                    const Output& out);
/// `env show`'s lines of the environment's branch: branch (protected), applied, head (ahead).
void PrintBranchLines(const engine::EnvironmentSummary& r);
/// `env list`. Exit 0.
int ShowEnvList(const std::vector<engine::EnvironmentSummary>& rows, const Output& out);
/// `audit`: a page of the audit log. Exit 0.
int ShowAudit(const state::Page<state::AuditEntry>& page, const AuditFlags& flags,
              const Output& out);

}  // namespace driftless::cli
