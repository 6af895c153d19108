#include "server/api/runs.h"

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "server/api/json.h"

namespace driftless::server::api {

namespace {

using value::Value;

http::Response CreateRun(const ApiContext& context, const http::Request& request) {
  const std::string env(request.Param("env"));
  http::Response error;
  std::optional<Value> body = ObjectBody(request, {"action"}, &error);
  if (!body.has_value()) return error;
  const Value* action_value = body->Find("action");
  if (action_value == nullptr || !action_value->is_string()) {
    return http::Response::Error(400, "bad_action",
                                 "field 'action' is required: \"plan\", \"apply\" or \"destroy\"");
  }
  const std::string& action = action_value->as_string();
  if (action != "plan" && action != "apply" && action != "destroy") {
    return http::Response::Error(400, "bad_action",
                                 "field 'action' is '" + http::Printable(action, 40) +
                                     "'; it must be \"plan\", \"apply\" or \"destroy\"");
  }
  if (action != "plan") {
    // The route's right is `plan`; an apply or a destroy needs its own right too, checked
    // (and a refusal audited) by the same authenticator.
    http::AuthDecision decision = MakeAuthenticator(context)(request, action);
    if (decision.status != 200) {
      return http::Response::Error(decision.status,
                                   decision.error_code.empty()
                                       ? http::DefaultErrorCode(decision.status)
                                       : std::string_view(decision.error_code),
                                   decision.message);
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
  Result<state::Run> run = context.controller->RequestRun(env, action, request.principal);
  state::AuditEntry entry;
  entry.action = "run.create";
  entry.subject = action;
  entry.environment = env;
  if (!run.ok()) {
    entry.result = "refused";
    entry.reason = run.error().message;
    Status audited = Audit(context, request, entry);
    return http::Response::Error(
        409, "conflict",
        "cannot queue a " + action + " of " + env + ": " + run.error().message +
            (audited.ok() ? "" : " (and the audit log failed: " + audited.error().message + ")"));
  }
  entry.run_id = run->id;
  entry.result = "allowed";
  Status audited = Audit(context, request, entry);
  if (!audited.ok()) return StateUnavailable(audited.error());
  http::Response response = http::Response::Json(202, RunValue(*run, true));
  response.headers.emplace_back("Location", "/api/v1/runs/" + std::to_string(run->id));
  return response;
}

http::Response ListEnvironmentRuns(const ApiContext& context, const http::Request& request) {
  EnvironmentList list;
  if (auto refused = StartEnvironmentList(context, request, &list)) return *refused;
  state::RunFilter filter;
  filter.environment = list.env;
  if (std::optional<std::string> status = request.QueryParam("status")) {
    bool known = false;
    for (const std::string& s : state::RunStatuses()) known = known || s == *status;
    if (!known) {
      return http::Response::Error(
          400, "bad_status",
          "query parameter status '" + http::Printable(*status, 40) + "' is not a run status");
    }
    filter.statuses.push_back(*status);
  }
  Result<state::Page<state::Run>> runs =
      (*list.store)->ListRuns(filter, list.page.cursor, list.page.limit);
  if (!runs.ok()) return StateUnavailable(runs.error());
  Value::List items;
  for (const state::Run& r : runs->items) items.push_back(RunValue(r, false));
  return http::Response::Json(200, PageValue(std::move(items), runs->next_cursor));
}

// The run of the route's {id} (the authenticator already found it exists), or the response.
std::optional<state::Run> RouteRun(const ApiContext& context, const http::Request& request,
                                   http::Response* error) {
  std::optional<int64_t> id = ParseRunId(request.Param("id"));
  if (!id.has_value()) {
    *error = http::Response::Error(400, "bad_run_id", "the run id is not a run number");
    return std::nullopt;
  }
  Result<StorePool::Lease> store = context.stores->Acquire();
  if (!store.ok()) {
    *error = StateUnavailable(store.error());
    return std::nullopt;
  }
  Result<std::optional<state::Run>> run = (*store)->GetRun(*id);
  if (!run.ok()) {
    *error = StateUnavailable(run.error());
    return std::nullopt;
  }
  if (!run->has_value()) {
    *error = http::Response::Error(404, "not_found", "there is no run " + std::to_string(*id));
    return std::nullopt;
  }
  return std::move(**run);
}

http::Response ShowRun(const ApiContext& context, const http::Request& request) {
  http::Response error;
  std::optional<state::Run> run = RouteRun(context, request, &error);
  if (!run.has_value()) return error;
  Result<StorePool::Lease> store = context.stores->Acquire();
  if (!store.ok()) return StateUnavailable(store.error());
  Result<std::vector<state::Approval>> approvals = (*store)->ListApprovals(run->id);
  if (!approvals.ok()) return StateUnavailable(approvals.error());
  Value v = RunValue(*run, true);
  v.Set("approvals", ApprovalsValue(*approvals));
  // What a run page shows beside them: "1 of 2 approvals".
  if (context.controller != nullptr) {
    v.Set("approvals_required", Value::Int(context.controller->ApprovalsRequired(*run)));
  }
  return http::Response::Json(200, v);
}

// POST /api/v1/runs/{id}/approve and /reject: one person's decision on the run's plan hash.
http::Response DecideRun(const ApiContext& context, const http::Request& request,
                         const std::string& decision) {
  http::Response error;
  std::optional<state::Run> run = RouteRun(context, request, &error);
  if (!run.has_value()) return error;
  std::string comment;
  if (!request.body.empty()) {
    std::optional<Value> body = ObjectBody(request, {"comment"}, &error);
    if (!body.has_value()) return error;
    if (const Value* c = body->Find("comment")) {
      if (!c->is_string() || c->as_string().size() > 4000) {
        return http::Response::Error(400, "bad_comment",
                                     "field 'comment' must be a string of at most 4000 bytes");
      }
      comment = c->as_string();
    }
  }
  if (context.controller == nullptr) {
    return http::Response::Error(503, "no_controller", "this server runs no controller");
  }
  Result<controller::RunDecision> decided =
      context.controller->DecideRun(run->id, request.principal, decision, comment);
  if (!decided.ok()) return StateUnavailable(decided.error());
  using O = controller::RunDecision::Outcome;
  state::AuditEntry entry;
  entry.action = decision == "approved" ? "run.approve" : "run.reject";
  entry.environment = run->environment;
  entry.run_id = run->id;
  entry.plan_hash = run->plan_hash;
  entry.subject = comment;
  entry.result = decided->outcome == O::kRecorded ? "allowed" : "refused";
  entry.reason = decided->message;
  Status audited = Audit(context, request, entry);
  switch (decided->outcome) {
    case O::kRecorded:
      break;
    case O::kNotFound:
      return http::Response::Error(404, "not_found", decided->message);
    case O::kAuthor:
      return http::Response::Error(403, "author", decided->message);
    case O::kNotAwaiting:
      return http::Response::Error(409, "not_awaiting_approval", decided->message);
    case O::kAlreadyDecided:
      return http::Response::Error(409, "already_decided", decided->message);
  }
  if (!audited.ok()) return StateUnavailable(audited.error());
  Value v = RunValue(decided->run, false);
  v.Set("approvals", ApprovalsValue(decided->approvals));
  v.Set("approvals_required", Value::Int(decided->required));
  return http::Response::Json(200, v);
}

http::Response ApproveRun(const ApiContext& context, const http::Request& request) {
  return DecideRun(context, request, "approved");
}

http::Response RejectRun(const ApiContext& context, const http::Request& request) {
  return DecideRun(context, request, "rejected");
}

http::Response CancelRun(const ApiContext& context, const http::Request& request) {
  http::Response error;
  std::optional<state::Run> run = RouteRun(context, request, &error);
  if (!run.has_value()) return error;
  if (!request.body.empty()) {
    if (!ObjectBody(request, {}, &error).has_value()) return error;
  }
  if (context.controller == nullptr) {
    return http::Response::Error(503, "no_controller", "this server runs no controller");
  }
  Result<state::Run> canceled = context.controller->CancelRun(run->id);
  state::AuditEntry entry;
  entry.action = "run.cancel";
  entry.environment = run->environment;
  entry.run_id = run->id;
  entry.result = canceled.ok() ? "allowed" : "refused";
  if (!canceled.ok()) entry.reason = canceled.error().message;
  Status audited = Audit(context, request, entry);
  if (!canceled.ok()) {
    return http::Response::Error(
        409, "conflict",
        "cannot cancel run " + std::to_string(run->id) + ": " + canceled.error().message);
  }
  if (!audited.ok()) return StateUnavailable(audited.error());
  return http::Response::Json(202, RunValue(*canceled, false));
}

}  // namespace

Status AddRunRoutes(http::Router& router, const ApiContext& context) {
  return AddApiRoutes(router, context,
                      {{"POST", "/api/v1/environments/{env}/runs", "plan", &CreateRun},
                       {"GET", "/api/v1/environments/{env}/runs", "read", &ListEnvironmentRuns},
                       {"GET", "/api/v1/runs/{id}", "read", &ShowRun},
                       {"POST", "/api/v1/runs/{id}/cancel", "apply", &CancelRun},
                       {"POST", "/api/v1/runs/{id}/approve", "approve", &ApproveRun},
                       {"POST", "/api/v1/runs/{id}/reject", "approve", &RejectRun}});
}

}  // namespace driftless::server::api
