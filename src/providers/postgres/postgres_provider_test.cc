// The postgres provider against the test PostgreSQL server: every kind created, read, updated,
// deleted and drifted; the SCRAM check against verifiers the server made; names and values that
// try to inject SQL stay inert; the event trigger and the watcher attribute a manual change to
// the role that made it.

#include "providers/postgres/postgres_provider.h"

#include <gtest/gtest.h>

#include <chrono>
#include <set>
#include <thread>

#include "providers/postgres/grant_privileges.h"
#include "providers/postgres/postgres_target.h"
#include "providers/postgres/quote.h"
#include "providers/postgres/scram.h"
#include "providers/postgres/watcher.h"
#include "support/postgres.h"
#include "value/render.h"

namespace driftless::providers::postgres {
namespace {

using test::Execute;
using test::QueryValue;
using test::UniqueName;
using value::Value;

Value Json(const std::string& text) {
  Result<Value> v = value::ParseJson(text);
  EXPECT_TRUE(v.ok()) << text;
  return v.ok() ? *v : Value();
}

// A JSON string literal.
std::string J(const std::string& s) { return value::ToJson(Value::String(s)); }

TEST(QuoteTest, IdentifiersAndLiterals) {
  EXPECT_EQ(QuoteIdent("app"), "\"app\"");
  EXPECT_EQ(QuoteIdent("a\"b"), "\"a\"\"b\"");
  EXPECT_EQ(QuoteIdent("x\"; DROP TABLE t; --"), "\"x\"\"; DROP TABLE t; --\"");
  EXPECT_EQ(QuoteLiteral("it's"), "'it''s'");
  EXPECT_EQ(QuoteLiteral("a\\b'"), "E'a\\\\b'''");
  EXPECT_EQ(QuoteLiteral(""), "''");
  EXPECT_EQ(MaskSecret("password=hunter2 failed for hunter2", "hunter2"),
            "password=(sensitive) failed for (sensitive)");
  EXPECT_EQ(MaskSecret("nothing", ""), "nothing");
  EXPECT_EQ(CheckName(""), "must not be empty");
  EXPECT_NE(CheckName(std::string(64, 'a')), "");
  EXPECT_EQ(CheckName(std::string(63, 'a')), "");
  EXPECT_NE(CheckName(std::string("a\0b", 3)), "");
}

TEST(ScramTest, OwnVerifierRoundTrip) {
  Result<std::string> v = ScramVerifier("pencil", "0123456789abcdef", 4096);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->rfind("SCRAM-SHA-256$4096:", 0), 0u) << *v;
  EXPECT_TRUE(ScramVerify("pencil", *v));
  EXPECT_FALSE(ScramVerify("pencil2", *v));
  EXPECT_FALSE(ScramVerify("pencil", "md5abc"));
  EXPECT_FALSE(ScramVerify("pencil", "SCRAM-SHA-256$x:y$z:w"));
  EXPECT_FALSE(ScramVerify("pencil", ""));
}

TEST(NormalizeTest, Timestamps) {
  EXPECT_EQ(NormalizeTimestamp("2027-01-01"), "2027-01-01T00:00:00Z");
  EXPECT_EQ(NormalizeTimestamp("2027-01-01T12:30:00Z"), "2027-01-01T12:30:00Z");
  EXPECT_EQ(NormalizeTimestamp("2027-01-01 12:30"), "2027-01-01T12:30:00Z");
  EXPECT_EQ(NormalizeTimestamp("2027-01-01T12:30:00+02:00"), "2027-01-01T10:30:00Z");
  EXPECT_EQ(NormalizeTimestamp("2027-01-01T00:30:00-01"), "2027-01-01T01:30:00Z");
  EXPECT_EQ(NormalizeTimestamp("infinity"), "infinity");
  EXPECT_EQ(NormalizeTimestamp("tomorrow"), "");
  EXPECT_EQ(NormalizeTimestamp("2027-13-01"), "");
}

TEST(NormalizeTest, Privileges) {
  std::vector<std::string> out;
  std::string why;
  const GrantTarget* tables = FindGrantTarget("tables");
  ASSERT_NE(tables, nullptr);
  EXPECT_TRUE(ExpandPrivilege(*tables, "select", &out, &why));
  EXPECT_TRUE(ExpandPrivilege(*tables, " Insert ", &out, &why));
  EXPECT_TRUE(ExpandPrivilege(*tables, "SELECT", &out, &why));
  EXPECT_EQ(out, (std::vector<std::string>{"INSERT", "SELECT"}));
  EXPECT_FALSE(ExpandPrivilege(*tables, "usage", &out, &why));
  EXPECT_NE(why.find("not a privilege on tables"), std::string::npos) << why;
  out.clear();
  EXPECT_TRUE(ExpandPrivilege(*FindGrantTarget("database"), "all privileges", &out, &why));
  EXPECT_EQ(out, (std::vector<std::string>{"CONNECT", "CREATE", "TEMPORARY"}));
  out.clear();
  EXPECT_TRUE(ExpandPrivilege(*FindGrantTarget("database"), "temp", &out, &why));
  EXPECT_EQ(out, (std::vector<std::string>{"TEMPORARY"}));
  EXPECT_EQ(FindGrantTarget("columns"), nullptr);
}

class PostgresTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dsn_ = test::CreateTestDatabase("pgprov");
    ASSERT_FALSE(dsn_.empty());
    db_ = QueryValue(dsn_, "SELECT current_database()");
    provider_ = NewPostgresProvider();
    Value settings = Value::MakeObject();
    settings.Set("dsn", Value::String(dsn_));
    auto t = provider_->Configure("db", settings);
    ASSERT_TRUE(t.ok()) << t.error().message;
    target_ = std::move(*t);
  }

  // The normalised spec; fails the test on errors.
  Value Spec(const std::string& kind, const std::string& json) {
    std::vector<provider::FieldError> errors;
    Value spec = Json(json);
    if (const Value* p = spec.Find("password")) {
      Value secret = *p;
      secret.set_sensitive(true);
      spec.Set("password", secret);
    }
    Result<Value> n = target_->Normalize(kind, spec, nullptr, errors);
    EXPECT_TRUE(n.ok()) << (n.ok() ? "" : n.error().message);
    for (const auto& e : errors) ADD_FAILURE() << e.field << ": " << e.message;
    return n.ok() ? *n : Value();
  }

  std::vector<provider::FieldError> Errors(const std::string& kind, const std::string& json) {
    std::vector<provider::FieldError> errors;
    (void)target_->Normalize(kind, Json(json), nullptr, errors);
    return errors;
  }

  Value Create(const std::string& kind, const std::string& name, const Value& spec,
               bool adopt = false) {
    Result<Value> r = target_->Create({kind, name, spec}, adopt);
    EXPECT_TRUE(r.ok()) << r.error().message;
    return r.ok() ? *r : Value();
  }
  std::optional<Value> Read(const std::string& kind, const std::string& name, const Value& spec) {
    auto r = target_->Read({kind, name, spec});
    EXPECT_TRUE(r.ok()) << r.error().message;
    return r.ok() ? *r : std::nullopt;
  }
  // The declared fields that differ between spec and live ("" when none).
  std::string Differs(const Value& spec, const std::optional<Value>& live) {
    if (!live) return "(missing)";
    std::string out;
    for (const auto& [k, v] : spec.as_object()) {
      if (k == "template" || k == "name") continue;
      const Value* l = live->Find(k);
      if (l == nullptr || *l != v) out += k + " ";
    }
    return out;
  }
  void ServerRole(const std::string& name, const std::string& options = "") {
    ASSERT_EQ(Execute(dsn_, "CREATE ROLE " + QuoteIdent(name) + " " + options), "");
  }

  std::string dsn_, db_;
  std::unique_ptr<provider::Provider> provider_;
  std::unique_ptr<provider::Target> target_;
};

