#include "server/api/environments.h"

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "engine/unlock.h"
#include "plan/plan.h"
#include "server/api/json.h"
#include "value/render.h"

namespace driftless::server::api {

namespace {

using value::Value;

// How many of an environment's newest applies are searched for a resource's last change.
constexpr int kChangeScan = 20;

// A held lock as the API shows it (the environment's `lock`, and what an unlock released).
Value LockValue(const state::Lock& lock) {
  Value v = Value::MakeObject();
  v.Set("id", Value::Int(lock.token));
  v.Set("holder", Value::String(lock.holder.UserAtHost()));
  v.Set("pid", Value::Int(lock.holder.pid));
  v.Set("operation", Value::String(lock.operation));
  v.Set("since", TimeValue(lock.acquired_at));
  v.Set("expires_at", TimeValue(lock.expires_at));
  return v;
}

// One environment as the API shows it, from what a branch maps (view) and what state holds.
Value EnvironmentValue(state::StateStore& store, const std::string& name,
                       const std::optional<controller::EnvironmentView>& view, Status* failed) {
  Value v = Value::MakeObject();
  v.Set("name", Value::String(name));
  v.Set("branch", view ? Value::String(view->branch) : Value::Null());
  v.Set("branch_head", view ? Value::String(view->head) : Value::Null());
  v.Set("sync", view ? Value::String(view->sync) : Value::Null());
  // An environment no branch maps to counts as protected (as the authenticator does).
  v.Set("protected", Value::Bool(view ? view->is_protected : true));
  v.Set("approvals", view ? Value::Int(view->approvals) : Value::Null());
  v.Set("remediation",
        view ? Value::String(view->remediates_unapproved ? "auto" : "approve") : Value::Null());
  v.Set("mapped", Value::Bool(view.has_value()));
  Result<std::vector<state::ApplyRecord>> applies = store.ListApplies(name, 1000);
  if (!applies.ok()) {
    *failed = applies.error();
    return v;
  }
  std::string applied;
  for (const auto& a : *applies) {
    if (a.kind == "destroy" && a.status == "succeeded") break;
    if (a.kind == "apply" && a.status == "succeeded" && !a.commit.empty()) {
      applied = a.commit;
      break;
    }
  }
  v.Set("applied_commit", applied.empty() ? Value::Null() : Value::String(applied));
  // Behind: 0 when the head is what was applied; else the count of the last fetch, while the
  // applied commit is still the one it was counted from; null when unknown.
  Value behind = Value::Null();
  if (view && !applied.empty() && applied == view->head) {
    behind = Value::Int(0);
  } else if (view && !applied.empty() && applied == view->applied && view->behind >= 0) {
    behind = Value::Int(view->behind);
  }
  v.Set("commits_behind", std::move(behind));
  Value last_apply = Value::Null();
  if (!applies->empty()) {
    const state::ApplyRecord& a = applies->front();
    last_apply = Value::MakeObject();
    last_apply.Set("id", Value::Int(a.id));
    last_apply.Set("kind", Value::String(a.kind));
    last_apply.Set("status", Value::String(a.status));
    last_apply.Set("started_at", TimeValue(a.started_at));
  }
  v.Set("last_apply", std::move(last_apply));
  Result<std::vector<state::DriftRecord>> drift = store.ListDrift(name, false, 1000);
  if (!drift.ok()) {
    *failed = drift.error();
    return v;
  }
  v.Set("open_drift", Value::Int(static_cast<int64_t>(drift->size())));
  v.Set("drift_status", Value::String(applies->empty() ? "unknown"
                                      : drift->empty() ? "in_sync"
                                                       : "drifted"));
  state::RunFilter filter;
  filter.environment = name;
  Result<state::Page<state::Run>> runs = store.ListRuns(filter, 0, 1);
  if (!runs.ok()) {
    *failed = runs.error();
    return v;
  }
  v.Set("last_run", runs->items.empty() ? Value::Null() : RunValue(runs->items.front(), false));
  Result<std::optional<state::Lock>> lock = store.GetLock(name);
  if (!lock.ok()) {
    *failed = lock.error();
    return v;
  }
  v.Set("lock", *lock ? LockValue(**lock) : Value::Null());
  return v;
}

// Every environment a branch maps to or state knows, sorted by name, with its view.
Result<std::map<std::string, std::optional<controller::EnvironmentView>>> KnownEnvironments(
    const ApiContext& context, state::StateStore& store) {
  std::map<std::string, std::optional<controller::EnvironmentView>> all;
  if (context.controller != nullptr) {
    for (controller::EnvironmentView& e : context.controller->Environments()) {
      std::string name = e.name;
      all[name] = std::move(e);
    }
  }
  Result<std::vector<state::Environment>> rows = store.ListEnvironments();
  if (!rows.ok()) return rows.error();
  for (const state::Environment& e : *rows) all.try_emplace(e.name);
  return all;
}

}  // namespace

// Every environment's row as of one event-log id and one fetch: an apply, a run's status and
// the server's drift watches append an event, and a branch's head or mapping changes only with
// a fetch, so rows computed under the same key are still true. What writes the state without
// an event (a `driftless drift` or `state import` run by hand) is seen within kMaxAge. The
// rows are kept as JSON text: a page is their concatenation.
class EnvironmentListCache {
 public:
  struct Rows {
    std::vector<std::pair<std::string, std::string>> by_name;  ///< name, JSON; sorted by name
  };
  // The rows under the key of now, computed when the key moved on: one computation at a time,
  // other requests wait for it rather than repeat it. Rows only older than kMaxAge are
  // refreshed by one request while the others are answered from them.
  Result<std::shared_ptr<const Rows>> Get(const ApiContext& context, state::StateStore& store) {
    Result<int64_t> latest = store.LatestEventId();
    if (!latest.ok()) return latest.error();
    const uint64_t fetches = context.controller != nullptr ? context.controller->fetches() : 0;
    std::unique_lock<std::mutex> lock(mu_);
    const auto now = std::chrono::steady_clock::now();
    const bool same_key = rows_ != nullptr && event_id_ == *latest && fetches_ == fetches;
    if (same_key && (now - computed_at_ < kMaxAge || refreshing_)) return rows_;
    if (same_key) {
      refreshing_ = true;
      lock.unlock();
      Result<std::shared_ptr<const Rows>> rows = Compute(context, store);
      lock.lock();
      refreshing_ = false;
      if (!rows.ok()) return rows.error();
      if (event_id_ == *latest && fetches_ == fetches) {
        rows_ = *rows;
        computed_at_ = now;
      }
      return rows;
    }
    Result<std::shared_ptr<const Rows>> rows = Compute(context, store);
    if (!rows.ok()) return rows.error();
    rows_ = *rows;
    computed_at_ = now;
    event_id_ = *latest;
    fetches_ = fetches;
    return rows_;
  }

