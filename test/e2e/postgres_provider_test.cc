// The postgres provider end to end, against the test PostgreSQL server: apply, no-change plan,
// a manual GRANT, ALTER ROLE, DROP SCHEMA and password change each seen by `driftless drift`
// and by `driftless watch` (attributed to the role that made it where PostgreSQL can tell),
// `policy: enforce` reverting them, and destroy removing everything, the event trigger included.

#include <gtest/gtest.h>
#include <signal.h>

#include <string>
#include <vector>

#include "e2e/harness.h"
#include "support/postgres.h"

namespace driftless::test {
namespace {

bool Contains(const std::string& text, const std::string& needle) {
  return text.find(needle) != std::string::npos;
}

// Every character of a role name made by UniqueName is [a-z0-9_]: no quoting needed in the
// test's own SQL.
class PostgresProviderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dsn_ = CreateTestDatabase("e2e_pg");
    ASSERT_FALSE(dsn_.empty());
    db_ = QueryValue(dsn_, "SELECT current_database()");
    role_ = UniqueName("app");
    pw_role_ = UniqueName("pw");
    intruder_ = UniqueName("intruder");
    ASSERT_EQ(Execute(dsn_, "CREATE ROLE " + intruder_ + " LOGIN SUPERUSER"), "");
    box_.WriteProject("  db: {provider: postgres, dsn: \"${secret.PG}\"}\n");
    ASSERT_EQ(Execute(dsn_, "CREATE TABLE public.t (x int)"), "");
  }

  void TearDown() override {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      EXPECT_EQ(Wait(pid_), 0) << ReadFile(BackgroundFile(box_, ".err"));
    }
    // Roles are global: leave none behind.
    (void)Execute(dsn_, "DROP SCHEMA IF EXISTS app CASCADE");
    for (const auto& r : {role_, pw_role_}) {
      (void)Execute(dsn_, "REVOKE ALL ON DATABASE " + db_ + " FROM " + r);
      (void)Execute(dsn_, "REVOKE ALL ON ALL TABLES IN SCHEMA public FROM " + r);
      (void)Execute(dsn_, "DROP ROLE IF EXISTS " + r);
    }
  }

  void Declare(const std::string& policy = "") {
    const std::string p = policy.empty() ? "" : "policy: " + policy + "\n";
    box_.WriteRepoFile(
        "db.yaml",
        "kind: postgres.role\nname: app\ntarget: db\n" + p + "spec: {name: " + role_ +
            ", login: true}\n"
            "---\nkind: postgres.role\nname: pw\ntarget: db\n" +
            p + "spec: {name: " + pw_role_ +
            ", login: true, password: \"${secret.PW}\"}\n"
            "---\nkind: postgres.schema\nname: app\ntarget: db\n" +
            p +
            "spec: {owner: \"${postgres.role.app.name}\"}\n"
            "---\nkind: postgres.grant\nname: tables\ntarget: db\n" +
            p +
            "spec: {role: \"${postgres.role.app.name}\", on: tables, schema: public, "
            "privileges: [select]}\n"
            "---\nkind: postgres.grant\nname: connect\ntarget: db\n" +
            p +
            "spec: {role: \"${postgres.role.app.name}\", on: database, privileges: [connect]}\n"
            "---\nkind: postgres.extension\nname: hstore\ntarget: db\n" +
            p + "spec: {schema: \"${postgres.schema.app.name}\"}\n");
  }

  std::vector<std::string> Env() const {
    return {"DRIFTLESS_SECRET_PG=" + dsn_, "DRIFTLESS_SECRET_PW=first password"};
  }
  RunResult Run(const std::vector<std::string>& args) const { return box_.Run(args, Env()); }

  void Apply() {
    RunResult a = Run({"apply", "--auto-approve"});
    ASSERT_EQ(a.exit_code, 0) << a.out << a.err;
  }

  // The manual changes, made by another role (a superuser, so that it can do all of them).
  std::string AsIntruder(const std::string& sql) {
    return Execute(dsn_ + " user=" + intruder_, sql);
  }
  void ChangeByHand() {
    ASSERT_EQ(AsIntruder("GRANT INSERT ON public.t TO " + role_), "");
    ASSERT_EQ(AsIntruder("ALTER ROLE " + role_ + " CREATEDB"), "");
    ASSERT_EQ(AsIntruder("ALTER ROLE " + pw_role_ + " PASSWORD 'changed by hand'"), "");
    ASSERT_EQ(AsIntruder("DROP SCHEMA app CASCADE"), "");
  }

  void StartWatch() {
    pid_ = box_.Start({"watch", "--interval", "1h"}, Env());  // until TearDown ends it
    ASSERT_TRUE(WaitForOutput(box_, "\"type\":\"watch.started\""))
        << Output() << ReadFile(BackgroundFile(box_, ".err"));
  }
  std::string Output() const { return BackgroundOutput(box_); }
  // The first event line of `type` about `resource`, or "" after kPatience.
  std::string WaitForEvent(const std::string& type, const std::string& resource) {
    std::string found;
    PollUntil([&] {
      std::string out = Output();
      size_t start = 0;
      while (start < out.size()) {
        size_t nl = out.find('\n', start);
        std::string line = out.substr(start, nl - start);
        if (Contains(line, "\"type\":\"" + type + "\"") &&
            Contains(line, "\"resource\":\"" + resource + "\"")) {
          found = line;
          return true;
        }
        if (nl == std::string::npos) break;
        start = nl + 1;
      }
      return false;
    });
    return found;
  }
  Sandbox box_;
  std::string dsn_, db_, role_, pw_role_, intruder_;
  int pid_ = -1;
};

