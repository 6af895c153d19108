// `driftless token create|list|revoke` with the real binary, on a SQLite state and on a
// PostgreSQL state (a fresh database on the test server): the token is printed once, alone on
// the last line; only a hash of it reaches state; list never shows a secret or a hash; revoke,
// expiry, bad flags that name themselves and store nothing, and two creates of one name at once.
//
// The file's name holds "postgres", so its tests get the test PostgreSQL server.

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "e2e/harness.h"
#include "support/postgres.h"

namespace driftless::test {
namespace {

using Runner = std::function<RunResult(const std::vector<std::string>&)>;

// The last line of `out` (without its newline).
std::string LastLine(const std::string& out) {
  std::string s = out;
  if (!s.empty() && s.back() == '\n') s.pop_back();
  size_t nl = s.rfind('\n');
  return nl == std::string::npos ? s : s.substr(nl + 1);
}

const Json* TokenNamed(const Json& list, const std::string& name) {
  const Json* tokens = list.Find("tokens");
  if (tokens == nullptr) return nullptr;
  for (const Json& t : tokens->items) {
    if (t.Str("name") == name) return &t;
  }
  return nullptr;
}

// The scenario both backends go through. `state_text` returns everything the state holds as
// text (to search for a secret).
void TokenLifecycle(const Runner& run, const std::function<std::string()>& state_text) {
  RunResult made = run({"token", "create", "--role", "editor", "--envs", "preview-*", "--name",
                        "ci", "--ttl", "90d"});
  ASSERT_EQ(made.exit_code, 0) << Summary(made);
  const std::string token = LastLine(made.out);
  EXPECT_TRUE(std::regex_match(token, std::regex("dl_[A-Za-z0-9_-]{43}"))) << made.out;
  EXPECT_NE(made.out.find("Created token ci (editor, environments preview-*, expires "),
            std::string::npos)
      << made.out;
  EXPECT_EQ(made.err, "");
  // The secret reaches state only as a hash.
  const std::string secret = token.substr(3);
  EXPECT_EQ(state_text().find(secret), std::string::npos);

  RunResult admin = run({"token", "create", "--role", "admin"});
  ASSERT_EQ(admin.exit_code, 0) << Summary(admin);
  const std::string admin_token = LastLine(admin.out);
  EXPECT_NE(admin_token, token);

  RunResult list = run({"token", "list"});
  ASSERT_EQ(list.exit_code, 0) << Summary(list);
  EXPECT_NE(list.out.find("NAME"), std::string::npos) << list.out;
  EXPECT_TRUE(std::regex_search(list.out, std::regex("\\nci +editor +preview-\\* .* active ")))
      << list.out;
  EXPECT_TRUE(std::regex_search(list.out, std::regex("\\nadmin-[0-9a-f]{8} +admin +\\*\\* ")))
      << list.out;
  RunResult json = run({"token", "list", "--json"});
  ASSERT_EQ(json.exit_code, 0) << Summary(json);
  for (const RunResult* r : {&list, &json}) {
    // Never a secret, never a hash (64 hex digits).
    EXPECT_EQ(r->out.find(secret), std::string::npos);
    EXPECT_EQ(r->out.find(admin_token.substr(3)), std::string::npos);
    EXPECT_FALSE(std::regex_search(r->out, std::regex("[0-9a-f]{64}"))) << r->out;
  }
  Json parsed = ParseJsonOrFail(json.out, "token list --json");
  const Json* ci = TokenNamed(parsed, "ci");
  ASSERT_NE(ci, nullptr) << json.out;
  EXPECT_EQ(ci->Str("role"), "editor");
  EXPECT_EQ(ci->Str("environments"), "preview-*");
  EXPECT_EQ(ci->Str("status"), "active");
  EXPECT_FALSE(ci->IsNull("expires"));
  EXPECT_TRUE(ci->IsNull("revoked"));
  EXPECT_EQ(ci->Find("hash"), nullptr);
  EXPECT_EQ(ci->Find("token"), nullptr);

  // Bad flags name themselves and store nothing.
  struct Bad {
    std::vector<std::string> args;
    std::string message;
  };
  const std::vector<Bad> kBad = {
      {{"token", "create", "--role", "root"}, "--role: root not in {viewer,editor,admin}"},
      {{"token", "create", "--role", "viewer", "--ttl", "3x"},
       "error: --ttl 3x: use a number and a unit: 90d, 12h, 30m, 1h30m, 2w"},
      {{"token", "create", "--role", "viewer", "--envs", "a***"},
       "error: --envs: environment glob \"a***\" has ***"},
      {{"token", "create", "--role", "viewer", "--name", "../x"},
       "error: --name ../x: starts with a letter or a digit"},
      {{"token", "create", "--role", "viewer", "--name", "ci"},
       "error: a token named ci exists already; revoke it first or choose another --name"},
      {{"token", "create"}, "--role is required"},
      {{"token", "revoke", "nobody"},
       "error: no active token is named nobody (driftless token list shows them)"},
  };
  for (const Bad& b : kBad) {
    RunResult r = run(b.args);
    EXPECT_EQ(r.exit_code, 1) << Summary(r);
    EXPECT_NE(r.err.find(b.message), std::string::npos) << r.err;
    EXPECT_EQ(r.out.find("dl_"), std::string::npos) << r.out;
  }
  json = run({"token", "list", "--json"});
  ASSERT_EQ(json.exit_code, 0);
  EXPECT_EQ(ParseJsonOrFail(json.out, "token list --json").Find("tokens")->items.size(), 2u);

  RunResult revoked = run({"token", "revoke", "ci"});
  ASSERT_EQ(revoked.exit_code, 0) << Summary(revoked);
  EXPECT_EQ(revoked.out, "Revoked token ci: requests with it are refused from now on.\n");
  RunResult again = run({"token", "revoke", "ci"});
  EXPECT_EQ(again.exit_code, 1) << Summary(again);
  json = run({"token", "list", "--json"});
  parsed = ParseJsonOrFail(json.out, "token list --json");
  ci = TokenNamed(parsed, "ci");
  ASSERT_NE(ci, nullptr);
  EXPECT_EQ(ci->Str("status"), "revoked");
  EXPECT_FALSE(ci->IsNull("revoked"));
  // The name of a revoked token may be used again.
  RunResult reuse = run({"token", "create", "--role", "viewer", "--name", "ci"});
  EXPECT_EQ(reuse.exit_code, 0) << Summary(reuse);

  // `driftless audit`: every token decision, newest first, as text and as the API's page.
  RunResult audit = run({"audit"});
  ASSERT_EQ(audit.exit_code, 0) << Summary(audit);
  EXPECT_NE(audit.out.find("ACTION"), std::string::npos) << audit.out;
  const size_t revoke_line = audit.out.find("token.revoke");
  const size_t create_line = audit.out.find("token.create");
  ASSERT_NE(revoke_line, std::string::npos) << audit.out;
  ASSERT_NE(create_line, std::string::npos) << audit.out;
  EXPECT_LT(create_line, revoke_line) << "the re-creation of ci is newer than its revoke";
  EXPECT_EQ(audit.out.find(secret), std::string::npos);
  RunResult audit_json = run({"audit", "--json", "--limit", "2"});
  ASSERT_EQ(audit_json.exit_code, 0) << Summary(audit_json);
  Json page = ParseJsonOrFail(audit_json.out, "audit --json");
  ASSERT_NE(page.Find("items"), nullptr) << audit_json.out;
  ASSERT_EQ(page.Find("items")->items.size(), 2u) << audit_json.out;
  EXPECT_EQ(page.Find("items")->items[0].Str("action"), "token.create");
  EXPECT_EQ(page.Find("items")->items[0].Str("subject"), "ci");
  EXPECT_EQ(page.Find("items")->items[0].Str("result"), "allowed");
  EXPECT_EQ(page.Find("items")->items[1].Str("action"), "token.revoke");
  ASSERT_FALSE(page.IsNull("next_cursor")) << audit_json.out;
  RunResult older = run({"audit", "--json", "--before", page.Str("next_cursor")});
  ASSERT_EQ(older.exit_code, 0) << Summary(older);
  Json rest = ParseJsonOrFail(older.out, "audit --json --before");
  ASSERT_FALSE(rest.Find("items")->items.empty()) << older.out;
  EXPECT_LT(rest.Find("items")->items[0].Int("id"), page.Find("items")->items[1].Int("id"));
  RunResult none = run({"audit", "--env", "nowhere"});
  ASSERT_EQ(none.exit_code, 0) << Summary(none);
  EXPECT_EQ(none.out, "No audit entries match.\n");
  EXPECT_EQ(run({"audit", "--limit", "0"}).exit_code, 1);

  // Expiry: a token with a 1-second life is listed as expired once that second has passed
  // (polled; the minute is a failure detector).
  ASSERT_EQ(
      run({"token", "create", "--role", "viewer", "--name", "brief", "--ttl", "1s"}).exit_code, 0);
  std::string status;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(1);
  while (status != "expired" && std::chrono::steady_clock::now() < deadline) {
    RunResult r = run({"token", "list", "--json"});
    ASSERT_EQ(r.exit_code, 0) << Summary(r);
    const Json listed = ParseJsonOrFail(r.out, "token list --json");
    const Json* brief = TokenNamed(listed, "brief");
    ASSERT_NE(brief, nullptr);
    status = brief->Str("status");
    if (status != "expired") std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_EQ(status, "expired");
}

TEST(e2e_tokens, LifecycleOnSqlite) {
  Sandbox s;
  TokenLifecycle([&](const std::vector<std::string>& args) { return s.Run(args); },
                 [&] { return StateBytes(s); });
}

TEST(e2e_tokens, LifecycleOnPostgres) {
  PgSandbox s;
  ASSERT_FALSE(s.uri().empty());
  TokenLifecycle([&](const std::vector<std::string>& args) { return s.Pg(args); },
                 [&] {
                   return QueryValue(s.dsn(),
                                     "SELECT string_agg(t::text, ' ') FROM "
                                     "driftless.tokens t") +
                          QueryValue(s.dsn(),
                                     "SELECT string_agg(a::text, ' ') FROM "
                                     "driftless.audit a");
                 });
  // Both creations and the revocation are in the audit log, with who did them.
  EXPECT_EQ(QueryValue(s.dsn(),
                       "SELECT string_agg(action || ' ' || subject, ',' ORDER BY id) "
                       "FROM driftless.audit WHERE subject = 'ci'"),
            "token.create ci,token.revoke ci,token.create ci");
  EXPECT_EQ(QueryValue(s.dsn(), "SELECT count(*) FROM driftless.audit WHERE who NOT LIKE '%@%'"),
            "0");
}

TEST(e2e_tokens, TwoCreatesOfOneNameAtOnceMakeOneToken) {
  PgSandbox s;
  ASSERT_FALSE(s.uri().empty());
  ASSERT_EQ(s.Pg({"token", "list"}).exit_code, 0);  // the schema exists before the race
  std::vector<Proc> procs;
  for (int i = 0; i < 4; ++i) {
    procs.push_back(Spawn(s, {"token", "create", "--role", "viewer", "--name", "shared"},
                          "create" + std::to_string(i)));
  }
  int ok = 0;
  for (Proc& p : procs) {
    int code = Wait(p.pid);
    if (code == 0) {
      ++ok;
      EXPECT_TRUE(std::regex_match(LastLine(p.Out()), std::regex("dl_[A-Za-z0-9_-]{43}")));
    } else {
      EXPECT_EQ(code, 1);
      EXPECT_NE(p.Err().find("a token named shared exists already"), std::string::npos) << p.Err();
    }
  }
  EXPECT_EQ(ok, 1);
  EXPECT_EQ(QueryValue(s.dsn(), "SELECT count(*) FROM driftless.tokens WHERE name = 'shared'"),
            "1");
}

}  // namespace
}  // namespace driftless::test
