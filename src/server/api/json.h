#pragma once

// What the REST routes share: cursor pagination, JSON bodies checked field by field, the JSON
// forms of runs, and the token behind a request (for lists that a token's environment glob
// filters).

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "server/api/api.h"
#include "server/http/message.h"
#include "state/control_store.h"
#include "state/state_store.h"
#include "value/value.h"

namespace driftless::server::api {

/// `?cursor=&limit=` of a list: `cursor` is what the previous page's `next_cursor` said ("" for
/// the first page), `limit` 1 to kMaxPageLimit (default kDefaultPageLimit).
struct PageRequest {
  std::string cursor;
  int limit = 50;
};

/// The default and the largest `limit` of a list.
inline constexpr int kDefaultPageLimit = 50;
inline constexpr int kMaxPageLimit = 500;

/// The page asked for, or a 400 envelope (`bad_cursor`, `bad_limit`) naming the parameter.
Result<PageRequest> ParsePageRequest(const http::Request& request, http::Response* error);

/// An id cursor ("" → 0, the newest): std::nullopt when the cursor is not one.
std::optional<int64_t> IdCursor(std::string_view cursor);

/// {"items": [...], "next_cursor": "..." | null}.
value::Value PageValue(value::Value::List items, std::string next_cursor);

/// A page of a list keyed by ids (newest first): the ids below `cursor` (0: from the newest).
struct IdPage {
  int64_t cursor = 0;
  int limit = kDefaultPageLimit;
};

/// The id page asked for, or std::nullopt and a 400 envelope (`bad_cursor`, `bad_limit`).
std::optional<IdPage> ParseIdPage(const http::Request& request, http::Response* error);

/// PageValue of a store's page (a next cursor of 0: the last page).
value::Value PageValue(value::Value::List items, int64_t next_cursor);

/// The page of `rows` (newest first, each with an `id`) that `page` asks for, each row made a
/// value by `to_value`: for lists the store reads whole.
template <typename T, typename F>
value::Value IdPageOf(const std::vector<T>& rows, const IdPage& page, F to_value) {
  value::Value::List items;
  int64_t last = 0, next = 0;
  for (const T& row : rows) {
    if (page.cursor != 0 && row.id >= page.cursor) continue;
    if (static_cast<int>(items.size()) == page.limit) {
      next = last;
      break;
    }
    items.push_back(to_value(row));
    last = row.id;
  }
  return PageValue(std::move(items), next);
}

/// The request's body as a JSON object whose members are all in `allowed`; otherwise the
/// response to send: 400 `malformed_json` (with line:col), `bad_body` (not an object) or
/// `unknown_field` (naming the field and the fields allowed).
std::optional<value::Value> ObjectBody(const http::Request& request,
                                       const std::vector<std::string>& allowed,
                                       http::Response* error);

/// 503 `state_unavailable` for a state that failed.
http::Response StateUnavailable(const Error& error);
/// 404 `not_found` for an environment that no branch maps to and that state does not know.
http::Response UnknownEnvironment(std::string_view env);

/// Nothing when `env` exists (a branch maps to it, or state has its row; `view` is then set to
/// the controller's view, if any); otherwise the response: 404 (UnknownEnvironment) or 503.
std::optional<http::Response> CheckEnvironment(
    const ApiContext& context, state::StateStore& store, const std::string& env,
    std::optional<controller::EnvironmentView>* view = nullptr);

/// What a list of one environment's records starts from: the route's {env} (checked), the id
/// page asked for and a state connection.
struct EnvironmentList {
  std::string env;
  IdPage page;
  std::optional<StorePool::Lease> store;
};

/// Fills `list`, or returns the response to send instead (400, 404, 503).
std::optional<http::Response> StartEnvironmentList(const ApiContext& context,
                                                   const http::Request& request,
                                                   EnvironmentList* list);

/// A JSON text stored in state as a value (a string when it does not parse; null when empty).
value::Value StoredJson(const std::string& text);
/// Unix seconds as a value: null for 0.
value::Value TimeValue(int64_t seconds);

/// A run as the API shows it; the plan's text and JSON only when `with_plan`.
/// A run's decisions, oldest first: who, decision, comment, plan_hash, created_at.
value::Value ApprovalsValue(const std::vector<state::Approval>& approvals);
value::Value RunValue(const state::Run& run, bool with_plan);

/// True when the token the authenticator accepted for the request may see environment `env`
/// (its glob, Request::principal_scope, matches; no token: false).
bool RequestSees(const http::Request& request, std::string_view env);

/// A route of the REST API: a synchronous handler of the context and the request.
struct ApiRoute {
  const char* method;   ///< "GET", "POST"
  const char* pattern;  ///< "/api/v1/runs/{id}"
  const char* right;    ///< the right the authenticator checks ("read", "plan", ...)
  http::Response (*handler)(const ApiContext& context, const http::Request& request);
};

/// Registers `routes` (blocking: they read the state).
Status AddApiRoutes(http::Router& router, const ApiContext& context,
                    std::initializer_list<ApiRoute> routes);

}  // namespace driftless::server::api
