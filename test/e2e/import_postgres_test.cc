// `driftless state import` with the postgres provider, against the test PostgreSQL server: a
// role, a database, a schema, an extension and grants made by hand with SQL are taken under
// management without a statement run against them; the next plan shows them unchanged, or the
// one update the declaration asks for (a role declared without LOGIN that has it); refused IDs
// say the kind's ID form.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "e2e/harness.h"
#include "support/postgres.h"

namespace driftless::test {
namespace {

bool Contains(const std::string& text, const std::string& needle) {
  return text.find(needle) != std::string::npos;
}

class ImportPostgresTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dsn_ = CreateTestDatabase("e2e_imp");
    ASSERT_FALSE(dsn_.empty());
    db_ = QueryValue(dsn_, "SELECT current_database()");
    role_ = UniqueName("imp");
    other_ = UniqueName("impo");
    newdb_ = UniqueName("impdb");
    box_.WriteProject("  db: {provider: postgres, dsn: \"${secret.PG}\"}\n");
    // Made by hand, as an existing system has them.
    ASSERT_EQ(Execute(dsn_, "CREATE ROLE " + role_ + " LOGIN CONNECTION LIMIT 5"), "");
    ASSERT_EQ(Execute(dsn_, "CREATE ROLE " + other_ + " LOGIN"), "");
    ASSERT_EQ(Execute(dsn_, "CREATE DATABASE " + newdb_ + " OWNER " + role_), "");
    ASSERT_EQ(Execute(dsn_, "CREATE SCHEMA app AUTHORIZATION " + role_), "");
    ASSERT_EQ(Execute(dsn_, "CREATE EXTENSION hstore SCHEMA app"), "");
    ASSERT_EQ(Execute(dsn_, "GRANT CONNECT ON DATABASE " + db_ + " TO " + role_), "");
    box_.WriteRepoFile(
        "db.yaml",
        "kind: postgres.role\nname: app\ntarget: db\nspec: {name: " + role_ +
            ", login: true, connection_limit: 5}\n"
            "---\nkind: postgres.role\nname: other\ntarget: db\nspec: {name: " +
            other_ +
            "}\n"  // declared without login: the next plan removes it
            "---\nkind: postgres.database\nname: data\ntarget: db\nspec: {name: " +
            newdb_ + ", owner: \"${postgres.role.app.name}\"}\n" +
            "---\nkind: postgres.schema\nname: app\ntarget: db\n"
            "spec: {owner: \"${postgres.role.app.name}\"}\n"
            "---\nkind: postgres.extension\nname: hstore\ntarget: db\n"
            "spec: {schema: \"${postgres.schema.app.name}\"}\n"
            "---\nkind: postgres.grant\nname: connect\ntarget: db\n"
            "spec: {role: \"${postgres.role.app.name}\", on: database, privileges: [connect]}\n");
  }

  void TearDown() override {
    (void)Execute(dsn_, "DROP SCHEMA IF EXISTS app CASCADE");
    (void)Execute(dsn_, "DROP DATABASE IF EXISTS " + newdb_);
    for (const auto& r : {role_, other_}) {
      (void)Execute(dsn_, "REVOKE ALL ON DATABASE " + db_ + " FROM " + r);
      (void)Execute(dsn_, "DROP ROLE IF EXISTS " + r);
    }
  }

  RunResult Run(const std::vector<std::string>& args) const {
    return box_.Run(args, {"DRIFTLESS_SECRET_PG=" + dsn_});
  }
  RunResult Import(const std::string& address, const std::string& id) const {
    return Run({"state", "import", address, id});
  }

  Sandbox box_;
  std::string dsn_, db_, role_, other_, newdb_;
};

