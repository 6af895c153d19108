#include "server/api/api.h"

#include <chrono>
#include <optional>
#include <string_view>
#include <utility>

#include "auth/rights.h"
#include "base/strings.h"
#include "server/api/audit.h"
#include "server/api/drift.h"
#include "server/api/environments.h"
#include "server/api/events.h"
#include "server/api/history.h"
#include "server/api/hooks.h"
#include "server/api/openapi.h"
#include "server/api/runs.h"
#include "server/api/server_metrics.h"
#include "server/api/sessions.h"
#include "server/api/tokens.h"
#include "state/open.h"

namespace driftless::server::api {

StorePool::Lease::~Lease() {
  if (pool_ == nullptr || store_ == nullptr) return;
  std::lock_guard<std::mutex> lock(pool_->mu_);
  pool_->idle_.push_back(std::move(store_));
}

Result<StorePool::Lease> StorePool::Acquire() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!idle_.empty()) {
      std::unique_ptr<state::StateStore> store = std::move(idle_.back());
      idle_.pop_back();
      return Lease(this, std::move(store));
    }
  }
  Result<std::unique_ptr<state::StateStore>> opened = state::OpenStateStore(location_);
  if (!opened.ok()) return opened.error();
  return Lease(this, std::move(*opened));
}

int64_t ApiContext::Now() const {
  if (now) return now();
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Status Audit(const ApiContext& context, const http::Request& request, state::AuditEntry entry) {
  Result<StorePool::Lease> store = context.stores->Acquire();
  if (!store.ok()) return store.error();
  entry.time = context.Now();
  if (entry.who.empty()) entry.who = request.principal;
  entry.request_id = request.request_id;
  Result<int64_t> appended = (*store)->AppendAudit(entry);
  if (!appended.ok()) return appended.error();
  return Status::Ok();
}

std::optional<int64_t> ParseRunId(std::string_view text) {
  if (text.empty() || text.size() > 18) return std::nullopt;
  int64_t id = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    id = id * 10 + (c - '0');
  }
  if (id == 0) return std::nullopt;
  return id;
}

RequestScope RequestEnvironment(const ApiContext& context, const http::Request& request) {
  RequestScope scope;
  std::string_view env = request.Param("env");
  if (!env.empty()) {
    scope.environment = std::string(env);
    return scope;
  }
  std::string_view id_text = request.Param("id");
  if (id_text.empty() || request.route.rfind("/api/v1/runs/", 0) != 0) return scope;
  std::optional<int64_t> id = ParseRunId(id_text);
  if (!id.has_value()) {
    scope.status = 400;
    scope.code = "bad_run_id";
    scope.message = "run id '" + http::Printable(id_text) + "' is not a run number";
    return scope;
  }
  Result<StorePool::Lease> store = context.stores->Acquire();
  Result<std::optional<state::Run>> run =
      store.ok() ? (*store)->GetRun(*id) : Result<std::optional<state::Run>>(store.error());
  if (!run.ok()) {
    scope.status = 503;
    scope.code = "state_unavailable";
    scope.message = "the state cannot be reached: " + run.error().message;
  } else if (!run->has_value()) {
    scope.status = 404;
    scope.code = "not_found";
    scope.message = "there is no run " + std::to_string(*id);
  } else {
    scope.environment = (*run)->environment;
  }
  return scope;
}

std::optional<std::string_view> BearerToken(std::string_view header) {
  constexpr std::string_view kScheme = "bearer ";
  if (header.size() <= kScheme.size()) return std::nullopt;
  for (size_t i = 0; i < kScheme.size(); ++i) {
    char c = header[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != kScheme[i]) return std::nullopt;
  }
  std::string_view rest = header.substr(kScheme.size());
  while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  while (!rest.empty() && rest.back() == ' ') rest.remove_suffix(1);
  if (rest.empty()) return std::nullopt;
  return rest;
}

namespace {

http::AuthDecision Refuse(const ApiContext& context, const http::Request& request, int status,
                          std::string who, std::string env, std::string right, std::string reason) {
  state::AuditEntry entry;
  entry.who = std::move(who);
  entry.action = "request." + right;
  entry.subject = request.method + " " + request.route;
  entry.environment = std::move(env);
  entry.result = "refused";
  entry.reason = reason;
  // A failing audit log must not turn a refusal into an acceptance: the refusal stands, and the
  // envelope says the audit failed too.
  Status audited = Audit(context, request, std::move(entry));
  http::AuthDecision d;
  d.status = status;
  d.message = audited.ok()
                  ? reason
                  : reason + " (and the audit log failed: " + audited.error().message + ")";
  return d;
}

}  // namespace