TEST_F(PostgresProviderTest, ApplyThenNothingToDo) {
  Declare();
  Apply();
  RunResult p = Run({"plan", "--detailed-exitcode"});
  EXPECT_EQ(p.exit_code, 0) << p.out << p.err;
  RunResult d = Run({"drift"});
  EXPECT_EQ(d.exit_code, 0) << d.out << d.err;
  EXPECT_EQ(QueryValue(dsn_, "SELECT has_table_privilege('" + role_ + "', 'public.t', 'SELECT')"),
            "t");
  EXPECT_EQ(QueryValue(dsn_,
                       "SELECT count(*) FROM pg_event_trigger WHERE evtname LIKE "
                       "'driftless%'"),
            "2");
  // Secrets stay secret: neither the dsn nor the password is in state or output.
  std::string state = StateBytes(box_);
  EXPECT_FALSE(Contains(state, "first password"));
  EXPECT_FALSE(Contains(p.out + d.out, "first password"));
}

TEST_F(PostgresProviderTest, ManualChangesAreDriftForDriftAndWatch) {
  Declare();
  Apply();
  StartWatch();
  ASSERT_EQ(AsIntruder("GRANT INSERT ON public.t TO " + role_), "");
  std::string grant = WaitForEvent("drift.detected", "postgres.grant/tables");
  ASSERT_FALSE(grant.empty()) << Output();
  EXPECT_TRUE(Contains(grant, "\"actor\":\"" + intruder_ + "\"")) << grant;
  EXPECT_TRUE(Contains(grant, "INSERT")) << grant;

  ASSERT_EQ(AsIntruder("ALTER ROLE " + role_ + " CREATEDB"), "");
  std::string role = WaitForEvent("drift.detected", "postgres.role/app");
  ASSERT_FALSE(role.empty()) << Output();
  EXPECT_FALSE(Contains(role, "\"actor\"")) << "roles are polled: who is unknown; " << role;

  ASSERT_EQ(AsIntruder("ALTER ROLE " + pw_role_ + " PASSWORD 'changed by hand'"), "");
  std::string pw = WaitForEvent("drift.detected", "postgres.role/pw");
  ASSERT_FALSE(pw.empty()) << Output();
  EXPECT_TRUE(Contains(pw, "password: (sensitive value changed)") || Contains(pw, "(sensitive)"))
      << pw;
  EXPECT_FALSE(Contains(pw, "changed by hand"));

  ASSERT_EQ(AsIntruder("DROP SCHEMA app CASCADE"), "");
  std::string schema = WaitForEvent("drift.detected", "postgres.schema/app");
  ASSERT_FALSE(schema.empty()) << Output();
  EXPECT_TRUE(Contains(schema, "\"actor\":\"" + intruder_ + "\"")) << schema;

  // `driftless drift` sees the same four, and the timeline keeps who did it.
  RunResult d = Run({"drift"});
  EXPECT_EQ(d.exit_code, 2) << d.out << d.err;
  for (const char* r :
       {"postgres.grant/tables", "postgres.role/app", "postgres.role/pw", "postgres.schema/app"})
    EXPECT_TRUE(Contains(d.out, r)) << r << "\n" << d.out;
  EXPECT_FALSE(Contains(d.out, "changed by hand"));
  RunResult h = Run({"drift", "--history", "--json"});
  Json j;
  ASSERT_TRUE(ReadJson(h.out, &j)) << h.out;
  int attributed = 0;
  for (const auto& item : j.items) {
    if (item.Str("resource") == "postgres.grant/tables" ||
        item.Str("resource") == "postgres.schema/app") {
      EXPECT_EQ(item.Str("actor"), intruder_) << item.Str("resource");
      ++attributed;
    }
  }
  EXPECT_EQ(attributed, 2) << h.out;
  RunResult text = Run({"drift", "--history"});
  EXPECT_TRUE(Contains(text.out, intruder_)) << text.out;

  // An apply reverts everything.
  Apply();
  EXPECT_EQ(Run({"drift"}).exit_code, 0);
  EXPECT_EQ(QueryValue(dsn_, "SELECT has_table_privilege('" + role_ + "', 'public.t', 'INSERT')"),
            "f");
}

