// `driftless token create|list|revoke`: flags in, text out; the operations are auth/tokens.h.

#include "cli/token.h"

#include <cstdio>

#include "auth/audit.h"
#include "auth/tokens.h"
#include "base/identity.h"
#include "cli/views.h"
#include "value/value.h"

namespace driftless::cli {

namespace {

using value::Value;

int Fail(const std::string& message) {
  std::fprintf(stderr, "error: %s\n", message.c_str());
  return 1;
}

std::string TimeOrDash(int64_t t) { return t > 0 ? FormatTime(t) : "-"; }
Value TimeOrNull(int64_t t) { return t > 0 ? Value::String(FormatTime(t)) : Value(); }

}  // namespace

int RunTokenCreate(Workspace& ws, const TokenCreateFlags& flags, const Output& out) {
  auth::TokenRequest req;
  req.name = flags.name;
  req.role = flags.role;
  req.envs = flags.envs;
  req.rights = flags.rights;
  req.created_by = CurrentIdentity().UserAtHost();
  if (!flags.ttl.empty()) {
    Result<int64_t> ttl = auth::ParseTtl(flags.ttl);
    if (!ttl.ok()) return Fail(ttl.error().message);
    req.ttl_seconds = *ttl;
  }
  Result<state::StateStore*> store = ws.State();
  if (!store.ok()) return Fail(store.error().message);
  Result<auth::CreatedToken> made = auth::CreateApiToken(**store, req);
  if (!made.ok()) return Fail(made.error().message);
  const state::Token& t = made->record;
  if (out.json) {
    Value o = Value::MakeObject();
    o.Set("name", Value::String(t.name));
    o.Set("role", Value::String(t.role));
    o.Set("environments", Value::String(t.envs));
    o.Set("rights", Value::String(t.rights.empty() ? "all of its role" : t.rights));
    o.Set("created", TimeOrNull(t.created_at));
    o.Set("expires", TimeOrNull(t.expires_at));
    o.Set("token", Value::String(made->text));
    std::printf("%s\n", value::ToPrettyJson(o).c_str());
    return 0;
  }
  std::printf("Created token %s (%s%s, environments %s, %s).\n", t.name.c_str(), t.role.c_str(),
              t.rights.empty() ? "" : (" limited to " + t.rights).c_str(), t.envs.c_str(),
              t.expires_at > 0 ? ("expires " + FormatTime(t.expires_at)).c_str() : "never expires");
  std::printf(
      "It is shown once, now; only its hash is kept. Send it as "
      "`Authorization: Bearer <token>`:\n");
  std::printf("%s\n", made->text.c_str());
  return 0;
}

int RunTokenList(Workspace& ws, const Output& out) {
  Result<state::StateStore*> store = ws.State();
  if (!store.ok()) return Fail(store.error().message);
  Result<std::vector<state::Token>> tokens = (*store)->ListTokens();
  if (!tokens.ok()) return Fail(tokens.error().message);
  const int64_t now = NowUnix();
  if (out.json) {
    Value::List list;
    for (const state::Token& t : *tokens) {
      Value o = Value::MakeObject();
      o.Set("name", Value::String(t.name));
      o.Set("role", Value::String(t.role));
      o.Set("environments", Value::String(t.envs));
      o.Set("rights", Value::String(t.rights.empty() ? "all of its role" : t.rights));
      o.Set("created", TimeOrNull(t.created_at));
      o.Set("created_by", Value::String(t.created_by));
      o.Set("expires", TimeOrNull(t.expires_at));
      o.Set("revoked", TimeOrNull(t.revoked_at));
      o.Set("status", Value::String(auth::TokenStatus(t, now)));
      list.push_back(std::move(o));
    }
    Value root = Value::MakeObject();
    root.Set("tokens", Value::MakeList(std::move(list)));
    std::printf("%s\n", value::ToPrettyJson(root).c_str());
    return 0;
  }
  if (tokens->empty()) {
    std::printf("No tokens: `driftless token create --role viewer|editor|admin` makes one.\n");
    return 0;
  }
  std::printf("%-24s %-6s %-20s %-20s %-20s %-20s %-7s %s\n", "NAME", "ROLE", "ENVIRONMENTS",
              "RIGHTS", "CREATED", "EXPIRES", "STATUS", "CREATED BY");
  for (const state::Token& t : *tokens) {
    std::printf("%-24s %-6s %-20s %-20s %-20s %-20s %-7s %s\n", t.name.c_str(), t.role.c_str(),
                t.envs.c_str(), t.rights.empty() ? "(role)" : t.rights.c_str(),
                TimeOrDash(t.created_at).c_str(), TimeOrDash(t.expires_at).c_str(),
                auth::TokenStatus(t, now).c_str(),
                t.created_by.empty() ? "-" : t.created_by.c_str());
  }
  return 0;
}

int RunTokenRevoke(Workspace& ws, const std::string& name) {
  Result<state::StateStore*> store = ws.State();
  if (!store.ok()) return Fail(store.error().message);
  Status s = auth::RevokeApiToken(**store, name, CurrentIdentity().UserAtHost());
  if (!s.ok()) return Fail(s.error().message);
  std::printf("Revoked token %s: requests with it are refused from now on.\n", name.c_str());
  return 0;
}

int RunAudit(Workspace& ws, const AuditFlags& flags, const Output& out) {
  if (flags.limit < 1 || flags.limit > 1000) return Fail("--limit: use 1 to 1000");
  Result<state::StateStore*> store = ws.State();
  if (!store.ok()) return Fail(store.error().message);
  state::AuditFilter filter;
  filter.environment = flags.env;
  filter.who = flags.who;
  Result<state::Page<state::AuditEntry>> page =
      (*store)->ListAudit(filter, flags.cursor, flags.limit);
  if (!page.ok()) return Fail(page.error().message);
  return ShowAudit(*page, flags, out);
}

int ShowAudit(const state::Page<state::AuditEntry>& entries, const AuditFlags& flags,
              const Output& out) {
  const state::Page<state::AuditEntry>* page = &entries;
  if (out.json) {
    Value::List items;
    for (const state::AuditEntry& e : page->items) items.push_back(auth::AuditEntryValue(e));
    Value root = Value::MakeObject();
    root.Set("items", Value::MakeList(std::move(items)));
    root.Set("next_cursor", page->next_cursor == 0
                                ? Value::Null()
                                : Value::String(std::to_string(page->next_cursor)));
    std::printf("%s\n", value::ToPrettyJson(root).c_str());
    return 0;
  }
  if (page->items.empty()) {
    std::printf("No audit entries%s.\n", flags.env.empty() && flags.who.empty() ? "" : " match");
    return 0;
  }
  std::printf("%-6s %-20s %-16s %-18s %-16s %-8s %s\n", "ID", "TIME", "WHO", "ACTION",
              "ENVIRONMENT", "RESULT", "DETAIL");
  for (const state::AuditEntry& e : page->items) {
    std::string detail = e.subject;
    if (e.run_id != 0) detail += (detail.empty() ? "run " : ", run ") + std::to_string(e.run_id);
    if (!e.plan_hash.empty()) detail += ", plan " + e.plan_hash.substr(0, 12);
    if (!e.reason.empty()) detail += (detail.empty() ? "" : ": ") + e.reason;
    std::printf("%-6lld %-20s %-16s %-18s %-16s %-8s %s\n", static_cast<long long>(e.id),
                TimeOrDash(e.time).c_str(), e.who.empty() ? "-" : e.who.c_str(), e.action.c_str(),
                e.environment.empty() ? "-" : e.environment.c_str(), e.result.c_str(),
                detail.c_str());
  }
  if (page->next_cursor != 0) {
    std::printf("(older entries: driftless audit --before %lld)\n",
                static_cast<long long>(page->next_cursor));
  }
  return 0;
}

}  // namespace driftless::cli
