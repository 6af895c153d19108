#pragma once

#include <string>

#include "cli/workspace.h"

namespace driftless::cli {

/// Options of the commands that change things.
struct ApplyFlags {
  std::string env;  ///< set by Workspace::Select
  std::string plan_file;
  bool auto_approve = false;
  bool detailed_exitcode = false;
  std::string out;  ///< plan --out
};

/// Each returns the process exit code.
int RunValidate(Workspace& ws, const std::string& env);
int RunPlan(Workspace& ws, const ApplyFlags& flags);
int RunApply(Workspace& ws, const ApplyFlags& flags, bool destroy);
/// Live against last applied for every managed resource; exit 2 when anything drifted.
int RunDrift(Workspace& ws, const std::string& env, bool full = false);
/// The drift timeline: onset, duration, resolution (all environments when env is "").
int RunDriftHistory(Workspace& ws, const std::string& env, int limit);
int RunStateList(Workspace& ws, const std::string& env);
int RunStateShow(Workspace& ws, const std::string& env, const std::string& address);
int RunStateRm(Workspace& ws, const std::string& env, const std::string& address);
/// `state import ADDR ID [ENV]`: takes the existing object `id` under management as `address`
/// (apply/import.h) and shows what the next plan does with it.
int RunStateImport(Workspace& ws, const std::string& env, const std::string& address,
                   const std::string& id);
int RunHistory(Workspace& ws, const std::string& env, int limit);
int RunHistoryShow(Workspace& ws, int64_t id);
int RunEnvList(Workspace& ws);
int RunEnvShow(Workspace& ws, const std::string& env);
/// Destroys (with auto_approve; else lists) the environments whose branch is gone or whose
/// ttl passed since their branch's last commit. Protected environments are never destroyed.
int RunEnvPrune(Workspace& ws, bool auto_approve);

}  // namespace driftless::cli