TEST_F(PostgresTest, ScramAgainstTheServersVerifier) {
  std::string role = UniqueName("scram");
  ServerRole(role);
  ASSERT_EQ(Execute(dsn_, "SET password_encryption = 'scram-sha-256'; ALTER ROLE " +
                              QuoteIdent(role) + " PASSWORD 'correct horse'"),
            "");
  std::string verifier =
      QueryValue(dsn_, "SELECT rolpassword FROM pg_authid WHERE rolname = '" + role + "'");
  EXPECT_TRUE(ScramVerify("correct horse", verifier)) << verifier;
  EXPECT_FALSE(ScramVerify("correct horsE", verifier));
}

TEST_F(PostgresTest, RoleCreateReadUpdateDriftDelete) {
  std::string name = UniqueName("app");
  std::string group = UniqueName("grp");
  ServerRole(group);
  Value spec = Spec(kRoleKind, "{\"login\": true, \"password\": \"s3cret\", \"member_of\": [" +
                                   J(group) + "], \"valid_until\": \"2030-01-01\"}");
  EXPECT_TRUE(spec.Find("superuser") && !spec.Find("superuser")->as_bool()) << "defaults filled";
  Value created = Create(kRoleKind, name, spec);
  EXPECT_EQ(Differs(spec, created), "");
  EXPECT_TRUE(created.Find("oid") && created.Find("oid")->is_int());
  EXPECT_TRUE(created.Find("password")->sensitive());
  EXPECT_EQ(Differs(spec, Read(kRoleKind, name, spec)), "");
  // The server got a verifier, never the password.
  std::string stored =
      QueryValue(dsn_, "SELECT rolpassword FROM pg_authid WHERE rolname = '" + name + "'");
  EXPECT_EQ(stored.rfind("SCRAM-SHA-256$", 0), 0u) << stored;
  EXPECT_EQ(QueryValue(dsn_,
                       "SELECT shobj_description(oid, 'pg_authid') FROM pg_roles WHERE "
                       "rolname = '" +
                           name + "'"),
            "managed by driftless: postgres.role/" + name + " (target db)");
  // Adopting is refused unless asked for.
  EXPECT_FALSE(target_->Create({kRoleKind, name, spec}, false).ok());

  // Drift: changed by hand, each is seen.
  ASSERT_EQ(Execute(dsn_, "ALTER ROLE " + QuoteIdent(name) + " CREATEDB CONNECTION LIMIT 3"), "");
  EXPECT_EQ(Differs(spec, Read(kRoleKind, name, spec)), "connection_limit createdb ");
  ASSERT_EQ(Execute(dsn_, "ALTER ROLE " + QuoteIdent(name) + " PASSWORD 'changed'"), "");
  EXPECT_EQ(Differs(spec, Read(kRoleKind, name, spec)), "connection_limit createdb password ");
  std::string other = UniqueName("other");
  ServerRole(other);
  ASSERT_EQ(Execute(dsn_, "GRANT " + QuoteIdent(other) + " TO " + QuoteIdent(name)), "");
  EXPECT_EQ(Differs(spec, Read(kRoleKind, name, spec)),
            "connection_limit createdb member_of password ");

  // Update reverts all of it, the extra membership included.
  Result<Value> updated = target_->Update({kRoleKind, name, spec}, created);
  ASSERT_TRUE(updated.ok()) << updated.error().message;
  EXPECT_EQ(Differs(spec, *updated), "");
  EXPECT_EQ(Differs(spec, Read(kRoleKind, name, spec)), "");

  // A declared change.
  Value spec2 =
      Spec(kRoleKind, "{\"login\": false, \"createrole\": true, \"connection_limit\": 5}");
  updated = target_->Update({kRoleKind, name, spec2}, created);
  ASSERT_TRUE(updated.ok()) << updated.error().message;
  EXPECT_EQ(Differs(spec2, *updated), "");

  ASSERT_TRUE(target_->Delete({kRoleKind, name, spec2}).ok());
  EXPECT_FALSE(Read(kRoleKind, name, spec2).has_value());
  EXPECT_TRUE(target_->Delete({kRoleKind, name, spec2}).ok()) << "deleting twice is fine";
}

