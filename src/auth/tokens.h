#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "state/control_store.h"

namespace driftless::auth {

/// What `driftless token create` (and the server's token route) asks for.
struct TokenRequest {
  std::string name;         ///< "" : "<role>-<8 random hex digits>"
  std::string role;         ///< viewer, editor, admin
  std::string envs = "**";  ///< environment glob
  std::string rights;       ///< "plan,approve": narrower than the role ("" : all it grants)
  int64_t ttl_seconds = 0;  ///< 0 : never expires
  std::string created_by;   ///< user@host, or the name of the admin token that asked
  std::string request_id;   ///< for the audit log ("" outside a request)
  int64_t now = 0;          ///< unix seconds; 0 : now
};

/// A token just made: its text is shown once and kept nowhere.
struct CreatedToken {
  state::Token record;
  std::string text;
};

/// Checks the request, makes a token, stores its hash and appends `token.create` to the audit
/// log. Errors name the flag at fault (--role, --envs, --rights, --name, --ttl).
Result<CreatedToken> CreateApiToken(state::ControlStore& store, const TokenRequest& request);

/// Revokes the live token `name` and appends `token.revoke` to the audit log; an error when no
/// live token has that name.
Status RevokeApiToken(state::ControlStore& store, const std::string& name, const std::string& who,
                      const std::string& request_id = "", int64_t now = 0);

/// "active", "revoked" or "expired" at `now`.
std::string TokenStatus(const state::Token& token, int64_t now);

/// An error unless `name` is 1 to 64 of A-Z a-z 0-9 . _ @ -, starting with a letter or digit.
Status CheckTokenName(std::string_view name);

/// A time to live: a number and a unit (s, m, h, d, w), repeated ("90d", "1h30m"); at most ten
/// years. An error saying how to write one otherwise.
Result<int64_t> ParseTtl(std::string_view text);

}  // namespace driftless::auth
