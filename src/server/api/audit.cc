#include "server/api/audit.h"

#include <optional>
#include <string>
#include <utility>

#include "auth/audit.h"
#include "server/api/json.h"

namespace driftless::server::api {

namespace {

using value::Value;

http::Response ListAudit(const ApiContext& context, const http::Request& request) {
  http::Response error;
  std::optional<IdPage> page = ParseIdPage(request, &error);
  if (!page.has_value()) return error;
  state::AuditFilter filter;
  if (std::optional<std::string> env = request.QueryParam("environment")) filter.environment = *env;
  if (std::optional<std::string> who = request.QueryParam("who")) filter.who = *who;
  Result<StorePool::Lease> store = context.stores->Acquire();
  if (!store.ok()) return StateUnavailable(store.error());
  Result<state::Page<state::AuditEntry>> entries =
      (*store)->ListAudit(filter, page->cursor, page->limit);
  if (!entries.ok()) return StateUnavailable(entries.error());
  Value::List items;
  for (const state::AuditEntry& e : entries->items) items.push_back(auth::AuditEntryValue(e));
  return http::Response::Json(200, PageValue(std::move(items), entries->next_cursor));
}

}  // namespace

Status AddAuditRoutes(http::Router& router, const ApiContext& context) {
  return AddApiRoutes(router, context, {{"GET", "/api/v1/audit", "tokens", &ListAudit}});
}

}  // namespace driftless::server::api