TEST_F(PostgresTest, RenamesAndPasswordRotation) {
  std::string first = UniqueName("old"), second = UniqueName("new");
  Value spec = Spec(kRoleKind, "{\"name\": " + J(first) + ", \"password\": \"one\"}");
  Value made = Create(kRoleKind, "app", spec);
  // A new spec.name renames the role (its oid stays); a new password is set.
  Value renamed = Spec(kRoleKind, "{\"name\": " + J(second) + ", \"password\": \"two\"}");
  EXPECT_EQ(Differs(renamed, Read(kRoleKind, "app", renamed)), "(missing)");
  Result<Value> r = target_->Update({kRoleKind, "app", renamed}, made);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(Differs(renamed, *r), "");
  EXPECT_EQ(*r->Find("oid"), *made.Find("oid"));
  EXPECT_FALSE(Read(kRoleKind, "app", spec).has_value());
  EXPECT_EQ(
      Differs(spec, Read(kRoleKind, "app",
                         Spec(kRoleKind, "{\"name\": " + J(second) + ", \"password\": \"one\"}"))),
      "password ")
      << "the old password no longer verifies";

  Value schema = Spec(kSchemaKind, "{\"name\": \"first\"}");
  Value s1 = Create(kSchemaKind, "s", schema);
  Value schema2 = Spec(kSchemaKind, "{\"name\": \"second\"}");
  ASSERT_TRUE(target_->Update({kSchemaKind, "s", schema2}, s1).ok());
  EXPECT_EQ(QueryValue(dsn_,
                       "SELECT string_agg(nspname, ',') FROM pg_namespace WHERE nspname "
                       "IN ('first', 'second')"),
            "second");
  ASSERT_TRUE(target_->Delete({kSchemaKind, "s", schema2}).ok());
  ASSERT_TRUE(target_->Delete({kRoleKind, "app", renamed}).ok());
}

