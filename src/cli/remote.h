#pragma once

// The commands against a server (`--server URL` or DRIFTLESS_SERVER): they call the API of
// `driftless serve` (src/client) and print through the same views as locally (cli/views.h).

#include <cstdint>
#include <string>

#include "cli/commands.h"
#include "cli/token.h"
#include "client/client.h"

namespace driftless::cli {

/// The server a command talks to: --server (or DRIFTLESS_SERVER) and the token of --token-file
/// (or DRIFTLESS_TOKEN).
struct RemoteFlags {
  std::string server;
  std::string token_file;
};

/// The exit code of a command that stopped following a run at Ctrl-C (the run goes on).
inline constexpr int kStoppedFollowing = 130;

/// Each returns the process exit code, as the local command does.
/// `plan ENV`: queues a plan run and prints its plan when it is done.
int RemotePlan(client::Client& c, const ApplyFlags& flags, const Output& out);
/// `apply ENV`: queues an apply run and follows it to its end; Ctrl-C stops following only
/// (kStoppedFollowing).
int RemoteApply(client::Client& c, const ApplyFlags& flags, const Output& out);
/// `approve RUN` / `reject RUN`.
int RemoteDecide(client::Client& c, int64_t run, bool approve, const std::string& comment,
                 const Output& out);
/// `runs [ENV]`: the runs, newest first.
int RemoteRuns(client::Client& c, const std::string& env, int limit, const Output& out);
int RemoteEnvList(client::Client& c, const Output& out);
int RemoteEnvShow(client::Client& c, const std::string& env, const Output& out);
int RemoteHistory(client::Client& c, const std::string& env, int limit, const Output& out);
int RemoteHistoryShow(client::Client& c, int64_t id, const Output& out);
/// `drift ENV`: the server checks every live object now (POST .../drift/check) and it is printed
/// as locally; exit 2 when anything drifted.
int RemoteDrift(client::Client& c, const std::string& env, bool full, const Output& out);
int RemoteDriftHistory(client::Client& c, const std::string& env, int limit, const Output& out);
int RemoteAudit(client::Client& c, const AuditFlags& flags, const Output& out);

}  // namespace driftless::cli
