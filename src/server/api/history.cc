#include "server/api/history.h"

#include <limits>
#include <optional>
#include <string>
#include <utility>

#include "server/api/json.h"

namespace driftless::server::api {

namespace {

using value::Value;

Value ApplyValue(const state::ApplyRecord& a, bool with_changes) {
  Value v = Value::MakeObject();
  v.Set("id", Value::Int(a.id));
  v.Set("environment", Value::String(a.environment));
  v.Set("kind", Value::String(a.kind));
  v.Set("status", Value::String(a.status));
  v.Set("summary", Value::String(a.summary));
  v.Set("user", Value::String(a.user));
  v.Set("host", Value::String(a.host));
  v.Set("pid", Value::Int(a.pid));
  v.Set("commit", Value::String(a.commit));
  v.Set("commit_subject", Value::String(a.commit_subject));
  v.Set("commit_author", Value::String(a.commit_author));
  v.Set("started_at", TimeValue(a.started_at));
  v.Set("finished_at", TimeValue(a.finished_at));
  if (with_changes) {
    Value changes = Value::MakeList();
    for (const state::ChangeRecord& c : a.changes) {
      Value change = Value::MakeObject();
      change.Set("address", Value::String(c.address));
      change.Set("action", Value::String(c.action));
      change.Set("status", Value::String(c.status));
      change.Set("error", Value::String(c.error));
      change.Set("diff", Value::String(c.diff));
      changes.as_list().push_back(std::move(change));
    }
    v.Set("changes", std::move(changes));
    v.Set("plan", StoredJson(a.plan_json));
  }
  return v;
}

http::Response ListHistory(const ApiContext& context, const http::Request& request) {
  EnvironmentList list;
  if (auto refused = StartEnvironmentList(context, request, &list)) return *refused;
  // ListApplies has no cursor: read newest first and skip to the cursor (histories are short
  // lists of summaries; the changes are read by the show route only).
  Result<std::vector<state::ApplyRecord>> applies =
      (*list.store)->ListApplies(list.env, std::numeric_limits<int>::max());
  if (!applies.ok()) return StateUnavailable(applies.error());
  return http::Response::Json(200, IdPageOf(*applies, list.page, [](const state::ApplyRecord& a) {
                                return ApplyValue(a, false);
                              }));
}

http::Response ShowHistory(const ApiContext& context, const http::Request& request) {
  const std::string env(request.Param("env"));
  std::optional<int64_t> id = ParseRunId(request.Param("id"));
  if (!id.has_value()) {
    return http::Response::Error(400, "bad_apply_id", "the apply id is not a number");
  }
  Result<StorePool::Lease> store = context.stores->Acquire();
  if (!store.ok()) return StateUnavailable(store.error());
  if (auto missing = CheckEnvironment(context, **store, env)) return *missing;
  Result<std::optional<state::ApplyRecord>> apply = (*store)->GetApply(*id);
  if (!apply.ok()) return StateUnavailable(apply.error());
  if (!apply->has_value() || (*apply)->environment != env) {
    return http::Response::Error(404, "not_found",
                                 "environment " + env + " has no apply " + std::to_string(*id));
  }
  Result<std::optional<state::RunRecord>> run = state::FindRunOfApply(**store, env, *id);
  if (!run.ok()) return StateUnavailable(run.error());
  Value v = ApplyValue(**apply, true);
  // The run that made it (none for an apply by the command line): its author and approvers.
  if (run->has_value()) {
    Value r = RunValue((*run)->run, false);
    r.Set("approvals", ApprovalsValue((*run)->approvals));
    v.Set("run", std::move(r));
  } else {
    v.Set("run", Value::Null());
  }
  return http::Response::Json(200, v);
}

}  // namespace

Status AddHistoryRoutes(http::Router& router, const ApiContext& context) {
  return AddApiRoutes(router, context,
                      {{"GET", "/api/v1/environments/{env}/history", "read", &ListHistory},
                       {"GET", "/api/v1/environments/{env}/history/{id}", "read", &ShowHistory}});
}

}  // namespace driftless::server::api