TEST_F(PostgresTest, DatabaseCreateUpdateDriftDelete) {
  std::string name = UniqueName("db");
  std::string owner = UniqueName("owner");
  ServerRole(owner);
  Value spec = Spec(kDatabaseKind, "{\"owner\": " + J(owner) +
                                       ", \"encoding\": \"utf-8\", \"lc_collate\": \"C\", "
                                       "\"lc_ctype\": \"C\", \"connection_limit\": 10}");
  EXPECT_EQ(spec.Find("encoding")->as_string(), "UTF8");
  Value created = Create(kDatabaseKind, name, spec);
  EXPECT_EQ(Differs(spec, created), "");
  ASSERT_EQ(Execute(dsn_, "ALTER DATABASE " + QuoteIdent(name) +
                              " CONNECTION LIMIT 99 ALLOW_CONNECTIONS false"),
            "");
  EXPECT_EQ(Differs(spec, Read(kDatabaseKind, name, spec)), "allow_connections connection_limit ");
  ASSERT_TRUE(target_->Update({kDatabaseKind, name, spec}, created).ok());
  EXPECT_EQ(Differs(spec, Read(kDatabaseKind, name, spec)), "");
  // encoding, locales and template force a replacement: the schema says so.
  const provider::ResourceSchema* schema = nullptr;
  const std::vector<provider::ResourceSchema> schemas = provider_->Schemas();
  for (const auto& s : schemas)
    if (s.kind == kDatabaseKind) schema = &s;
  ASSERT_NE(schema, nullptr);
  for (const char* f : {"encoding", "lc_collate", "lc_ctype", "template"})
    EXPECT_TRUE(schema->Find(f)->force_new) << f;
  ASSERT_TRUE(target_->Delete({kDatabaseKind, name, spec}).ok());
  EXPECT_FALSE(Read(kDatabaseKind, name, spec).has_value());
}

TEST_F(PostgresTest, SchemaAndExtension) {
  std::string owner = UniqueName("owner");
  ServerRole(owner);
  Value spec = Spec(kSchemaKind, "{\"owner\": " + J(owner) + "}");
  EXPECT_EQ(spec.Find("database")->as_string(), db_) << "defaults to the dsn's database";
  Value created = Create(kSchemaKind, "app", spec);
  EXPECT_EQ(Differs(spec, created), "");
  // The event trigger is installed with the first managed object of the database.
  EXPECT_EQ(QueryValue(dsn_,
                       "SELECT count(*) FROM pg_event_trigger WHERE evtname LIKE "
                       "'driftless_%'"),
            "2");
  ASSERT_EQ(Execute(dsn_, "ALTER SCHEMA app OWNER TO postgres"), "");
  EXPECT_EQ(Differs(spec, Read(kSchemaKind, "app", spec)), "owner ");
  ASSERT_TRUE(target_->Update({kSchemaKind, "app", spec}, created).ok());
  EXPECT_EQ(Differs(spec, Read(kSchemaKind, "app", spec)), "");

  Value ext = Spec(kExtensionKind, "{\"schema\": \"app\", \"version\": \"1.7\"}");
  Value made = Create(kExtensionKind, "hstore", ext);
  EXPECT_EQ(Differs(ext, made), "");
  Value ext2 = Spec(kExtensionKind, "{\"schema\": \"app\", \"version\": \"1.8\"}");
  EXPECT_EQ(Differs(ext2, Read(kExtensionKind, "hstore", ext2)), "version ");
  ASSERT_TRUE(target_->Update({kExtensionKind, "hstore", ext2}, made).ok());
  EXPECT_EQ(Differs(ext2, Read(kExtensionKind, "hstore", ext2)), "");
  ASSERT_TRUE(target_->Delete({kExtensionKind, "hstore", ext2}).ok());
  EXPECT_FALSE(Read(kExtensionKind, "hstore", ext2).has_value());

  // A schema dropped by hand is missing; delete is then a no-op.
  ASSERT_EQ(Execute(dsn_, "DROP SCHEMA app"), "");
  EXPECT_FALSE(Read(kSchemaKind, "app", spec).has_value());
  ASSERT_TRUE(target_->Delete({kSchemaKind, "app", spec}).ok());
  // Nothing managed is left in the database: the trigger is gone.
  EXPECT_EQ(QueryValue(dsn_,
                       "SELECT count(*) FROM pg_event_trigger WHERE evtname LIKE "
                       "'driftless_%'"),
            "0");
  EXPECT_EQ(QueryValue(dsn_, "SELECT count(*) FROM pg_namespace WHERE nspname = '_driftless'"),
            "0");
}