TEST_F(ImportPostgresTest, HandMadeObjectsImportAsTheyAre) {
  const std::vector<std::pair<std::string, std::string>> unchanged = {
      {"postgres.role/app", role_},
      {"postgres.database/data", newdb_},
      {"postgres.schema/app", db_ + "/app"},
      {"postgres.extension/hstore", "hstore"},  // the target's database by default
      {"postgres.grant/connect", role_ + "/" + db_ + "/database"},
  };
  for (const auto& [address, id] : unchanged) {
    RunResult r = Import(address, id);
    ASSERT_EQ(r.exit_code, 0) << address << " " << id << "\n" << r.out << r.err;
    EXPECT_TRUE(Contains(r.out, "leaves it unchanged")) << address << "\n" << r.out;
  }
  RunResult other = Import("postgres.role/other", other_);
  ASSERT_EQ(other.exit_code, 0) << other.out << other.err;
  EXPECT_TRUE(Contains(other.out, "The next plan will update it")) << other.out;
  EXPECT_TRUE(Contains(other.out, "-login: true")) << other.out;
  EXPECT_EQ(QueryValue(dsn_, "SELECT rolcanlogin FROM pg_roles WHERE rolname = '" + other_ + "'"),
            "t")
      << "import changes nothing";

  RunResult p = Run({"plan", "--json"});
  ASSERT_EQ(p.exit_code, 0) << p.out << p.err;
  Json plan;
  ASSERT_TRUE(ReadJson(p.out, &plan)) << p.out;
  for (const Json& c : plan.Find("changes")->items) {
    const std::string want = c.Str("address") == "postgres.role/other" ? "update" : "no-op";
    EXPECT_EQ(c.Str("action"), want) << c.Str("address") << "\n" << p.out;
  }
  RunResult a = Run({"apply", "--auto-approve"});
  ASSERT_EQ(a.exit_code, 0) << a.out << a.err;
  EXPECT_EQ(QueryValue(dsn_, "SELECT rolcanlogin FROM pg_roles WHERE rolname = '" + other_ + "'"),
            "f");
  RunResult again = Run({"plan", "--detailed-exitcode"});
  EXPECT_EQ(again.exit_code, 0) << again.out << again.err;
}

TEST_F(ImportPostgresTest, APasswordIsComparedAndNeverStored) {
  const std::string pw = UniqueName("imppw");
  ASSERT_EQ(Execute(dsn_, "CREATE ROLE " + pw + " LOGIN PASSWORD 'hand made secret'"), "");
  box_.WriteRepoFile("pw.yaml", "kind: postgres.role\nname: pw\ntarget: db\nspec: {name: " + pw +
                                    ", login: true, password: \"${secret.PW}\"}\n");
  RunResult same =
      box_.Run({"state", "import", "postgres.role/pw", pw},
               {"DRIFTLESS_SECRET_PG=" + dsn_, "DRIFTLESS_SECRET_PW=hand made secret"});
  (void)Execute(dsn_, "DROP ROLE IF EXISTS " + pw);
  ASSERT_EQ(same.exit_code, 0) << same.out << same.err;
  EXPECT_TRUE(Contains(same.out, "leaves it unchanged")) << same.out;
  EXPECT_FALSE(Contains(same.out + same.err, "hand made secret"));
  EXPECT_FALSE(Contains(StateBytes(box_), "hand made secret"));
}

TEST_F(ImportPostgresTest, BadIdsSayTheForm) {
  RunResult missing = Import("postgres.role/app", "no_such_role_here");
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_TRUE(Contains(missing.err, "names another object than postgres.role/app declares"))
      << missing.err;

  // The declared database does not exist: the ID names nothing.
  (void)Execute(dsn_, "DROP DATABASE " + newdb_);
  RunResult none = Import("postgres.database/data", newdb_);
  EXPECT_EQ(none.exit_code, 1);
  EXPECT_TRUE(Contains(none.err, "postgres.database/data (")) << none.err;
  EXPECT_TRUE(Contains(none.err, "ID \"" + newdb_ + "\" names no postgres.database there"))
      << none.err;

  RunResult parts = Import("postgres.role/app", role_ + "/x");
  EXPECT_EQ(parts.exit_code, 1);
  EXPECT_TRUE(Contains(parts.err, "the ID of a postgres.role is NAME")) << parts.err;

  RunResult on = Import("postgres.grant/connect", role_ + "/" + db_ + "/tablez");
  EXPECT_EQ(on.exit_code, 1);
  EXPECT_TRUE(Contains(on.err, "\"tablez\" is not an `on`")) << on.err;

  RunResult quote = Import("postgres.schema/app", "\"app");
  EXPECT_EQ(quote.exit_code, 1);
  EXPECT_TRUE(Contains(quote.err, "is not closed")) << quote.err;
  EXPECT_TRUE(Run({"state", "list"}).out.empty());
}

}  // namespace
}  // namespace driftless::test
