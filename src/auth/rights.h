#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "state/control_store.h"

namespace driftless::auth {

/// What a request wants to do.
enum class Right {
  kRead,     ///< see environments, runs, history, drift, events (never a secret, never a token)
  kPlan,     ///< queue a plan
  kApprove,  ///< approve or reject a run's plan
  kApply,    ///< apply (or sync) an environment
  kDestroy,  ///< destroy an environment
  kUnlock,   ///< release a stale lock
  kTokens,   ///< create, list and revoke tokens; read the audit log
};

/// "read", "plan", ... as in docs/tokens.md.
std::string_view RightName(Right right);
/// The right named `name`, or std::nullopt.
std::optional<Right> ParseRight(std::string_view name);
/// Every right, in the order above.
const std::vector<Right>& AllRights();

/// The roles, lowest first: viewer, editor, admin.
const std::vector<std::string>& Roles();
/// An error unless `role` is viewer, editor or admin.
Status CheckRole(std::string_view role);

/// True when `role` grants `right` on an environment that is (or is not) protected:
/// viewer: read. editor: read, plan, approve; apply and destroy on unprotected environments.
/// admin: everything. Unknown roles grant nothing.
bool RoleGrants(std::string_view role, Right right, bool protected_env);

/// The canonical form of a token's rights list (`--rights plan,approve`): the names in the order
/// of AllRights, comma-separated; "" for "" (every right the role grants). An error for an unknown
/// name, and for a right that `role` never grants (a viewer cannot be given `apply`).
Result<std::string> NormalizeRights(std::string_view list, std::string_view role);
/// True when `token` is not limited to rights or is limited to a list holding `right`.
bool TokenHasRight(const state::Token& token, Right right);

/// The verdict on one request.
struct Decision {
  bool allowed = false;
  std::string reason;  ///< why not ("" when allowed)
};

/// Whether `token` may use `right` on environment `env` at `now` (unix seconds): refused when
/// it is revoked or expired, when `env` does not match its glob, when it is limited to rights
/// that do not include `right`, or when its role does not grant the right there. `env` "" is a
/// request about no one environment (lists, tokens): the glob is not consulted, except that
/// `tokens` needs a token for every environment (`**`), so that a scoped admin cannot mint an
/// unscoped token.
Decision Authorize(const state::Token& token, Right right, std::string_view env, bool protected_env,
                   int64_t now);

/// Why a bearer token was not accepted, or the token's record.
struct Authentication {
  std::optional<state::Token> token;  ///< set when accepted
  std::string reason;                 ///< why not: malformed, unknown, revoked, expired
};

/// Looks the bearer token `text` up in `store` (by the hash of its secret, compared again in
/// constant time) and checks it is live at `now`. An error only when the store fails.
Result<Authentication> Authenticate(state::ControlStore& store, std::string_view text, int64_t now);
/// The same for a token known by the hash of its secret (HashToken): a long-lived reader (an
/// event stream) checks again that the token it was opened with is still live.
Result<Authentication> AuthenticateHash(state::ControlStore& store, const std::string& hash,
                                        int64_t now);

}  // namespace driftless::auth
