#pragma once

#include <string>

#include "cli/commands.h"

namespace driftless::cli {

/// The flags of `driftless token create`.
struct TokenCreateFlags {
  std::string role;
  std::string envs = "**";
  std::string rights;  ///< "" : every right the role grants
  std::string name;
  std::string ttl;  ///< "" : never expires
};

/// `driftless token create`: makes a token (auth::CreateApiToken) and prints what it is, then
/// the token alone on the last line of standard output (shown once, kept nowhere).
int RunTokenCreate(Workspace& ws, const TokenCreateFlags& flags, const Output& out);
/// `driftless token list`: every token's name, role, environments, times and status; never a
/// secret nor a hash.
int RunTokenList(Workspace& ws, const Output& out);
/// `driftless token revoke NAME`.
int RunTokenRevoke(Workspace& ws, const std::string& name);

/// The flags of `driftless audit`.
struct AuditFlags {
  std::string env;     ///< --env: one environment's entries ("" for all)
  std::string who;     ///< --who: one token's (or "controller") entries
  int limit = 50;      ///< --limit
  int64_t cursor = 0;  ///< --before ID: entries older than this id (0: from the newest)
};
/// `driftless audit`: the server's audit log, newest first (every decision: who, what, which
/// environment, run and plan hash, allowed or refused and why); `--json` as the API's page.
int RunAudit(Workspace& ws, const AuditFlags& flags, const Output& out);

}  // namespace driftless::cli