http::Authenticator MakeAuthenticator(const ApiContext& context) {
  return [context](const http::Request& request, std::string_view right_name) {
    const std::string right_text(right_name);
    std::optional<auth::Right> right = auth::ParseRight(right_name);
    if (!right.has_value()) {
      // A route registered with a right that does not exist is a programming error; refuse.
      return Refuse(context, request, 403, "", "", right_text,
                    "route " + request.route + " requires an unknown right '" + right_text + "'");
    }
    // A bearer header wins over a session cookie: a script that sends one means it.
    bool has_authorization = false;
    for (const auto& [name, value] : request.headers) {
      has_authorization = has_authorization || AsciiLower(name) == "authorization";
    }
    std::optional<state::Token> accepted;
    std::optional<state::Session> session;
    if (!has_authorization) {
      SessionCheck check = CheckSessionCookie(context, request);
      if (check.failed.has_value()) {
        http::AuthDecision d;
        d.status = 503;
        d.error_code = "state_unavailable";
        d.message = "the state cannot be reached: " + check.failed->message;
        return d;
      }
      if (!check.present) {
        return Refuse(context, request, 401, "", "", right_text,
                      "this route needs an `Authorization: Bearer TOKEN` header or a session "
                      "cookie (POST /api/v1/session)");
      }
      if (!check.session.has_value()) {
        return Refuse(context, request, 401, "", "", right_text, check.reason);
      }
      accepted = std::move(check.token);
      session = std::move(check.session);
    } else {
      std::optional<std::string_view> secret = BearerToken(request.Header("authorization"));
      if (!secret.has_value()) {
        return Refuse(context, request, 401, "", "", right_text,
                      "this route needs an `Authorization: Bearer TOKEN` header");
      }
      Result<StorePool::Lease> store = context.stores->Acquire();
      Result<auth::Authentication> who = store.ok()
                                             ? auth::Authenticate(**store, *secret, context.Now())
                                             : Result<auth::Authentication>(store.error());
      if (!who.ok()) {
        http::AuthDecision d;
        d.status = 503;
        d.error_code = "state_unavailable";
        d.message = "the state cannot be reached: " + who.error().message;
        return d;
      }
      if (!who->token.has_value()) {
        return Refuse(context, request, 401, "", "", right_text, "token refused: " + who->reason);
      }
      accepted = std::move(who->token);
    }
    const state::Token& token = *accepted;
    // A change asked for by a browser's session must come from the server's own pages.
    if (session.has_value() && IsMutatingMethod(request.method)) {
      if (std::string problem = CsrfProblem(request, *session); !problem.empty()) {
        RequestScope scope = RequestEnvironment(context, request);
        http::AuthDecision d = Refuse(context, request, 403, token.name, scope.environment,
                                      right_text, "csrf: " + problem);
        d.error_code = "csrf";
        return d;
      }
    }
    RequestScope scope = RequestEnvironment(context, request);
    if (scope.status != 200) {
      http::AuthDecision d;
      d.status = scope.status;
      d.error_code = scope.code;
      d.message = scope.message;
      return d;
    }
    const std::string* env = &scope.environment;
    // An environment no branch maps to now (a kept protected one, a typo) counts as protected:
    // what cannot be checked is not given the weaker rule. Before the first fetch nothing is
    // mapped yet: that is not a refusal but "not yet" (503), so that a client retries.
    bool protected_env = true;
    if (!env->empty() && context.controller != nullptr) {
      std::optional<controller::EnvironmentView> view = context.controller->FindEnvironment(*env);
      if (view.has_value()) {
        protected_env = view->is_protected;
      } else if (!context.controller->ready()) {
        http::AuthDecision d;
        d.status = 503;
        d.error_code = "not_ready";
        d.message =
            "the server has not fetched the repository yet, so it cannot tell what "
            "environment " +
            *env + " allows; try again when GET /readyz answers 200";
        return d;
      }
    }
    auth::Decision decision = auth::Authorize(token, *right, *env, protected_env, context.Now());
    if (!decision.allowed) {
      return Refuse(context, request, 403, token.name, *env, right_text, decision.reason);
    }
    http::AuthDecision d;
    d.status = 200;
    d.principal = token.name;
    d.scope = token.envs;
    return d;
  };
}

Status AddHealthRoutes(http::Router& router, const ApiContext& context) {
  Status added =
      router.AddSync("GET", "/livez",
                     [](const http::Request&) {
                       return http::Response::Json(200, std::string("{\"status\":\"ok\"}"));
                     },
                     {"", false});
  if (!added.ok()) return added;
  controller::Controller* controller = context.controller;
  return router.AddSync("GET", "/readyz", [controller](const http::Request&) {
    if (controller != nullptr && !controller->healthy()) {
      return http::Response::Error(503, "not_ready",
                                   "the state cannot be reached: this server reconciles nothing "
                                   "until it is back");
    }
    return controller != nullptr && controller->ready()
               ? http::Response::Json(200, std::string("{\"status\":\"ready\"}"))
               : http::Response::Error(503, "not_ready", "the first fetch has not finished");
  });
}

Status AddRoutes(http::Router& router, const ApiContext& context) {
  // One line per area; each area's routes live in its own file.
  for (auto add : {&AddHealthRoutes, &AddMetricsRoutes, &AddEnvironmentRoutes, &AddRunRoutes,
                   &AddHistoryRoutes, &AddDriftRoutes, &AddAuditRoutes, &AddTokenRoutes,
                   &AddOpenApiRoutes, &AddHookRoutes, &AddEventRoutes, &AddSessionRoutes}) {
    Status added = add(router, context);
    if (!added.ok()) return added;
  }
  return Status::Ok();
}

}  // namespace driftless::server::api
