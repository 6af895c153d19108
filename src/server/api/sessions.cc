#include "server/api/sessions.h"

#include <string_view>
#include <utility>

#include "auth/rights.h"
#include "auth/sessions.h"
#include "auth/token.h"
#include "base/strings.h"
#include "server/api/json.h"
#include "value/value.h"

namespace driftless::server::api {

namespace {

using value::Value;

// Every Cookie header of the request, joined as one (HTTP/1.1 clients send one).
std::string CookieHeader(const http::Request& request) {
  std::string out;
  for (const auto& [name, value] : request.headers) {
    if (AsciiLower(name) != "cookie") continue;
    if (!out.empty()) out += "; ";
    out += value;
  }
  return out;
}

// True when the request reached a TLS-terminating proxy in front of the server, which says so
// with X-Forwarded-Proto (a client that sends it over plain HTTP only makes its own cookie
// stricter).
bool CameOverTls(const http::Request& request) {
  return AsciiLower(request.Header("x-forwarded-proto")) == "https";
}

std::string SessionCookie(const std::string& id, int64_t max_age, bool secure) {
  std::string c = std::string(auth::kSessionCookie) + "=" + id +
                  "; HttpOnly; SameSite=Strict; Path=/; Max-Age=" + std::to_string(max_age);
  if (secure) c += "; Secure";
  return c;
}

Value SessionValue(const state::Token& token, const state::Session& session) {
  Value::List rights;
  for (auth::Right r : auth::AllRights()) {
    // The rights it has on an unprotected environment; on a protected one apply and destroy
    // need an admin (docs/tokens.md), as the role says.
    if (auth::TokenHasRight(token, r) && auth::RoleGrants(token.role, r, false)) {
      rights.push_back(Value::String(std::string(auth::RightName(r))));
    }
  }
  Value v = Value::MakeObject();
  v.Set("name", Value::String(token.name));
  v.Set("role", Value::String(token.role));
  v.Set("scope", Value::String(token.envs));
  v.Set("rights", Value::MakeList(std::move(rights)));
  v.Set("csrf", Value::String(session.csrf));
  v.Set("expires_at", Value::Int(session.expires_at));
  return v;
}

// Appends a session.* entry; the response's message says when the audit log failed.
std::string AuditSession(const ApiContext& context, const http::Request& request,
                         std::string action, std::string who, std::string result,
                         std::string reason) {
  state::AuditEntry entry;
  entry.who = std::move(who);
  entry.action = std::move(action);
  entry.subject = request.method + " " + request.route;
  entry.result = std::move(result);
  entry.reason = std::move(reason);
  Status audited = Audit(context, request, std::move(entry));
  return audited.ok() ? "" : " (and the audit log failed: " + audited.error().message + ")";
}

http::Response CreateSessionRoute(const ApiContext& context, const http::Request& request) {
  // A sign-in from another site's page would sign the browser in as someone else.
  if (std::string problem = OriginProblem(request); !problem.empty()) {
    std::string failed =
        AuditSession(context, request, "session.create", "", "refused", "csrf: " + problem);
    return http::Response::Error(403, "csrf", problem + failed);
  }
  http::Response error;
  std::optional<Value> body = ObjectBody(request, {"token"}, &error);
  if (!body.has_value()) return error;
  const Value* token = body->Find("token");
  if (token == nullptr || !token->is_string() || token->as_string().empty()) {
    return http::Response::Error(400, "bad_field",
                                 "field 'token' must be a token (the text of driftless token "
                                 "create)");
  }
  Result<StorePool::Lease> store = context.stores->Acquire();
  if (!store.ok()) return StateUnavailable(store.error());
  const int64_t now = context.Now();
  Result<auth::Authentication> who = auth::Authenticate(**store, token->as_string(), now);
  if (!who.ok()) return StateUnavailable(who.error());
  if (!who->token.has_value()) {
    const std::string reason = "token refused: " + who->reason;
    std::string failed = AuditSession(context, request, "session.create", "", "refused", reason);
    return http::Response::Error(401, "unauthorized", reason + failed);
  }
  Result<auth::CreatedSession> made = auth::CreateSession(**store, *who->token, now);
  if (!made.ok()) return StateUnavailable(made.error());
  std::string failed =
      AuditSession(context, request, "session.create", who->token->name, "allowed", "");
  if (!failed.empty()) {
    // Unaudited sign-ins are not given: the session is ended again.
    (void)(*store)->DeleteSession(made->record.hash);
    return http::Response::Error(503, "state_unavailable", "the sign-in was not kept" + failed);
  }
  http::Response r = http::Response::Json(200, SessionValue(*who->token, made->record));
  r.headers.emplace_back(
      "Set-Cookie", SessionCookie(made->id, made->record.expires_at - now, CameOverTls(request)));
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

http::Response ReadSessionRoute(const ApiContext& context, const http::Request& request) {
  SessionCheck check = CheckSessionCookie(context, request);
  if (check.failed.has_value()) return StateUnavailable(*check.failed);
  if (!check.present) {
    return http::Response::Error(
        401, "unauthorized", "no session cookie: sign in with POST /api/v1/session and a token");
  }
  if (!check.session.has_value()) {
    std::string failed =
        AuditSession(context, request, "session.read", "", "refused", check.reason);
    return http::Response::Error(401, "unauthorized", check.reason + failed);
  }
  http::Response r = http::Response::Json(200, SessionValue(*check.token, *check.session));
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

http::Response DeleteSessionRoute(const ApiContext& context, const http::Request& request) {
  const std::string header = CookieHeader(request);
  auth::CookieLookup cookie = auth::FindCookie(header, auth::kSessionCookie);
  std::optional<std::string> hash;
  if (cookie.kind == auth::CookieLookup::Kind::kFound) {
    if (Result<std::string> h = auth::HashSessionId(cookie.value); h.ok()) hash = std::move(*h);
  }
  std::string who;
  if (hash.has_value()) {
    Result<StorePool::Lease> store = context.stores->Acquire();
    if (!store.ok()) return StateUnavailable(store.error());
    Result<std::optional<state::Session>> found = (*store)->FindSessionByHash(*hash);
    if (!found.ok()) return StateUnavailable(found.error());
    if (found->has_value()) {
      // Ending a session is a change too: another site's page must not sign the user out.
      if (std::string problem = CsrfProblem(request, **found); !problem.empty()) {
        std::string failed =
            AuditSession(context, request, "session.delete", "", "refused", "csrf: " + problem);
        return http::Response::Error(403, "csrf", problem + failed);
      }
      Result<std::optional<state::Token>> token = (*store)->FindTokenByHash((*found)->token_hash);
      if (token.ok() && token->has_value()) who = (*token)->name;
      Result<bool> deleted = (*store)->DeleteSession(*hash);
      if (!deleted.ok()) return StateUnavailable(deleted.error());
      std::string failed = AuditSession(context, request, "session.delete", who, "allowed", "");
      (void)failed;  // the session is ended either way; the answer says so
    }
  }
  // Without a live session there is nothing to end, but the cookie is cleared all the same.
  Value v = Value::MakeObject();
  v.Set("status", Value::String("signed_out"));
  http::Response r = http::Response::Json(200, v);
  r.headers.emplace_back("Set-Cookie", SessionCookie("", 0, CameOverTls(request)));
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

}  // namespace

SessionCheck CheckSessionCookie(const ApiContext& context, const http::Request& request) {
  SessionCheck out;
  const std::string header = CookieHeader(request);
  auth::CookieLookup cookie = auth::FindCookie(header, auth::kSessionCookie);
  if (cookie.kind == auth::CookieLookup::Kind::kAbsent) return out;
  out.present = true;
  if (cookie.kind == auth::CookieLookup::Kind::kMalformed) {
    out.reason = "malformed session cookie: " + cookie.problem;
    return out;
  }
  Result<StorePool::Lease> store = context.stores->Acquire();
  if (!store.ok()) {
    out.failed = store.error();
    return out;
  }
  Result<auth::SessionAuthentication> who =
      auth::AuthenticateSession(**store, cookie.value, context.Now());
  if (!who.ok()) {
    out.failed = who.error();
    return out;
  }
  out.session = std::move(who->session);
  out.token = std::move(who->token);
  out.reason = std::move(who->reason);
  return out;
}

bool IsMutatingMethod(std::string_view method) {
  return method == "POST" || method == "PUT" || method == "PATCH" || method == "DELETE";
}

std::string OriginProblem(const http::Request& request) {
  bool sent = false;
  for (const auto& [name, value] : request.headers) sent = sent || AsciiLower(name) == "origin";
  if (!sent) return "";
  const std::string origin = AsciiLower(request.Header("origin"));
  const std::string host = AsciiLower(request.Header("host"));
  if (!host.empty() && (origin == "http://" + host || origin == "https://" + host)) return "";
  return "the request comes from origin '" + http::Printable(origin, 100) +
         "', not from this server's own (" + http::Printable(host, 100) + ")";
}

std::string CsrfProblem(const http::Request& request, const state::Session& session) {
  std::string_view sent = request.Header(kCsrfHeader);
  if (sent.empty()) {
    return "a request authenticated by a session cookie must carry the session's " +
           std::string(kCsrfHeader) + " header";
  }
  if (!auth::ConstantTimeEquals(sent, session.csrf)) {
    return "the " + std::string(kCsrfHeader) + " header is not the session's";
  }
  return OriginProblem(request);
}

Status AddSessionRoutes(http::Router& router, const ApiContext& context) {
  struct Entry {
    const char* method;
    http::Response (*handler)(const ApiContext&, const http::Request&);
  };
  for (const Entry& e : {Entry{"POST", &CreateSessionRoute}, Entry{"GET", &ReadSessionRoute},
                         Entry{"DELETE", &DeleteSessionRoute}}) {
    auto handler = e.handler;
    Status added = router.AddSync(
        e.method, "/api/v1/session",
        [context, handler](const http::Request& request) { return handler(context, request); },
        http::RouteOptions{"", true});
    if (!added.ok()) return added;
  }
  return Status::Ok();
}

}  // namespace driftless::server::api
