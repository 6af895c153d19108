#include "server/api/drift.h"

#include <optional>
#include <string>
#include <utility>

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

}  // namespace

Status AddDriftRoutes(http::Router& router, const ApiContext& context) {
  return AddApiRoutes(
      router, context,
      {{"GET", "/api/v1/environments/{env}/drift", "read", &OpenDrift},
       {"GET", "/api/v1/environments/{env}/drift/timeline", "read", &DriftTimeline}});
}

}  // namespace driftless::server::api
