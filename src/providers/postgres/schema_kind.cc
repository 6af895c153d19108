// postgres.schema and postgres.extension: objects inside one database, reached through a
// connection to it. Creating or updating one installs the event trigger there (Register).

#include <map>

#include "base/strings.h"
#include "providers/postgres/postgres_target.h"
#include "providers/postgres/quote.h"

namespace driftless::providers::postgres {

using value::Value;

namespace {

std::string DatabaseOf(PostgresTarget& t, const Value& spec) {
  return SpecString(spec, "database", t.default_database());
}

// The schemas named in the JSON list $1, in the connection's database.
constexpr char kSchemasSql[] =
    "SELECT json_build_object('name', nspname, 'owner', pg_get_userbyid(nspowner), "
    "'database', current_database()) FROM pg_namespace "
    "WHERE nspname IN (SELECT json_array_elements_text($1::json))";

// The extensions named in the JSON list $1, in the connection's database.
constexpr char kExtensionsSql[] =
    "SELECT json_build_object('name', e.extname, 'schema', n.nspname, "
    "'version', e.extversion, 'database', current_database()) "
    "FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
    "WHERE e.extname IN (SELECT json_array_elements_text($1::json))";

// Objects that live inside a database, read with `sql` (its $1: their names as a JSON list), one
// query per database; none exists in a database that does not.
std::vector<Result<std::optional<Value>>> ReadInDatabases(PostgresTarget& t,
                                                          const std::vector<Object>& objects,
                                                          const char* sql) {
  std::vector<Result<std::optional<Value>>> out(objects.size(), std::optional<Value>());
  std::map<std::string, std::vector<size_t>> by_db;
  for (size_t i = 0; i < objects.size(); ++i) by_db[DatabaseOf(t, objects[i].spec)].push_back(i);
  for (const auto& [db, indices] : by_db) {
    std::vector<Object> here;
    for (size_t i : indices) here.push_back(objects[i]);
    Result<std::optional<Lease>> c = t.ConnectIfExists(db);
    Result<std::vector<Value>> rows = std::vector<Value>();
    if (!c.ok()) {
      rows = c.error();
    } else if (*c) {
      rows = (**c)->QueryJson(sql, {JsonStrings(NamesOf(here))});
    }
    std::vector<Result<std::optional<Value>>> got =
        MatchRows(here, rows, [](const Value& row, const Object&) { return row; });
    for (size_t k = 0; k < indices.size(); ++k) out[indices[k]] = std::move(got[k]);
  }
  return out;
}

Result<std::optional<Value>> ReadOne(PostgresTarget& t, const Object& o, const char* sql) {
  return std::move(ReadInDatabases(t, {o}, sql).front());
}

Result<std::optional<Value>> ReadSchema(PostgresTarget& t, const Object& o) {
  return ReadOne(t, o, kSchemasSql);
}

std::vector<Result<std::optional<Value>>> ReadSchemas(PostgresTarget& t,
                                                      const std::vector<Object>& objects) {
  return ReadInDatabases(t, objects, kSchemasSql);
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
  return ReadOne(t, o, kExtensionsSql);
}

std::vector<Result<std::optional<Value>>> ReadExtensions(PostgresTarget& t,
                                                         const std::vector<Object>& objects) {
  return ReadInDatabases(t, objects, kExtensionsSql);
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

KindOps SchemaOps() { return {ReadSchema, ApplySchema, DeleteSchema, ReadSchemas}; }
KindOps ExtensionOps() { return {ReadExtension, ApplyExtension, DeleteExtension, ReadExtensions}; }

}  // namespace driftless::providers::postgres