TEST_F(PostgresTest, GrantsAreExact) {
  std::string role = UniqueName("reader");
  ServerRole(role);
  ASSERT_EQ(Execute(dsn_,
                    "CREATE SCHEMA s; CREATE TABLE s.a (x int); CREATE TABLE s.b (x int); "
                    "CREATE SEQUENCE s.q; CREATE FUNCTION s.f() RETURNS int LANGUAGE sql "
                    "AS 'SELECT 1'"),
            "");
  Value tables = Spec(kGrantKind, "{\"role\": " + J(role) +
                                      ", \"on\": \"tables\", \"schema\": \"s\", "
                                      "\"privileges\": [\"select\", \"Insert\"]}");
  EXPECT_EQ(value::ToJson(*tables.Find("privileges")), "[\"INSERT\",\"SELECT\"]");
  EXPECT_FALSE(Read(kGrantKind, "t", tables).has_value() &&
               Differs(tables, Read(kGrantKind, "t", tables)).empty());
  Value made = Create(kGrantKind, "t", tables, true);
  EXPECT_EQ(Differs(tables, made), "");
  // A privilege beyond the list, on one table: drift, and revoked by update.
  ASSERT_EQ(Execute(dsn_, "GRANT DELETE ON s.a TO " + QuoteIdent(role)), "");
  std::optional<Value> live = Read(kGrantKind, "t", tables);
  ASSERT_TRUE(live.has_value());
  EXPECT_EQ(value::ToJson(*live->Find("privileges")),
            "[\"DELETE (on some objects)\",\"INSERT\",\"SELECT\"]");
  ASSERT_TRUE(target_->Update({kGrantKind, "t", tables}, made).ok());
  EXPECT_EQ(Differs(tables, Read(kGrantKind, "t", tables)), "");
  // The grant option is exact too.
  ASSERT_EQ(Execute(dsn_, "GRANT SELECT ON s.b TO " + QuoteIdent(role) + " WITH GRANT OPTION"), "");
  EXPECT_EQ(Differs(tables, Read(kGrantKind, "t", tables)), "with_grant_option ");
  ASSERT_TRUE(target_->Update({kGrantKind, "t", tables}, made).ok());
  EXPECT_EQ(Differs(tables, Read(kGrantKind, "t", tables)), "");

  Value table = Spec(kGrantKind, "{\"role\": " + J(role) +
                                     ", \"on\": \"table\", \"schema\": \"s\", \"objects\": "
                                     "[\"b\"], \"privileges\": [\"ALL\"]}");
  EXPECT_EQ(table.Find("privileges")->as_list().size(), 7u);
  EXPECT_EQ(Differs(table, Create(kGrantKind, "tb", table, true)), "");
  Value seq = Spec(kGrantKind, "{\"role\": " + J(role) +
                                   ", \"on\": \"sequences\", \"schema\": \"s\", "
                                   "\"privileges\": [\"usage\"], \"with_grant_option\": true}");
  EXPECT_EQ(Differs(seq, Create(kGrantKind, "sq", seq)), "");
  Value fn = Spec(kGrantKind, "{\"role\": " + J(role) +
                                  ", \"on\": \"functions\", \"schema\": \"s\", "
                                  "\"privileges\": [\"execute\"]}");
  EXPECT_EQ(Differs(fn, Create(kGrantKind, "fn", fn, true)), "");
  Value sch = Spec(kGrantKind, "{\"role\": " + J(role) +
                                   ", \"on\": \"schema\", \"schema\": \"s\", "
                                   "\"privileges\": [\"usage\"]}");
  EXPECT_EQ(Differs(sch, Create(kGrantKind, "sc", sch)), "");
  Value dbg = Spec(kGrantKind, "{\"role\": " + J(role) +
                                   ", \"on\": \"database\", \"privileges\": [\"connect\", "
                                   "\"temp\"]}");
  EXPECT_EQ(Differs(dbg, Create(kGrantKind, "dg", dbg)), "");
  ASSERT_EQ(
      Execute(dsn_, "GRANT CREATE ON DATABASE " + QuoteIdent(db_) + " TO " + QuoteIdent(role)), "");
  EXPECT_EQ(Differs(dbg, Read(kGrantKind, "dg", dbg)), "privileges ");

  // Delete revokes everything the grant gave.
  for (const auto& [n, s] : std::vector<std::pair<std::string, Value>>{
           {"t", tables}, {"tb", table}, {"sq", seq}, {"fn", fn}, {"sc", sch}, {"dg", dbg}}) {
    ASSERT_TRUE(target_->Delete({kGrantKind, n, s}).ok()) << n;
  }
  EXPECT_EQ(
      QueryValue(dsn_, "SELECT has_table_privilege(" + QuoteLiteral(role) + ", 's.a', 'SELECT')"),
      "f");
  EXPECT_EQ(
      QueryValue(dsn_, "SELECT has_schema_privilege(" + QuoteLiteral(role) + ", 's', 'USAGE')"),
      "f");
}

