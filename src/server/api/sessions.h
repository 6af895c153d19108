#pragma once

// Browser sessions: `POST|GET|DELETE /api/v1/session`, and what the authenticator needs to take
// a session cookie where it takes a bearer token (the cookie's check and the CSRF check).

#include <optional>
#include <string>

#include "base/result.h"
#include "server/api/api.h"
#include "server/http/message.h"
#include "server/http/router.h"
#include "state/control_store.h"

namespace driftless::server::api {

/// The header a mutating request authenticated by a session cookie must carry.
inline constexpr std::string_view kCsrfHeader = "X-CSRF-Token";

/// What the request's session cookie is worth.
struct SessionCheck {
  bool present = false;                   ///< the request carries a `driftless_session` cookie
  std::optional<state::Session> session;  ///< set when accepted
  std::optional<state::Token> token;      ///< set when accepted: the session's token
  std::string reason;                     ///< why not, when present and not accepted
  std::optional<Error> failed;            ///< the state could not be read
};

/// Checks the `driftless_session` cookie of `request` (every Cookie header it has).
SessionCheck CheckSessionCookie(const ApiContext& context, const http::Request& request);

/// True for the methods that change something: POST, PUT, PATCH, DELETE.
bool IsMutatingMethod(std::string_view method);

/// "" when the request's Origin header is absent or is the server's own origin (its scheme and
/// the request's Host); otherwise why not.
std::string OriginProblem(const http::Request& request);

/// "" when a mutating request authenticated by `session` carries the session's CSRF secret in
/// X-CSRF-Token (compared in constant time) and comes from the server's own origin; otherwise
/// why not.
std::string CsrfProblem(const http::Request& request, const state::Session& session);

/// Registers POST, GET and DELETE /api/v1/session (public: each checks what it is given).
Status AddSessionRoutes(http::Router& router, const ApiContext& context);

}  // namespace driftless::server::api
