#include "server/api/tokens.h"

#include <optional>
#include <string>
#include <utility>

#include "auth/rights.h"
#include "auth/tokens.h"
#include "base/strings.h"
#include "server/api/json.h"

namespace driftless::server::api {

namespace {

using value::Value;

Value TokenValue(const state::Token& t, int64_t now) {
  Value v = Value::MakeObject();
  v.Set("name", Value::String(t.name));
  v.Set("role", Value::String(t.role));
  v.Set("envs", Value::String(t.envs));
  v.Set("rights", Value::String(t.rights));
  v.Set("created_by", Value::String(t.created_by));
  v.Set("created_at", TimeValue(t.created_at));
  v.Set("expires_at", TimeValue(t.expires_at));
  v.Set("revoked_at", TimeValue(t.revoked_at));
  v.Set("status", Value::String(auth::TokenStatus(t, now)));
  return v;
}

// The library's messages name the CLI's flags ("--role: ..."); the API names fields.
std::string FieldMessage(std::string message) {
  if (message.rfind("--", 0) != 0) return message;
  size_t end = message.find_first_of(": ", 2);
  if (end == std::string::npos) return message;
  return "field '" + message.substr(2, end - 2) + "'" + message.substr(end);
}

http::Response ListTokens(const ApiContext& context, const http::Request& request) {
  http::Response error;
  std::optional<IdPage> page = ParseIdPage(request, &error);
  if (!page.has_value()) return error;
  Result<StorePool::Lease> store = context.stores->Acquire();
  if (!store.ok()) return StateUnavailable(store.error());
  Result<std::vector<state::Token>> tokens = (*store)->ListTokens();
  if (!tokens.ok()) return StateUnavailable(tokens.error());
  // Sorted by name, then creation; the cursor is how many were on the pages before.
  Value::List items;
  const size_t start = static_cast<size_t>(page->cursor);
  for (size_t i = start; i < tokens->size() && items.size() < static_cast<size_t>(page->limit);
       ++i) {
    items.push_back(TokenValue((*tokens)[i], context.Now()));
  }
  const size_t end = start + items.size();
  return http::Response::Json(
      200, PageValue(std::move(items), end < tokens->size() ? static_cast<int64_t>(end) : 0));
}

http::Response CreateToken(const ApiContext& context, const http::Request& request) {
  http::Response error;
  std::optional<Value> body =
      ObjectBody(request, {"envs", "name", "rights", "role", "ttl"}, &error);
  if (!body.has_value()) return error;
  auth::TokenRequest r;
  for (const auto& [key, member] : body->as_object()) {
    if (!member.is_string()) {
      return http::Response::Error(400, "bad_field", "field '" + key + "' must be a string");
    }
  }
  if (const Value* role = body->Find("role")) r.role = role->as_string();
  if (const Value* name = body->Find("name")) r.name = name->as_string();
  if (const Value* envs = body->Find("envs")) r.envs = envs->as_string();
  if (const Value* rights = body->Find("rights")) r.rights = rights->as_string();
  if (const Value* ttl = body->Find("ttl")) {
    Result<int64_t> seconds = auth::ParseTtl(ttl->as_string());
    if (!seconds.ok()) {
      return http::Response::Error(400, "bad_field", FieldMessage(seconds.error().message));
    }
    r.ttl_seconds = *seconds;
  }
  r.created_by = request.principal;
  r.request_id = request.request_id;
  r.now = context.Now();
  Result<StorePool::Lease> store = context.stores->Acquire();
  if (!store.ok()) return StateUnavailable(store.error());
  // A token limited to rights makes tokens limited to some of them: it cannot mint more than it
  // has.
  Result<std::vector<state::Token>> all = (*store)->ListTokens();
  if (!all.ok()) return StateUnavailable(all.error());
  for (const state::Token& creator : *all) {
    if (creator.name != request.principal || creator.revoked_at != 0 || creator.rights.empty())
      continue;
    Result<std::string> wanted = auth::NormalizeRights(r.rights, r.role);
    bool within = wanted.ok() && !wanted->empty();
    for (const std::string& right : Split(wanted.ok() ? *wanted : "", ',')) {
      std::optional<auth::Right> parsed = auth::ParseRight(right);
      within = within && parsed.has_value() && auth::TokenHasRight(creator, *parsed);
    }
    if (!within) {
      state::AuditEntry entry;
      entry.action = "token.create";
      entry.subject = r.name;
      entry.result = "refused";
      entry.reason = "token " + creator.name + " is limited to the rights " + creator.rights +
                     ": the tokens it makes must be limited to some of them (field 'rights')";
      Status audited = Audit(context, request, entry);
      return http::Response::Error(
          403, "forbidden",
          entry.reason +
              (audited.ok() ? "" : " (and the audit log failed: " + audited.error().message + ")"));
    }
  }
  // CreateApiToken appends token.create to the audit log itself.
  Result<auth::CreatedToken> made = auth::CreateApiToken(**store, r);
  if (!made.ok()) {
    return http::Response::Error(400, "bad_field", FieldMessage(made.error().message));
  }
  Value v = TokenValue(made->record, context.Now());
  v.Set("token", Value::String(made->text));
  return http::Response::Json(201, v);
}

http::Response RevokeToken(const ApiContext& context, const http::Request& request) {
  const std::string name(request.Param("name"));
  Result<StorePool::Lease> store = context.stores->Acquire();
  if (!store.ok()) return StateUnavailable(store.error());
  Result<std::vector<state::Token>> tokens = (*store)->ListTokens();
  if (!tokens.ok()) return StateUnavailable(tokens.error());
  bool live = false;
  for (const state::Token& t : *tokens) live = live || (t.name == name && t.revoked_at == 0);
  if (!live) {
    return http::Response::Error(404, "not_found", "no active token is named " + name);
  }
  // RevokeApiToken appends token.revoke to the audit log itself.
  Status revoked =
      auth::RevokeApiToken(**store, name, request.principal, request.request_id, context.Now());
  if (!revoked.ok()) return StateUnavailable(revoked.error());
  Value v = Value::MakeObject();
  v.Set("name", Value::String(name));
  v.Set("status", Value::String("revoked"));
  return http::Response::Json(200, v);
}

}  // namespace

Status AddTokenRoutes(http::Router& router, const ApiContext& context) {
  return AddApiRoutes(router, context,
                      {{"GET", "/api/v1/tokens", "tokens", &ListTokens},
                       {"POST", "/api/v1/tokens", "tokens", &CreateToken},
                       {"DELETE", "/api/v1/tokens/{name}", "tokens", &RevokeToken}});
}

}  // namespace driftless::server::api