TEST_F(PostgresProviderTest, DriftWithoutWatchIsFoundByAScan) {
  Declare();
  Apply();
  ChangeByHand();
  RunResult d = Run({"drift", "--json"});
  EXPECT_EQ(d.exit_code, 2) << d.out << d.err;
  Json j;
  ASSERT_TRUE(ReadJson(d.out, &j)) << d.out;
  const Json* drifted = j.Find("drifted");
  ASSERT_NE(drifted, nullptr);
  std::vector<std::string> addresses;
  for (const auto& item : drifted->items) addresses.push_back(item.Str("address"));
  // hstore lived in the dropped schema: gone too.
  EXPECT_EQ(addresses, (std::vector<std::string>{"postgres.extension/hstore",
                                                 "postgres.grant/tables", "postgres.role/app",
                                                 "postgres.role/pw", "postgres.schema/app"}))
      << d.out;
}

TEST_F(PostgresProviderTest, EnforceRevertsAtOnce) {
  Declare("{drift: enforce}");
  Apply();
  StartWatch();
  ChangeByHand();
  for (const char* r :
       {"postgres.grant/tables", "postgres.role/app", "postgres.role/pw", "postgres.schema/app"}) {
    EXPECT_FALSE(WaitForEvent("drift.resolved", r).empty()) << r << "\n" << Output();
  }
  // The remediation of the extension (dropped with the schema) may still be running.
  EXPECT_TRUE(PollUntil([&] { return Run({"drift"}).exit_code == 0; })) << Output();
  EXPECT_EQ(QueryValue(dsn_, "SELECT has_table_privilege('" + role_ + "', 'public.t', 'INSERT')"),
            "f");
  EXPECT_EQ(QueryValue(dsn_, "SELECT rolcreatedb FROM pg_roles WHERE rolname = '" + role_ + "'"),
            "f");
  EXPECT_EQ(QueryValue(dsn_, "SELECT count(*) FROM pg_namespace WHERE nspname = 'app'"), "1");
}

TEST_F(PostgresProviderTest, InjectionInNamesStaysInert) {
  // Names that would end the SQL text early if pasted unquoted; YAML double-quoted strings.
  const std::string evil_role = role_ + "\\\"; DROP ROLE postgres; --";  // as YAML text
  const std::string evil_schema = "s'; DROP SCHEMA public CASCADE; --";
  box_.WriteRepoFile(
      "db.yaml",
      "kind: postgres.role\nname: evil\ntarget: db\nspec: {name: \"" + evil_role +
          "\", login: true, password: \"${secret.PW}\"}\n"
          "---\nkind: postgres.schema\nname: evil\ntarget: db\nspec: {name: \"" +
          evil_schema +
          "\", owner: \"${postgres.role.evil.name}\"}\n"
          "---\nkind: postgres.grant\nname: evil\ntarget: db\nspec: {role: "
          "\"${postgres.role.evil.name}\", on: schema, schema: \"${postgres.schema.evil.name}\", "
          "privileges: [usage, create]}\n");
  Apply();
  RunResult p = Run({"plan", "--detailed-exitcode"});
  EXPECT_EQ(p.exit_code, 0) << p.out << p.err;
  const std::string role = role_ + "\"; DROP ROLE postgres; --";
  EXPECT_EQ(QueryValue(dsn_, "SELECT count(*) FROM pg_roles WHERE rolname = $$" + role + "$$"),
            "1");
  EXPECT_EQ(QueryValue(dsn_, "SELECT has_schema_privilege($$" + role + "$$, $$" + evil_schema +
                                 "$$, 'CREATE')"),
            "t");
  EXPECT_EQ(QueryValue(dsn_, "SELECT count(*) FROM pg_namespace WHERE nspname = 'public'"), "1");
  EXPECT_EQ(QueryValue(dsn_, "SELECT count(*) FROM public.t"), "0") << "the table is still there";
  RunResult d = Run({"destroy", "default", "--auto-approve"});
  ASSERT_EQ(d.exit_code, 0) << d.out << d.err;
  EXPECT_EQ(QueryValue(dsn_, "SELECT count(*) FROM pg_roles WHERE rolname = $$" + role + "$$"),
            "0");
  EXPECT_EQ(QueryValue(dsn_, "SELECT count(*) FROM pg_roles WHERE rolname = 'postgres'"), "1");
}

TEST_F(PostgresProviderTest, DestroyRemovesEverythingAndTheTrigger) {
  Declare();
  Apply();
  RunResult d = Run({"destroy", "default", "--auto-approve"});
  ASSERT_EQ(d.exit_code, 0) << d.out << d.err;
  EXPECT_EQ(QueryValue(dsn_, "SELECT count(*) FROM pg_roles WHERE rolname IN ('" + role_ + "', '" +
                                 pw_role_ + "')"),
            "0");
  EXPECT_EQ(QueryValue(dsn_, "SELECT count(*) FROM pg_event_trigger"), "0");
  EXPECT_EQ(QueryValue(dsn_,
                       "SELECT count(*) FROM pg_namespace WHERE nspname IN ('app', "
                       "'_driftless')"),
            "0");
}

}  // namespace
}  // namespace driftless::test
