#pragma once

#include <string>

#include "cli/commands.h"

namespace driftless::cli {

/// The flags of `driftless token create`.
struct TokenCreateFlags {
  std::string role;
  std::string envs = "**";
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

}  // namespace driftless::cli
