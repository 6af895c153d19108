#include "server/api/json.h"

#include <utility>

#include "auth/glob.h"

namespace driftless::server::api {

using value::Value;

Result<PageRequest> ParsePageRequest(const http::Request& request, http::Response* error) {
  PageRequest page;
  page.limit = kDefaultPageLimit;
  if (std::optional<std::string> cursor = request.QueryParam("cursor")) {
    page.cursor = *cursor;
  } else if (request.query.rfind("cursor=", 0) == 0 ||
             request.query.find("&cursor=") != std::string::npos) {
    *error = http::Response::Error(400, "bad_cursor",
                                   "query parameter cursor is not validly percent-encoded");
    return MakeError("bad cursor");
  }
  if (std::optional<std::string> limit = request.QueryParam("limit")) {
    int n = 0;
    bool ok = !limit->empty() && limit->size() <= 4;
    for (char c : *limit) {
      if (c < '0' || c > '9') ok = false;
      if (ok) n = n * 10 + (c - '0');
    }
    if (!ok || n < 1 || n > kMaxPageLimit) {
      *error = http::Response::Error(400, "bad_limit",
                                     "query parameter limit must be a number from 1 to " +
                                         std::to_string(kMaxPageLimit) + ", not '" +
                                         http::Printable(*limit, 40) + "'");
      return MakeError("bad limit");
    }
    page.limit = n;
  }
  return page;
}

std::optional<int64_t> IdCursor(std::string_view cursor) {
  if (cursor.empty()) return 0;
  return ParseRunId(cursor);
}

Value PageValue(Value::List items, std::string next_cursor) {
  Value v = Value::MakeObject();
  v.Set("items", Value::MakeList(std::move(items)));
  v.Set("next_cursor", next_cursor.empty() ? Value::Null() : Value::String(std::move(next_cursor)));
  return v;
}

std::optional<IdPage> ParseIdPage(const http::Request& request, http::Response* error) {
  Result<PageRequest> page = ParsePageRequest(request, error);
  if (!page.ok()) return std::nullopt;
  std::optional<int64_t> cursor = IdCursor(page->cursor);
  if (!cursor.has_value()) {
    *error = http::Response::Error(400, "bad_cursor",
                                   "query parameter cursor is not the next_cursor of a page");
    return std::nullopt;
  }
  return IdPage{*cursor, page->limit};
}

Value PageValue(Value::List items, int64_t next_cursor) {
  return PageValue(std::move(items), next_cursor == 0 ? "" : std::to_string(next_cursor));
}

std::optional<Value> ObjectBody(const http::Request& request,
                                const std::vector<std::string>& allowed, http::Response* error) {
  Result<Value> body = request.JsonBody();
  if (!body.ok()) {
    *error = http::Response::Error(400, "malformed_json", body.error().message);
    return std::nullopt;
  }
  if (!body->is_object()) {
    *error = http::Response::Error(400, "bad_body", "the request body must be a JSON object");
    return std::nullopt;
  }
  for (const auto& [key, member] : body->as_object()) {
    bool known = false;
    for (const std::string& a : allowed) known = known || a == key;
    if (known) continue;
    std::string list;
    for (const std::string& a : allowed) list += (list.empty() ? "" : ", ") + a;
    *error = http::Response::Error(400, "unknown_field",
                                   "unknown field '" + http::Printable(key, 80) + "' at " +
                                       std::to_string(member.line()) + ":" +
                                       std::to_string(member.column()) +
                                       " of the request body; the fields are: " + list);
    return std::nullopt;
  }
  return std::move(*body);
}

http::Response StateUnavailable(const Error& error) {
  return http::Response::Error(503, "state_unavailable",
                               "the state cannot be reached: " + error.message);
}

http::Response UnknownEnvironment(std::string_view env) {
  return http::Response::Error(404, "not_found",
                               "there is no environment '" + http::Printable(env, 80) +
                                   "': no branch maps to it and state does not know it");
}

std::optional<http::Response> CheckEnvironment(const ApiContext& context, state::StateStore& store,
                                               const std::string& env,
                                               std::optional<controller::EnvironmentView>* view) {
  std::optional<controller::EnvironmentView> found;
  if (context.controller != nullptr) found = context.controller->FindEnvironment(env);
  bool exists = found.has_value();
  if (view != nullptr) *view = std::move(found);
  if (exists) return std::nullopt;
  Result<std::optional<state::Environment>> row = store.GetEnvironment(env);
  if (!row.ok()) return StateUnavailable(row.error());
  if (!row->has_value()) return UnknownEnvironment(env);
  return std::nullopt;
}

std::optional<http::Response> StartEnvironmentList(const ApiContext& context,
                                                   const http::Request& request,
                                                   EnvironmentList* list) {
  list->env = std::string(request.Param("env"));
  http::Response error;
  std::optional<IdPage> page = ParseIdPage(request, &error);
  if (!page.has_value()) return error;
  list->page = *page;
  Result<StorePool::Lease> store = context.stores->Acquire();
  if (!store.ok()) return StateUnavailable(store.error());
  list->store.emplace(std::move(*store));
  return CheckEnvironment(context, **list->store, list->env);
}

Value StoredJson(const std::string& text) {
  if (text.empty()) return Value::Null();
  Result<Value> parsed = value::ParseJson(text);
  if (!parsed.ok()) return Value::String(text);
  return std::move(*parsed);
}

Value TimeValue(int64_t seconds) { return seconds == 0 ? Value::Null() : Value::Int(seconds); }

Value ApprovalsValue(const std::vector<state::Approval>& approvals) {
  Value::List items;
  for (const state::Approval& a : approvals) {
    Value v = Value::MakeObject();
    v.Set("who", Value::String(a.who));
    v.Set("decision", Value::String(a.decision));
    v.Set("comment", Value::String(a.comment));
    v.Set("plan_hash", Value::String(a.plan_hash));
    v.Set("created_at", TimeValue(a.created_at));
    items.push_back(std::move(v));
  }
  return Value::MakeList(std::move(items));
}

Value RunValue(const state::Run& run, bool with_plan) {
  Value v = Value::MakeObject();
  v.Set("id", Value::Int(run.id));
  v.Set("environment", Value::String(run.environment));
  v.Set("action", Value::String(run.action));
  v.Set("status", Value::String(run.status));
  v.Set("commit", Value::String(run.commit));
  v.Set("plan_hash", Value::String(run.plan_hash));
  v.Set("author", Value::String(run.author));
  v.Set("created_at", TimeValue(run.created_at));
  v.Set("started_at", TimeValue(run.started_at));
  v.Set("finished_at", TimeValue(run.finished_at));
  v.Set("message", Value::String(run.message));
  v.Set("apply_id", run.apply_id == 0 ? Value::Null() : Value::Int(run.apply_id));
  if (with_plan) {
    v.Set("plan_text", Value::String(run.plan_text));
    v.Set("plan", StoredJson(run.plan_json));
  }
  return v;
}

bool RequestSees(const http::Request& request, std::string_view env) {
  return !request.principal.empty() && auth::GlobMatch(request.principal_scope, env);
}

Status AddApiRoutes(http::Router& router, const ApiContext& context,
                    std::initializer_list<ApiRoute> routes) {
  for (const ApiRoute& route : routes) {
    auto handler = route.handler;
    Status added = router.AddSync(
        route.method, route.pattern,
        [context, handler](const http::Request& request) { return handler(context, request); },
        {route.right});
    if (!added.ok()) return added;
  }
  return Status::Ok();
}

}  // namespace driftless::server::api