 private:
  static Result<std::shared_ptr<const Rows>> Compute(const ApiContext& context,
                                                     state::StateStore& store) {
    auto all = KnownEnvironments(context, store);
    if (!all.ok()) return all.error();
    auto rows = std::make_shared<Rows>();
    for (const auto& [name, view] : *all) {
      Status failed = Status::Ok();
      rows->by_name.emplace_back(name, value::ToJson(EnvironmentValue(store, name, view, &failed)));
      if (!failed.ok()) return failed.error();
    }
    return std::shared_ptr<const Rows>(std::move(rows));
  }

  static constexpr std::chrono::seconds kMaxAge{1};
  std::mutex mu_;
  bool refreshing_ = false;  // a request refreshes rows_ (same key, past kMaxAge), unlocked
  std::shared_ptr<const Rows> rows_;
  std::chrono::steady_clock::time_point computed_at_;
  int64_t event_id_ = -1;
  uint64_t fetches_ = 0;
};

std::shared_ptr<EnvironmentListCache> MakeEnvironmentListCache() {
  return std::make_shared<EnvironmentListCache>();
}

namespace {

http::Response ListEnvironments(const ApiContext& context, const http::Request& request) {
  http::Response error;
  Result<PageRequest> page = ParsePageRequest(request, &error);
  if (!page.ok()) return error;
  Result<StorePool::Lease> store = context.stores->Acquire();
  if (!store.ok()) return StateUnavailable(store.error());
  Result<std::shared_ptr<const EnvironmentListCache::Rows>> rows =
      context.environment_list->Get(context, **store);
  if (!rows.ok()) return StateUnavailable(rows.error());
  // PageValue's form, from the rows' JSON.
  std::string body = "{\"items\":[";
  int count = 0;
  const std::string* last = nullptr;
  std::string next;
  for (const auto& [name, json] : (*rows)->by_name) {
    if (!page->cursor.empty() && name <= page->cursor) continue;
    if (!RequestSees(request, name)) continue;
    if (count == page->limit) {
      next = *last;
      break;
    }
    if (count++ > 0) body += ',';
    body += json;
    last = &name;
  }
  body += "],\"next_cursor\":";
  body += next.empty() ? "null" : value::ToJson(Value::String(next));
  body += '}';
  return http::Response::Json(200, std::move(body));
}

http::Response ShowEnvironment(const ApiContext& context, const http::Request& request) {
  const std::string env(request.Param("env"));
  Result<StorePool::Lease> store = context.stores->Acquire();
  if (!store.ok()) return StateUnavailable(store.error());
  std::optional<controller::EnvironmentView> view;
  if (auto missing = CheckEnvironment(context, **store, env, &view)) return *missing;
  Status failed = Status::Ok();
  Value v = EnvironmentValue(**store, env, view, &failed);
  if (!failed.ok()) return StateUnavailable(failed.error());
  return http::Response::Json(200, v);
}

// Releases the environment's lock by its id (engine::ForceUnlock: fenced holder, audited).
http::Response UnlockEnvironment(const ApiContext& context, const http::Request& request) {
  const std::string env(request.Param("env"));
  http::Response error;
  std::optional<Value> body = ObjectBody(request, {"lock"}, &error);
  if (!body.has_value()) return error;
  const Value* id = body->Find("lock");
  if (id == nullptr || !id->is_int() || id->as_int() <= 0) {
    return http::Response::Error(400, "bad_lock",
                                 "field 'lock' is required: the lock's id, a positive integer (the "
                                 "environment's lock.id in GET /api/v1/environments/{env})");
  }
  Result<StorePool::Lease> store = context.stores->Acquire();
  if (!store.ok()) return StateUnavailable(store.error());
  if (auto missing = CheckEnvironment(context, **store, env)) return *missing;
  engine::UnlockRequest unlock;
  unlock.env = env;
  unlock.token = id->as_int();
  unlock.who = request.principal;
  unlock.request_id = request.request_id;
  Result<state::Lock> released = engine::ForceUnlock(**store, unlock);
  if (!released.ok()) return http::Response::Error(409, "lock_conflict", released.error().message);
  Value out = Value::MakeObject();
  out.Set("released", LockValue(*released));
  return http::Response::Json(200, out);
}

// The last change of each of `addresses` among the environment's newest applies.
Result<std::map<std::string, Value>> LastChanges(state::StateStore& store, const std::string& env,
                                                 std::set<std::string> addresses) {
  std::map<std::string, Value> out;
  Result<std::vector<state::ApplyRecord>> applies = store.ListApplies(env, kChangeScan);
  if (!applies.ok()) return applies.error();
  for (const state::ApplyRecord& summary : *applies) {
    if (addresses.empty()) break;
    Result<std::optional<state::ApplyRecord>> apply = store.GetApply(summary.id);
    if (!apply.ok()) return apply.error();
    if (!apply->has_value()) continue;
    for (const state::ChangeRecord& c : (*apply)->changes) {
      if (addresses.erase(c.address) == 0) continue;
      Value change = Value::MakeObject();
      change.Set("apply_id", Value::Int(summary.id));
      change.Set("action", Value::String(c.action));
      change.Set("status", Value::String(c.status));
      change.Set("diff", Value::String(c.diff));
      change.Set("error", Value::String(c.error));
      change.Set("time", TimeValue(summary.started_at));
      out[c.address] = std::move(change);
    }
  }
  return out;
}

Value ResourceValue(const state::ResourceState& r, const std::map<std::string, Value>& changes,
                    const std::map<std::string, const state::DriftRecord*>& drift) {
  Value v = Value::MakeObject();
  v.Set("address", Value::String(r.address));
  v.Set("kind", Value::String(r.kind));
  v.Set("name", Value::String(r.name));
  v.Set("target", Value::String(r.target));
  v.Set("commit", Value::String(r.commit));
  v.Set("serial", Value::Int(r.serial));
  v.Set("updated_at", TimeValue(r.updated_at));
  Value deps = Value::MakeList();
  for (const std::string& d : r.depends_on) deps.as_list().push_back(Value::String(d));
  v.Set("depends_on", std::move(deps));
  // As state stores them: secrets are salted hashes there, never the values.
  v.Set("attributes", StoredJson(r.attrs_json));
  auto change = changes.find(r.address);
  v.Set("last_change", change == changes.end() ? Value::Null() : change->second);
  auto open = drift.find(r.address);
  if (open == drift.end()) {
    v.Set("drift", Value::Null());
  } else {
    Value d = Value::MakeObject();
    d.Set("id", Value::Int(open->second->id));
    d.Set("onset", TimeValue(open->second->onset));
    d.Set("last_seen", TimeValue(open->second->last_seen));
    d.Set("diff", Value::String(open->second->diff));
    d.Set("actor", Value::String(open->second->actor));
    v.Set("drift", std::move(d));
  }
  return v;
}

// The resources `rows` (already paged) as values, with their last change and open drift.
Result<Value::List> ResourceValues(state::StateStore& store, const std::string& env,
                                   const std::vector<const state::ResourceState*>& rows) {
  std::set<std::string> addresses;
  for (const state::ResourceState* r : rows) addresses.insert(r->address);
  Result<std::map<std::string, Value>> changes = LastChanges(store, env, addresses);
  if (!changes.ok()) return changes.error();
  Result<std::vector<state::DriftRecord>> drift = store.ListDrift(env, false, 100000);
  if (!drift.ok()) return drift.error();
  std::map<std::string, const state::DriftRecord*> open;
  for (const state::DriftRecord& d : *drift) open.emplace(d.address, &d);
  Value::List items;
  for (const state::ResourceState* r : rows) items.push_back(ResourceValue(*r, *changes, open));
  return items;
}

http::Response ListResources(const ApiContext& context, const http::Request& request) {
  const std::string env(request.Param("env"));
  http::Response error;
  Result<PageRequest> page = ParsePageRequest(request, &error);
  if (!page.ok()) return error;
  Result<StorePool::Lease> store = context.stores->Acquire();
  if (!store.ok()) return StateUnavailable(store.error());
  std::optional<controller::EnvironmentView> view;
  if (auto missing = CheckEnvironment(context, **store, env, &view)) return *missing;
  Result<std::vector<state::ResourceState>> resources = (*store)->ListResources(env);
  if (!resources.ok()) return StateUnavailable(resources.error());
  std::vector<const state::ResourceState*> rows;
  std::string next;
  for (const state::ResourceState& r : *resources) {
    if (!page->cursor.empty() && r.address <= page->cursor) continue;
    if (static_cast<int>(rows.size()) == page->limit) {
      next = rows.back()->address;
      break;
    }
    rows.push_back(&r);
  }
  Result<Value::List> items = ResourceValues(**store, env, rows);
  if (!items.ok()) return StateUnavailable(items.error());
  return http::Response::Json(200, PageValue(std::move(*items), std::move(next)));
}

// `?live=true` adds what a resource page shows beside the state's row: the declared value at
// the commit applied, the applied value, the provider's live read and the line diffs, from the
// engine's own plan of that one resource (Controller::InspectResource), redacted.
Status AddLiveView(const ApiContext& context, const std::string& env, const std::string& address,
                   Value* row, http::Response* error) {
  if (context.controller == nullptr) {
    *error = http::Response::Error(503, "no_controller", "this server runs no controller");
    return MakeError("no controller");
  }
  bool found = false;
  context.controller->InspectResource(
      env, address,
      [&](const Result<std::optional<plan::Change>>& change, const std::string& commit) {
        if (!change.ok()) {
          *error = http::Response::Error(409, "check_failed",
                                         "resource " + address + " of " + env +
                                             " cannot be read now: " + change.error().message);
          return;
        }
        if (!change->has_value()) return;
        found = true;
        const plan::Change& c = **change;
        if (!row->is_object()) *row = Value::MakeObject();
        row->Set("address", Value::String(c.address));
        row->Set("commit", Value::String(commit));
        row->Set("action", Value::String(std::string(plan::ActionName(c.action))));
        row->Set("reason", Value::String(c.reason));
        row->Set("drifted", Value::Bool(c.drift));
        row->Set("declared", value::Redact(c.planned));
        row->Set("applied", value::Redact(c.prior));
        row->Set("live", value::Redact(c.live));
        row->Set("diff", Value::String(c.diff));
        row->Set("drift_diff", Value::String(c.drift_diff));
      });
  if (error->status >= 400) return MakeError("refused");
  if (!found) return MakeError("not found");
  return Status::Ok();
}

http::Response ShowResource(const ApiContext& context, const http::Request& request) {
  const std::string env(request.Param("env"));
  const std::string address =
      std::string(request.Param("kind")) + "/" + std::string(request.Param("name"));
  bool live = false;
  if (request.query.find("live") != std::string::npos) {
    std::optional<std::string> text = request.QueryParam("live");
    if (text.has_value() && *text != "true" && *text != "false") {
      return http::Response::Error(
          400, "bad_live",
          "query parameter 'live' is true or false, not '" + http::Printable(*text, 40) + "'");
    }
    live = text.has_value() && *text == "true";
  }
  const std::string not_found = "environment " + env + " has no resource " +
                                http::Printable(address, 160) +
                                (live ? " declared or in state" : " in state");
  Value row;
  {
    // Not held while a target is read below.
    Result<StorePool::Lease> store = context.stores->Acquire();
    if (!store.ok()) return StateUnavailable(store.error());
    std::optional<controller::EnvironmentView> view;
    if (auto missing = CheckEnvironment(context, **store, env, &view)) return *missing;
    Result<std::optional<state::ResourceState>> resource = (*store)->GetResource(env, address);
    if (!resource.ok()) return StateUnavailable(resource.error());
    if (resource->has_value()) {
      Result<Value::List> items = ResourceValues(**store, env, {&**resource});
      if (!items.ok()) return StateUnavailable(items.error());
      row = std::move(items->front());
    } else if (!live) {
      return http::Response::Error(404, "not_found", not_found);
    }
  }
  if (live) {
    http::Response error;
    error.status = 200;
    Status added = AddLiveView(context, env, address, &row, &error);
    if (error.status >= 400) return error;
    if (!added.ok()) return http::Response::Error(404, "not_found", not_found);
  }
  std::string body;
  value::AppendRedactedJson(body, row);
  return http::Response::Json(200, std::move(body));
}

}  // namespace

Status AddEnvironmentRoutes(http::Router& router, const ApiContext& context) {
  return AddApiRoutes(
      router, context,
      {{"GET", "/api/v1/environments", "read", &ListEnvironments},
       {"GET", "/api/v1/environments/{env}", "read", &ShowEnvironment},
       {"GET", "/api/v1/environments/{env}/resources", "read", &ListResources},
       {"GET", "/api/v1/environments/{env}/resources/{kind}/{name}", "read", &ShowResource},
       {"POST", "/api/v1/environments/{env}/unlock", "unlock", &UnlockEnvironment}});
}

}  // namespace driftless::server::api