TEST_F(PostgresTest, ParallelGrantsOnOneObject) {
  // An apply runs them on several threads; they all rewrite the database's ACL.
  std::vector<std::string> roles;
  for (int i = 0; i < 8; ++i) {
    roles.push_back(UniqueName("par"));
    ServerRole(roles.back());
  }
  std::vector<std::thread> threads;
  std::vector<std::string> errors(roles.size());
  for (size_t i = 0; i < roles.size(); ++i) {
    threads.emplace_back([&, i] {
      for (const char* on : {"database", "schema"}) {
        Value spec = Spec(kGrantKind, "{\"role\": " + J(roles[i]) + ", \"on\": \"" + on +
                                          "\", \"privileges\": [\"create\"]}");
        Result<Value> r = target_->Create({kGrantKind, "g" + std::to_string(i) + on, spec}, false);
        if (!r.ok()) errors[i] += r.error().message;
      }
    });
  }
  for (auto& t : threads) t.join();
  for (size_t i = 0; i < roles.size(); ++i) {
    EXPECT_EQ(errors[i], "") << roles[i];
    EXPECT_EQ(QueryValue(dsn_, "SELECT has_database_privilege(" + QuoteLiteral(roles[i]) +
                                   ", current_database(), 'CREATE')"),
              "t");
  }
}

TEST_F(PostgresTest, BadDeclarationsAreRefused) {
  EXPECT_EQ(Errors(kGrantKind, "{\"role\": \"r\", \"on\": \"columns\", \"privileges\": []}").size(),
            1u);
  EXPECT_EQ(
      Errors(kGrantKind, "{\"role\": \"r\", \"on\": \"table\", \"privileges\": []}").front().field,
      "objects");
  EXPECT_EQ(Errors(kGrantKind,
                   "{\"role\": \"r\", \"on\": \"schema\", \"privileges\": "
                   "[\"select\"]}")
                .front()
                .field,
            "privileges.0");
  EXPECT_EQ(Errors(kRoleKind, "{\"valid_until\": \"soon\"}").front().field, "valid_until");
  EXPECT_EQ(Errors(kRoleKind, "{\"name\": " + J(std::string(70, 'x')) + "}").front().field, "name");
}

TEST_F(PostgresTest, InjectionAttemptsStayInert) {
  // Names and values a user might write to break out of the SQL text.
  std::string evil_role = UniqueName("r") + "\"; DROP ROLE postgres; --";
  std::string evil_schema = "s'; DROP SCHEMA public; --\"x";
  Value role =
      Spec(kRoleKind, "{\"name\": " + J(evil_role) +
                          ", \"login\": true, \"password\": \"p'; DROP TABLE x; --\\\\\"}");
  Value made = Create(kRoleKind, "evil", role);
  EXPECT_EQ(Differs(role, made), "");
  EXPECT_EQ(made.Find("name")->as_string(), evil_role);
  Value schema =
      Spec(kSchemaKind, "{\"name\": " + J(evil_schema) + ", \"owner\": " + J(evil_role) + "}");
  EXPECT_EQ(Differs(schema, Create(kSchemaKind, "evil", schema)), "");
  Value grant =
      Spec(kGrantKind, "{\"role\": " + J(evil_role) + ", \"on\": \"schema\", " +
                           "\"schema\": " + J(evil_schema) + ", \"privileges\": [\"usage\"]}");
  EXPECT_EQ(Differs(grant, Create(kGrantKind, "evil", grant)), "");
  Value db = Spec(kDatabaseKind, "{\"name\": " + J(UniqueName("d") + "\"; DROP DATABASE x; --") +
                                     ", \"lc_collate\": \"C'; --\"}");
  EXPECT_FALSE(target_->Create({kDatabaseKind, "evil", db}, false).ok())
      << "a bad locale is the server's error, not a statement";
  // Everything is still there.
  EXPECT_EQ(QueryValue(dsn_, "SELECT count(*) FROM pg_roles WHERE rolname = 'postgres'"), "1");
  EXPECT_EQ(QueryValue(dsn_, "SELECT count(*) FROM pg_namespace WHERE nspname = 'public'"), "1");
  ASSERT_TRUE(target_->Delete({kGrantKind, "evil", grant}).ok());
  ASSERT_TRUE(target_->Delete({kSchemaKind, "evil", schema}).ok());
  ASSERT_TRUE(target_->Delete({kRoleKind, "evil", role}).ok());
  EXPECT_EQ(
      QueryValue(dsn_, "SELECT count(*) FROM pg_roles WHERE rolname = " + QuoteLiteral(evil_role)),
      "0");
}

