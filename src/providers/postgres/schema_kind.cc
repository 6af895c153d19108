// postgres.schema and postgres.extension: objects inside one database, reached through a
// connection to it. Creating or updating one installs the event trigger there (Register).

#include "base/strings.h"
#include "providers/postgres/postgres_target.h"
#include "providers/postgres/quote.h"

namespace driftless::providers::postgres {

using value::Value;

namespace {

std::string DatabaseOf(PostgresTarget& t, const Value& spec) {
  return SpecString(spec, "database", t.default_database());
}

Result<std::optional<Value>> ReadSchema(PostgresTarget& t, const Object& o) {
  Result<std::optional<Lease>> c = t.ConnectIfExists(DatabaseOf(t, o.spec));
  if (!c.ok()) return c.error();
  if (!*c) return std::optional<Value>();
  return (**c)->QueryOneJson(
      "SELECT json_build_object('name', nspname, 'owner', pg_get_userbyid(nspowner), "
      "'database', current_database()) FROM pg_namespace WHERE nspname = $1",
      {o.name});
}

Status ApplySchema(PostgresTarget& t, const Object& o, const std::optional<Value>& live,
                   const Value* prior) {
  const std::string db = DatabaseOf(t, o.spec);
  Result<Lease> c = t.pool().Get(db);
  if (!c.ok()) return c.error();
  const std::string schema = QuoteIdent(o.name);
  const std::string owner = SpecString(o.spec, "owner");
  std::string sql;
  if (!live) {
    std::string old_name = prior ? SpecString(*prior, "name", "") : "";
    if (prior && !old_name.empty() && old_name != o.name) {
      sql += "ALTER SCHEMA " + QuoteIdent(old_name) + " RENAME TO " + schema + ";\n";
    } else {
      sql += "CREATE SCHEMA " + schema + ";\n";
    }
  }
  if (!owner.empty() && (!live || SpecString(*live, "owner") != owner))
    sql += "ALTER SCHEMA " + schema + " OWNER TO " + QuoteIdent(owner) + ";\n";
  sql += "COMMENT ON SCHEMA " + schema + " IS " + QuoteLiteral(t.Marker(o.address)) + ";\n";
  Status s = (*c)->Exec(sql);
  if (!s.ok()) return MakeError("schema " + Quote(o.name) + ": " + s.error().message);
  return t.Register(db, o.address);
}

Status DeleteSchema(PostgresTarget& t, const Object& o) {
  const std::string db = DatabaseOf(t, o.spec);
  Result<std::optional<Lease>> c = t.ConnectIfExists(db);
  if (!c.ok()) return c.error();
  if (!*c) return Status::Ok();
  Status s = (**c)->Exec("DROP SCHEMA IF EXISTS " + QuoteIdent(o.name));
  if (!s.ok()) return MakeError("schema " + Quote(o.name) + ": " + s.error().message);
  return t.Unregister(db, o.address);
}

Result<std::optional<Value>> ReadExtension(PostgresTarget& t, const Object& o) {
  Result<std::optional<Lease>> c = t.ConnectIfExists(DatabaseOf(t, o.spec));
  if (!c.ok()) return c.error();
  if (!*c) return std::optional<Value>();
  return (**c)->QueryOneJson(
      "SELECT json_build_object('name', e.extname, 'schema', n.nspname, "
      "'version', e.extversion, 'database', current_database()) "
      "FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = $1",
      {o.name});
}

Status ApplyExtension(PostgresTarget& t, const Object& o, const std::optional<Value>& live,
                      const Value* prior) {
  (void)prior;
  const std::string db = DatabaseOf(t, o.spec);
  Result<Lease> c = t.pool().Get(db);
  if (!c.ok()) return c.error();
  const std::string ext = QuoteIdent(o.name);
  const std::string schema = SpecString(o.spec, "schema");
  const std::string version = SpecString(o.spec, "version");
  std::string sql;
  if (!live) {
    sql = "CREATE EXTENSION " + ext;
    if (!schema.empty()) sql += " SCHEMA " + QuoteIdent(schema);
    if (!version.empty()) sql += " VERSION " + QuoteLiteral(version);
  } else {
    if (!version.empty() && SpecString(*live, "version") != version)
      sql += "ALTER EXTENSION " + ext + " UPDATE TO " + QuoteLiteral(version) + ";\n";
    if (!schema.empty() && SpecString(*live, "schema") != schema)
      sql += "ALTER EXTENSION " + ext + " SET SCHEMA " + QuoteIdent(schema) + ";\n";
  }
  if (!sql.empty()) {
    Status s = (*c)->Exec(sql);
    if (!s.ok()) return MakeError("extension " + Quote(o.name) + ": " + s.error().message);
  }
  return t.Register(db, o.address);
}

Status DeleteExtension(PostgresTarget& t, const Object& o) {
  const std::string db = DatabaseOf(t, o.spec);
  Result<std::optional<Lease>> c = t.ConnectIfExists(db);
  if (!c.ok()) return c.error();
  if (!*c) return Status::Ok();
  Status s = (**c)->Exec("DROP EXTENSION IF EXISTS " + QuoteIdent(o.name));
  if (!s.ok()) return MakeError("extension " + Quote(o.name) + ": " + s.error().message);
  return t.Unregister(db, o.address);
}

}  // namespace

KindOps SchemaOps() { return {ReadSchema, ApplySchema, DeleteSchema}; }
KindOps ExtensionOps() { return {ReadExtension, ApplyExtension, DeleteExtension}; }

}  // namespace driftless::providers::postgres
