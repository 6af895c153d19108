#pragma once

// Browser sessions: what `POST /api/v1/session` makes from a token, so that a browser keeps an
// HttpOnly cookie instead of the token. A session acts with its token's rights while both are
// live; its id (the cookie's value) is 32 random bytes in base64url and only their SHA-256 is
// kept, like a token's secret. The rules for users are in docs/tokens.md and docs/server.md.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"
#include "state/control_store.h"

namespace driftless::auth {

/// The cookie that carries a session's id.
inline constexpr std::string_view kSessionCookie = "driftless_session";
/// How long a session lasts at most (absolute, not renewed by use): 12 hours, and never past its
/// token's expiry.
inline constexpr int64_t kSessionLifetime = 12 * 3600;

/// A session just made: its id is given to the browser once and kept nowhere.
struct CreatedSession {
  state::Session record;
  std::string id;  ///< the cookie's value: base64url of 32 random bytes (43 characters)
};

/// Makes and stores a session for `token` (already found live at `now`): it ends after
/// kSessionLifetime or when the token expires, whichever is first. Also forgets the sessions that
/// expired before `now`.
Result<CreatedSession> CreateSession(state::ControlStore& store, const state::Token& token,
                                     int64_t now);

/// The hash a session id is stored under, or an error saying why `id` is not one (never
/// echoing it).
Result<std::string> HashSessionId(std::string_view id);

/// What a Cookie header holds for cookie `name`.
struct CookieLookup {
  enum class Kind { kAbsent, kFound, kMalformed };
  Kind kind = Kind::kAbsent;
  std::string_view value;  ///< kFound: the value, without the quotes RFC 6265 allows
  std::string problem;     ///< kMalformed: why (sent twice, control characters)
};

/// Looks cookie `name` up in the value of a `Cookie` header (`a=1; name=v`). Other cookies are
/// not judged (other applications of the same host set them); `name` twice is malformed.
CookieLookup FindCookie(std::string_view header, std::string_view name);

/// Why a session was not accepted, or the session and its token.
struct SessionAuthentication {
  std::optional<state::Session> session;  ///< set when accepted
  std::optional<state::Token> token;      ///< set when accepted
  std::string reason;                     ///< why not: malformed, unknown or ended, token's
};

/// Looks the session whose id is `id` up in `store` and checks that it and its token are live at
/// `now`. An error only when the store fails.
Result<SessionAuthentication> AuthenticateSession(state::ControlStore& store, std::string_view id,
                                                  int64_t now);

}  // namespace driftless::auth
