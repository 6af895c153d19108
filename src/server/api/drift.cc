#include "server/api/drift.h"

#include <optional>
#include <string>
#include <utility>

#include "plan/render.h"
#include "server/api/json.h"

namespace driftless::server::api {

namespace {

using value::Value;

// How many drift records a list reads at most (ListDrift has no cursor).
constexpr int kMaxDriftRead = 100000;

Value DriftValue(const state::DriftRecord& d) {
  Value v = Value::MakeObject();
  v.Set("id", Value::Int(d.id));
  v.Set("environment", Value::String(d.environment));
  v.Set("address", Value::String(d.address));
  v.Set("status", Value::String(d.resolved_at == 0 ? "open" : "resolved"));
  v.Set("onset", TimeValue(d.onset));
  v.Set("last_seen", TimeValue(d.last_seen));
  v.Set("resolved_at", TimeValue(d.resolved_at));
  v.Set("resolution", d.resolution.empty() ? Value::Null() : Value::String(d.resolution));
  v.Set("actor", Value::String(d.actor));
  v.Set("diff", Value::String(d.diff));
  v.Set("remediations", Value::Int(d.remediations));
  return v;
}

http::Response ListDrift(const ApiContext& context, const http::Request& request,
                         bool include_resolved) {
  EnvironmentList list;
  if (auto refused = StartEnvironmentList(context, request, &list)) return *refused;
  Result<std::vector<state::DriftRecord>> drift =
      (*list.store)->ListDrift(list.env, include_resolved, kMaxDriftRead);
  if (!drift.ok()) return StateUnavailable(drift.error());
  return http::Response::Json(200, IdPageOf(*drift, list.page, &DriftValue));
}

http::Response OpenDrift(const ApiContext& context, const http::Request& request) {
  return ListDrift(context, request, false);
}

http::Response DriftTimeline(const ApiContext& context, const http::Request& request) {
  return ListDrift(context, request, true);
}

// POST /api/v1/environments/{env}/drift/check {"full": bool}: a drift check now, as
// `driftless drift` makes it: the check's plan (redacted) and how many resources it compared.
http::Response CheckDrift(const ApiContext& context, const http::Request& request) {
  const std::string env(request.Param("env"));
  http::Response error;
  bool full = false;
  if (!request.body.empty()) {
    std::optional<Value> body = ObjectBody(request, {"full"}, &error);
    if (!body.has_value()) return error;
    if (const Value* f = body->Find("full")) {
      if (!f->is_bool()) {
        return http::Response::Error(400, "bad_body", "field 'full' must be true or false");
      }
      full = f->as_bool();
    }
  }
  {
    Result<StorePool::Lease> store = context.stores->Acquire();
    if (!store.ok()) return StateUnavailable(store.error());
    if (auto missing = CheckEnvironment(context, **store, env)) return *missing;
  }
  if (context.controller == nullptr) {
    return http::Response::Error(503, "no_controller", "this server runs no controller");
  }
  http::Response response;
  context.controller->CheckDrift(env, full, [&](const engine::DriftReport& report) {
    if (!report.ok()) {
      std::string why =
          report.failure.diagnostics.empty() ? "" : report.failure.diagnostics.ToString();
      if (!report.failure.message.empty()) why += report.failure.message;
      response = http::Response::Error(409, "check_failed",
                                       "the drift check of " + env + " failed: " + why);
      return;
    }
    std::string body = "{\"environment\":" + value::ToJson(Value::String(env));
    body += ",\"checked\":" + std::to_string(report.Checked()) +
            ",\"drifted\":" + std::to_string(report.Drifted().size()) + ",\"plan\":";
    value::AppendRedactedJson(body, plan::PlanToJson(*report.plan));
    body += "}";
    response = http::Response::Json(200, std::move(body));
  });
  return response;
}

}  // namespace

Status AddDriftRoutes(http::Router& router, const ApiContext& context) {
  return AddApiRoutes(router, context,
                      {{"GET", "/api/v1/environments/{env}/drift", "read", &OpenDrift},
                       {"GET", "/api/v1/environments/{env}/drift/timeline", "read", &DriftTimeline},
                       {"POST", "/api/v1/environments/{env}/drift/check", "plan", &CheckDrift}});
}

}  // namespace driftless::server::api
