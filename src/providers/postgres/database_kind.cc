// postgres.database: CREATE DATABASE with what cannot be altered later (encoding, locales,
// template: a change of those replaces the database), ALTER DATABASE for the rest.

#include "base/strings.h"
#include "providers/postgres/postgres_target.h"
#include "providers/postgres/quote.h"

namespace driftless::providers::postgres {

using value::Value;

namespace {

// The catalog rows of the databases `names` (any order).
Result<std::vector<Value>> QueryDatabases(PostgresTarget& t,
                                          const std::vector<std::string>& names) {
  Result<Lease> c = t.pool().Get("");
  if (!c.ok()) return c.error();
  return (*c)->QueryJson(
      "SELECT json_build_object('oid', d.oid::bigint, 'name', d.datname, "
      "'owner', pg_get_userbyid(d.datdba), 'encoding', pg_encoding_to_char(d.encoding), "
      "'lc_collate', d.datcollate, 'lc_ctype', d.datctype, "
      "'connection_limit', d.datconnlimit, 'allow_connections', d.datallowconn) "
      "FROM pg_database d WHERE d.datname IN (SELECT json_array_elements_text($1::json))",
      {JsonStrings(names)});
}

// What Read reports of database `o` from its catalog row.
Value DatabaseFromRow(Value v, const Object& o) {
  // The template is not kept by PostgreSQL: the declared one is echoed.
  if (const Value* tmpl = o.spec.Find("template")) v.Set("template", *tmpl);
  return v;
}

Result<std::optional<Value>> ReadDatabase(PostgresTarget& t, const Object& o) {
  Result<std::vector<Value>> rows = QueryDatabases(t, {o.name});
  if (!rows.ok()) return rows.error();
  if (rows->empty()) return std::optional<Value>();
  return std::optional<Value>(DatabaseFromRow(std::move(rows->front()), o));
}

std::vector<Result<std::optional<Value>>> ReadDatabases(PostgresTarget& t,
                                                        const std::vector<Object>& objects) {
  return MatchRows(objects, QueryDatabases(t, NamesOf(objects)), DatabaseFromRow);
}

std::string Alterable(const Value& spec) {
  const Value* limit = spec.Find("connection_limit");
  return " CONNECTION LIMIT " +
         std::to_string(limit && limit->is_int() ? limit->as_int() : static_cast<int64_t>(-1)) +
         " ALLOW_CONNECTIONS " + (SpecBool(spec, "allow_connections", true) ? "true" : "false");
}

Status ApplyDatabase(PostgresTarget& t, const Object& o, const std::optional<Value>& live,
                     const Value* prior) {
  const std::string db = QuoteIdent(o.name);
  const std::string owner = SpecString(o.spec, "owner");
  Result<Lease> c = t.pool().Get("");
  if (!c.ok()) return c.error();
  Status s;
  if (!live) {
    std::string old_name = prior ? SpecString(*prior, "name", "") : "";
    if (prior && !old_name.empty() && old_name != o.name) {
      t.pool().Forget(old_name);
      s = (*c)->Exec("ALTER DATABASE " + QuoteIdent(old_name) + " RENAME TO " + db);
    } else {
      // CREATE DATABASE cannot run inside a transaction: a statement of its own.
      std::string sql = "CREATE DATABASE " + db;
      if (!owner.empty()) sql += " OWNER " + QuoteIdent(owner);
      std::string encoding = SpecString(o.spec, "encoding");
      std::string collate = SpecString(o.spec, "lc_collate");
      std::string ctype = SpecString(o.spec, "lc_ctype");
      std::string tmpl = SpecString(o.spec, "template");
      if (tmpl.empty() && !(encoding.empty() && collate.empty() && ctype.empty()))
        tmpl = "template0";  // template1 may hold data in another encoding
      if (!encoding.empty()) sql += " ENCODING " + QuoteLiteral(encoding);
      if (!collate.empty()) sql += " LC_COLLATE " + QuoteLiteral(collate);
      if (!ctype.empty()) sql += " LC_CTYPE " + QuoteLiteral(ctype);
      if (!tmpl.empty()) sql += " TEMPLATE " + QuoteIdent(tmpl);
      sql += Alterable(o.spec);
      s = (*c)->Exec(sql);
    }
  }
  if (s.ok() && live && !owner.empty() && SpecString(*live, "owner") != owner) {
    s = (*c)->Exec("ALTER DATABASE " + db + " OWNER TO " + QuoteIdent(owner));
  }
  if (s.ok() && !live && !owner.empty() && prior) {
    s = (*c)->Exec("ALTER DATABASE " + db + " OWNER TO " + QuoteIdent(owner));
  }
  if (s.ok()) {
    s = (*c)->Exec("ALTER DATABASE " + db + " WITH" + Alterable(o.spec) +
                   ";\nCOMMENT ON DATABASE " + db + " IS " + QuoteLiteral(t.Marker(o.address)));
  }
  if (!s.ok()) return MakeError("database " + Quote(o.name) + ": " + s.error().message);
  return Status::Ok();
}

Status DeleteDatabase(PostgresTarget& t, const Object& o) {
  t.pool().Forget(o.name);  // our own idle connections would keep it busy
  Result<Lease> c = t.pool().Get("");
  if (!c.ok()) return c.error();
  Status s = (*c)->Exec("DROP DATABASE IF EXISTS " + QuoteIdent(o.name));
  if (!s.ok()) return MakeError("database " + Quote(o.name) + ": " + s.error().message);
  return Status::Ok();
}

}  // namespace

KindOps DatabaseOps() { return {ReadDatabase, ApplyDatabase, DeleteDatabase, ReadDatabases}; }

}  // namespace driftless::providers::postgres