TEST_F(PostgresTest, PasswordsNeverAppearInErrors) {
  Value settings = Value::MakeObject();
  settings.Set("dsn", Value::String("host=/nonexistent-socket-dir user=x password=hunter2 "
                                    "dbname=nowhere connect_timeout=1"));
  auto t = provider_->Configure("bad", settings);
  ASSERT_TRUE(t.ok());
  auto r = (*t)->Read({kRoleKind, "x", Spec(kRoleKind, "{}")});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message.find("hunter2"), std::string::npos) << r.error().message;
  settings.Set("dsn", Value::String("host=x password=hunter2 bogus"));
  auto bad = provider_->Configure("bad", settings);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message.find("hunter2"), std::string::npos) << bad.error().message;
  EXPECT_EQ((*t)->Describe().find("hunter2"), std::string::npos);
}

class PgWatcherTest : public PostgresTest {
 protected:
  // Waits until a hint has come for each of `expected` (two minutes at most: a failure detector)
  // and returns every hint collected meanwhile, keyed by address, with the actor of the last one.
  // A change is reported in one go (one notification, or one poll), so what came with the
  // expected hints is all that change made the watcher report.
  std::map<std::string, std::string> Hints(provider::Watcher& w,
                                           const std::set<std::string>& expected) {
    std::map<std::string, std::string> out;
    std::vector<provider::WatchHint> hints;
    bool lost = false;
    auto all_in = [&] {
      for (const auto& h : hints) out[h.address] = h.actor;
      for (const auto& e : expected) {
        if (out.count(e) == 0) return false;
      }
      return true;
    };
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::minutes(2);
    while (!all_in() && std::chrono::steady_clock::now() < give_up) {
      EXPECT_TRUE(w.Wait(200, &hints, &lost).ok());
    }
    EXPECT_FALSE(lost);
    return out;
  }
  static std::set<std::string> Keys(const std::map<std::string, std::string>& m) {
    std::set<std::string> keys;
    for (const auto& [k, v] : m) keys.insert(k);
    return keys;
  }
};

