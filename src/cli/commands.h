#pragma once

#include <string>

#include "engine/watch.h"
#include "engine/workspace.h"

namespace driftless::cli {

using engine::Workspace;

/// How a command shows its results.
struct Output {
  bool json = false;      ///< --json: machine-readable output
  bool no_color = false;  ///< --no-color
};

/// Options of the commands that change things.
struct ApplyFlags {
  std::string env;  ///< set by Workspace::Select
  std::string plan_file;
  bool auto_approve = false;
  bool detailed_exitcode = false;
  std::string out;  ///< plan --out
};

/// Each returns the process exit code.
int RunValidate(Workspace& ws, const std::string& env, const Output& out);
int RunPlan(Workspace& ws, const ApplyFlags& flags, const Output& out);
int RunApply(Workspace& ws, const ApplyFlags& flags, bool destroy, const Output& out);
/// Live against last applied for every managed resource; exit 2 when anything drifted.
int RunDrift(Workspace& ws, const std::string& env, bool full, const Output& out);
/// The drift timeline: onset, duration, resolution (all environments when env is "").
int RunDriftHistory(Workspace& ws, const std::string& env, int limit, const Output& out);
int RunStateList(Workspace& ws, const std::string& env, const Output& out);
int RunStateShow(Workspace& ws, const std::string& env, const std::string& address,
                 const Output& out);
int RunStateRm(Workspace& ws, const std::string& env, const std::string& address);
/// `state import ADDR ID [ENV]`: takes the existing object `id` under management as `address`
/// (apply/import.h) and shows what the next plan does with it.
int RunStateImport(Workspace& ws, const std::string& env, const std::string& address,
                   const std::string& id, const Output& out);
int RunHistory(Workspace& ws, const std::string& env, int limit, const Output& out);
int RunHistoryShow(Workspace& ws, int64_t id, const Output& out);
int RunEnvList(Workspace& ws, const Output& out);
int RunEnvShow(Workspace& ws, const std::string& env, const Output& out);
/// `force-unlock ENV LOCK`: releases the environment's lock if its id is LOCK
/// (engine::ForceUnlock: the holder is fenced, its apply interrupted, the audit log says who).
int RunForceUnlock(Workspace& ws, const std::string& env, int64_t lock_id);
/// Destroys (with auto_approve; else lists) the environments whose branch is gone or whose
/// ttl passed since their branch's last commit. Protected environments are never destroyed.
int RunEnvPrune(Workspace& ws, bool auto_approve, const Output& out);

/// Watches the environment for drift until interrupted (or `run_for`): events on standard
/// output, one JSON object per line; enforcement per policy.
int RunWatch(Workspace& ws, const engine::WatchOptions& options);

/// The flags of `driftless serve` beside the global ones.
struct ServeFlags {
  std::string listen = "127.0.0.1:8080";                 ///< HOST:PORT; port 0 picks a free one
  double poll_seconds = 60;                              ///< --poll
  double run_poll_seconds = 60;                          ///< --run-poll (several servers)
  std::string webhook_secret_file;                       ///< --webhook-secret-file ("": off)
  int64_t event_retention_seconds = int64_t{7} * 86400;  ///< --event-retention
};
/// `driftless serve`: the controller and the HTTP server until SIGTERM or SIGINT (exit 0).
int RunServe(const engine::WorkspaceOptions& workspace, const ServeFlags& flags);

/// `driftless notify status [--json]`: per sink, delivered / pending / failing counts, the last
/// error and the next attempt, from the state's outbox.
int RunNotifyStatus(Workspace& ws, const Output& out);

}  // namespace driftless::cli