TEST_F(PgWatcherTest, ManualChangesAreAttributed) {
  std::string role = UniqueName("app");
  std::string intruder = UniqueName("intruder");
  ServerRole(intruder, "LOGIN SUPERUSER");
  Value r = Spec(kRoleKind, "{\"login\": true}");
  Create(kRoleKind, role, r);
  Value s = Spec(kSchemaKind, "{}");
  Create(kSchemaKind, "app", s);
  ASSERT_EQ(Execute(dsn_, "CREATE TABLE app.t (x int)"), "");
  Value g = Spec(kGrantKind, "{\"role\": " + J(role) +
                                 ", \"on\": \"tables\", \"schema\": \"app\", \"privileges\": "
                                 "[\"select\"]}");
  Create(kGrantKind, "g", g);
  ASSERT_EQ(Execute(dsn_, "CREATE SCHEMA other; CREATE TABLE other.t (x int)"), "");
  Value g2 = Spec(kGrantKind, "{\"role\": " + J(role) +
                                  ", \"on\": \"tables\", \"schema\": \"other\", "
                                  "\"privileges\": [\"select\"]}");
  Create(kGrantKind, "g2", g2);
  Value dg = Spec(kGrantKind, "{\"role\": " + J(role) +
                                  ", \"on\": \"database\", "
                                  "\"privileges\": [\"connect\"]}");
  Create(kGrantKind, "dg", dg);

  std::vector<provider::WatchItem> items = {
      {"postgres.role/" + role, kRoleKind, r}, {"postgres.schema/app", kSchemaKind, s},
      {"postgres.grant/g", kGrantKind, g},     {"postgres.grant/g2", kGrantKind, g2},
      {"postgres.grant/dg", kGrantKind, dg},
  };
  auto w = target_->Watch(items);
  ASSERT_TRUE(w.ok()) << w.error().message;
  ASSERT_TRUE(*w);
  EXPECT_EQ((*w)->WatchCount(), 2u) << "one LISTEN, one poll";

  // Each change is reported for exactly the objects it touched; anything reported without a
  // cause (a noisy baseline) would stand among the hints of the first change.
  const std::string as_intruder = dsn_ + " user=" + intruder;
  ASSERT_EQ(Execute(as_intruder, "GRANT INSERT ON app.t TO " + QuoteIdent(role)), "");
  auto hints = Hints(**w, {"postgres.grant/g"});
  EXPECT_EQ(Keys(hints), std::set<std::string>{"postgres.grant/g"})
      << "not the schema, not g2 (its ACLs did not change)";
  EXPECT_EQ(hints["postgres.grant/g"], intruder);

  ASSERT_EQ(Execute(as_intruder, "ALTER ROLE " + QuoteIdent(role) + " CREATEDB"), "");
  hints = Hints(**w, {"postgres.role/" + role});
  EXPECT_EQ(Keys(hints), std::set<std::string>{"postgres.role/" + role}) << "polled";
  EXPECT_EQ(hints["postgres.role/" + role], "") << "the poll cannot tell who";

  ASSERT_EQ(Execute(as_intruder,
                    "GRANT CREATE ON DATABASE " + QuoteIdent(db_) + " TO " + QuoteIdent(role)),
            "");
  hints = Hints(**w, {"postgres.grant/dg"});
  EXPECT_EQ(Keys(hints), std::set<std::string>{"postgres.grant/dg"});

  ASSERT_EQ(Execute(as_intruder, "DROP SCHEMA app CASCADE"), "");
  hints = Hints(**w, {"postgres.schema/app", "postgres.grant/g"});
  EXPECT_EQ(Keys(hints), (std::set<std::string>{"postgres.schema/app", "postgres.grant/g"}));
  EXPECT_EQ(hints["postgres.schema/app"], intruder);
}

TEST(DdlEventTest, MapsToAddresses) {
  std::vector<WatchedObject> objects = {
      {"postgres.schema/a", kSchemaKind, "a", "db", "", ""},
      {"postgres.grant/t", kGrantKind, "g", "db", "a", "tables"},
      {"postgres.grant/q", kGrantKind, "g", "db", "b", "sequences"},
      {"postgres.extension/e", kExtensionKind, "e", "db", "", ""},
      {"postgres.schema/other", kSchemaKind, "a", "otherdb", "", ""},
  };
  DdlEvent e;
  ASSERT_TRUE(
      ParseDdlEvent("{\"tag\":\"DROP SCHEMA\",\"type\":\"schema\",\"schema\":\"a\","
                    "\"session_user\":\"bob\",\"current_user\":\"admin\"}",
                    &e));
  EXPECT_EQ(e.actor, "bob (as admin)");
  EXPECT_EQ(AddressesFor(objects, "db", e),
            (std::vector<std::string>{"postgres.schema/a", "postgres.grant/t"}));
  ASSERT_TRUE(ParseDdlEvent("{\"tag\":\"GRANT\",\"type\":\"sequence\"}", &e));
  EXPECT_EQ(AddressesFor(objects, "db", e), std::vector<std::string>{"postgres.grant/q"});
  ASSERT_TRUE(ParseDdlEvent("{\"tag\":\"ALTER EXTENSION\",\"type\":\"extension\"}", &e));
  EXPECT_EQ(AddressesFor(objects, "db", e), std::vector<std::string>{"postgres.extension/e"});
  ASSERT_TRUE(
      ParseDdlEvent("{\"tag\":\"CREATE TABLE\",\"type\":\"table\",\"schema\":"
                    "\"_driftless\"}",
                    &e));
  EXPECT_TRUE(AddressesFor(objects, "db", e).empty());
  EXPECT_FALSE(ParseDdlEvent("not json", &e));
}

}  // namespace
}  // namespace driftless::providers::postgres
