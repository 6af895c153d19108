// postgres.grant: the privileges of one role on one object, or on every table, sequence or
// function of a schema, exactly. Read looks at the role's own entries in the objects' ACLs
// (aclexplode, with the owner's default ACL when none was set); apply grants what is declared
// and revokes every other privilege of the object type, and the grant option when not declared.

#include <algorithm>
#include <map>
#include <set>

#include "base/strings.h"
#include "providers/postgres/grant_privileges.h"
#include "providers/postgres/postgres_target.h"
#include "providers/postgres/quote.h"

namespace driftless::providers::postgres {

using value::Value;

namespace {

struct GrantSpec {
  std::string role;
  std::string db;
  std::string on;
  std::string schema;
  std::vector<std::string> objects;
  const GrantTarget* target = nullptr;
};

GrantSpec Parse(PostgresTarget& t, const Value& spec) {
  GrantSpec g;
  g.role = SpecString(spec, "role");
  g.db = SpecString(spec, "database", t.default_database());
  g.on = SpecString(spec, "on");
  g.schema = SpecString(spec, "schema", g.on == "database" ? "" : "public");
  g.objects = SpecStrings(spec, "objects");
  g.target = FindGrantTarget(g.on);
  return g;
}

// The grantee in GRANT/REVOKE: PUBLIC is a keyword, every other role a quoted name.
std::string Grantee(const GrantSpec& g) {
  return g.role == "PUBLIC" ? "PUBLIC" : QuoteIdent(g.role);
}

// What GRANT ... ON <this> names.
std::string OnClause(const GrantSpec& g) {
  const std::string schema = QuoteIdent(g.schema);
  if (g.on == "database") return "DATABASE " + QuoteIdent(g.db);
  if (g.on == "schema") return "SCHEMA " + schema;
  if (g.on == "tables") return "ALL TABLES IN SCHEMA " + schema;
  if (g.on == "sequences") return "ALL SEQUENCES IN SCHEMA " + schema;
  if (g.on == "functions") return "ALL FUNCTIONS IN SCHEMA " + schema;
  std::string list;
  for (const auto& o : g.objects) list += (list.empty() ? "" : ", ") + schema + "." + QuoteIdent(o);
  return "TABLE " + list;
}

// One JSON row per object of the kind `on`: {"object": name, "schema": its schema ("" for a
// database), "acl": [[grantee oid, privilege, grantable], ...]}, for the grantees in the JSON list
// $1 (oids as text, 0 for PUBLIC), the objects in the databases or schemas of the JSON list $2
// and, for `table`, named in the JSON list $3.
std::string AclSql(const std::string& on) {
  auto acl = [](const std::string& column, const std::string& dflt) {
    return "'acl', (SELECT coalesce(json_agg(json_build_array(a.grantee::bigint, "
           "a.privilege_type, a.is_grantable)), '[]'::json) FROM aclexplode(coalesce(" +
           column + ", " + dflt +
           ")) a WHERE a.grantee IN (SELECT g::oid FROM json_array_elements_text($1::json) g))";
  };
  const std::string in_list = " IN (SELECT json_array_elements_text($2::json))";
  if (on == "database") {
    return "SELECT json_build_object('object', d.datname, 'schema', '', " +
           acl("d.datacl", "acldefault('d', d.datdba)") + ") FROM pg_database d WHERE d.datname" +
           in_list;
  }
  if (on == "schema") {
    return "SELECT json_build_object('object', n.nspname, 'schema', n.nspname, " +
           acl("n.nspacl", "acldefault('n', n.nspowner)") +
           ") FROM pg_namespace n WHERE n.nspname" + in_list;
  }
  if (on == "functions") {
    return "SELECT json_build_object('object', p.oid::regprocedure::text, 'schema', n.nspname, " +
           acl("p.proacl", "acldefault('f', p.proowner)") +
           ") FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
           "WHERE p.prokind IN ('f', 'a', 'w') AND n.nspname" +
           in_list;
  }
  std::string kinds = on == "sequences" ? "'S'" : "'r', 'p', 'v', 'm', 'f'";
  std::string sql = "SELECT json_build_object('object', c.relname, 'schema', n.nspname, " +
                    acl("c.relacl",
                        "acldefault(CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END::\"char\", "
                        "c.relowner)") +
                    ") FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE c.relkind IN (" +
                    kinds + ") AND n.nspname" + in_list;
  if (on == "table") sql += " AND c.relname IN (SELECT json_array_elements_text($3::json))";
  return sql;
}

// What Read reports of grant `o` from `rows`: one per object it covers, {"object", "acl":
// [[privilege, grantable], ...]} of its role only.
std::optional<Value> GrantFromRows(const GrantSpec& g, const Object& o,
                                   const std::vector<Value>& rows) {
  if ((g.on == "database" || g.on == "schema") && rows.empty()) return std::optional<Value>();
  if (g.on == "table" && rows.size() != g.objects.size()) return std::optional<Value>();

  // Per object, the privileges and those with the grant option.
  const std::vector<std::string> declared = SpecStrings(o.spec, "privileges");
  const bool declared_option = SpecBool(o.spec, "with_grant_option", false);
  std::map<std::string, int> count;  // privilege -> on how many objects
  bool all_grantable = true, any_grantable = false;
  for (const Value& row : rows) {
    const Value* acl = row.Find("acl");
    if (acl == nullptr || !acl->is_list()) continue;
    for (const Value& entry : acl->as_list()) {
      if (!entry.is_list() || entry.as_list().size() != 2) continue;
      const Value& p = entry.as_list()[0];
      const Value& grantable = entry.as_list()[1];
      if (!p.is_string()) continue;
      ++count[p.as_string()];
      bool is_grantable = grantable.is_bool() && grantable.as_bool();
      any_grantable |= is_grantable;
      all_grantable &= is_grantable;
    }
  }
  Value out = Value::MakeObject();
  std::vector<std::string> privileges;
  // Holding no privilege at all on existing objects: the grant does not exist.
  if (!rows.empty() && count.empty()) return std::optional<Value>();
  if (rows.empty()) {
    // No table (sequence, function) in the schema: nothing differs from the declaration.
    privileges = declared;
    any_grantable = all_grantable = declared_option;
  } else {
    for (const auto& [p, n] : count) {
      // A privilege on only some of the objects shows as such, so that it differs.
      privileges.push_back(static_cast<size_t>(n) == rows.size() ? p : p + " (on some objects)");
    }
  }
  out.Set("role", Value::String(g.role));
  out.Set("database", Value::String(g.db));
  out.Set("on", Value::String(g.on));
  if (g.on != "database") out.Set("schema", Value::String(g.schema));
  if (g.on == "table") out.Set("objects", StringList(g.objects));
  out.Set("privileges", StringList(std::move(privileges)));
  out.Set("with_grant_option",
          Value::Bool(declared_option ? (count.empty() ? declared_option : all_grantable)
                                      : any_grantable));
  if (const Value* name = o.spec.Find("name")) out.Set("name", *name);
  return std::optional<Value>(std::move(out));
}

// The grants `objects` of database `db`, all read with three queries and one per `on`: the
// roles' oids, the schemas that exist, the ACLs.
void ReadGrantsIn(PostgresTarget& t, const std::string& db, const std::vector<Object>& objects,
                  const std::vector<GrantSpec>& specs, const std::vector<size_t>& indices,
                  std::vector<Result<std::optional<Value>>>& out) {
  auto fail = [&](const Error& e) {
    for (size_t i : indices) out[i] = e;
  };
  Result<std::optional<Lease>> c = t.ConnectIfExists(db);
  if (!c.ok()) return fail(c.error());
  if (!*c) return;  // no database, no grant
  Connection& conn = ***c;
  std::set<std::string> roles, schemas;
  for (size_t i : indices) {
    const GrantSpec& g = specs[i];
    if (g.role != "PUBLIC") roles.insert(g.role);
    if (g.on != "database") schemas.insert(g.schema);
  }
  std::map<std::string, std::string> oids = {{"PUBLIC", "0"}};
  if (!roles.empty()) {
    Result<std::vector<Value>> r = conn.QueryJson(
        "SELECT json_build_object('name', rolname, 'oid', oid::bigint) FROM pg_roles "
        "WHERE rolname IN (SELECT json_array_elements_text($1::json))",
        {JsonStrings({roles.begin(), roles.end()})});
    if (!r.ok()) return fail(r.error());
    for (const auto& [name, row] : RowsByName(*r, "name")) {
      const Value* oid = row->Find("oid");
      if (oid != nullptr && oid->is_int()) oids[name] = std::to_string(oid->as_int());
    }
  }
  std::set<std::string> existing;
  if (!schemas.empty()) {
    Result<std::vector<Value>> r = conn.QueryJson(
        "SELECT to_json(nspname) FROM pg_namespace "
        "WHERE nspname IN (SELECT json_array_elements_text($1::json))",
        {JsonStrings({schemas.begin(), schemas.end()})});
    if (!r.ok()) return fail(r.error());
    for (const Value& v : *r) {
      if (v.is_string()) existing.insert(v.as_string());
    }
  }
  // Per `on`: the grantees, the databases or schemas and (for `table`) the tables to read.
  std::map<std::string, std::vector<size_t>> by_on;
  struct Wanted {
    std::set<std::string> grantees, places, tables;
  };
  std::map<std::string, Wanted> wanted;
  for (size_t i : indices) {
    const GrantSpec& g = specs[i];
    auto oid = oids.find(g.role);
    if (oid == oids.end()) continue;                                    // no role, no grant
    if (g.on != "database" && existing.count(g.schema) == 0) continue;  // no schema, no grant
    by_on[g.on].push_back(i);
    Wanted& w = wanted[g.on];
    w.grantees.insert(oid->second);
    w.places.insert(g.on == "database" ? g.db : g.schema);
    w.tables.insert(g.objects.begin(), g.objects.end());
  }
  for (const auto& [on, members] : by_on) {
    const Wanted& w = wanted[on];
    std::vector<std::string> params = {JsonStrings({w.grantees.begin(), w.grantees.end()}),
                                       JsonStrings({w.places.begin(), w.places.end()})};
    if (on == "table") params.push_back(JsonStrings({w.tables.begin(), w.tables.end()}));
    Result<std::vector<Value>> rows = conn.QueryJson(AclSql(on), params);
    if (!rows.ok()) {
      for (size_t i : members) out[i] = rows.error();
      continue;
    }
    for (size_t i : members) {
      const GrantSpec& g = specs[i];
      const int64_t oid = std::stoll(oids[g.role]);
      const std::string place = g.on == "database" ? g.db : g.schema;
      std::vector<Value> mine;  // the rows of this grant's objects, its role's entries only
      for (const Value& row : *rows) {
        const std::string object = SpecString(row, "object");
        if (g.on == "database" || g.on == "schema") {
          if (object != place) continue;
        } else {
          if (SpecString(row, "schema") != place) continue;
          if (g.on == "table" &&
              std::find(g.objects.begin(), g.objects.end(), object) == g.objects.end()) {
            continue;
          }
        }
        Value acl = Value::MakeList();
        if (const Value* entries = row.Find("acl"); entries != nullptr && entries->is_list()) {
          for (const Value& e : entries->as_list()) {
            if (!e.is_list() || e.as_list().size() != 3) continue;
            const Value& grantee = e.as_list()[0];
            if (!grantee.is_int() || grantee.as_int() != oid) continue;
            acl.as_list().push_back(Value::MakeList({e.as_list()[1], e.as_list()[2]}));
          }
        }
        mine.push_back(Value::MakeObject({{"object", Value::String(object)}, {"acl", acl}}));
      }
      out[i] = GrantFromRows(g, objects[i], mine);
    }
  }
}

std::vector<Result<std::optional<Value>>> ReadGrants(PostgresTarget& t,
                                                     const std::vector<Object>& objects) {
  std::vector<Result<std::optional<Value>>> out(objects.size(), std::optional<Value>());
  std::vector<GrantSpec> specs;
  specs.reserve(objects.size());
  std::map<std::string, std::vector<size_t>> by_db;
  for (size_t i = 0; i < objects.size(); ++i) {
    specs.push_back(Parse(t, objects[i].spec));
    if (specs.back().target == nullptr) {
      out[i] = MakeError("grant " + objects[i].address + ": bad `on`");
      continue;
    }
    by_db[specs.back().db].push_back(i);
  }
  for (const auto& [db, indices] : by_db) ReadGrantsIn(t, db, objects, specs, indices, out);
  return out;
}

Result<std::optional<Value>> ReadGrant(PostgresTarget& t, const Object& o) {
  return std::move(ReadGrants(t, {o}).front());
}

Status ApplyGrant(PostgresTarget& t, const Object& o, const std::optional<Value>& live,
                  const Value* prior) {
  (void)live;
  (void)prior;
  GrantSpec g = Parse(t, o.spec);
  if (g.target == nullptr) return MakeError("grant " + o.address + ": bad `on`");
  Result<Lease> c = t.pool().Get(g.db);
  if (!c.ok()) return c.error();
  const std::vector<std::string> wanted = SpecStrings(o.spec, "privileges");
  std::vector<std::string> others;
  for (auto p : g.target->privileges) {
    if (std::find(wanted.begin(), wanted.end(), p) == wanted.end()) others.emplace_back(p);
  }
  const std::string on = OnClause(g), to = Grantee(g);
  // Grants to several roles on one object rewrite the same catalog row (its ACL): done at once
  // by parallel applies, PostgreSQL fails one with "tuple concurrently updated". A lock per
  // object (per schema for its tables, sequences, functions) makes them wait for each other.
  std::string sql = "SELECT pg_advisory_xact_lock(hashtext(" +
                    QuoteLiteral("driftless grant " + g.on + " " + g.db + " " + g.schema) + "));\n";
  if (!wanted.empty()) {
    sql += "GRANT " + Join(wanted, ", ") + " ON " + on + " TO " + to +
           (SpecBool(o.spec, "with_grant_option", false) ? " WITH GRANT OPTION" : "") + ";\n";
    if (!SpecBool(o.spec, "with_grant_option", false))
      sql += "REVOKE GRANT OPTION FOR " + Join(wanted, ", ") + " ON " + on + " FROM " + to + ";\n";
  }
  if (!others.empty()) sql += "REVOKE " + Join(others, ", ") + " ON " + on + " FROM " + to + ";\n";
  Status s = (*c)->Exec(sql);
  if (!s.ok()) return MakeError("grant " + o.address + ": " + s.error().message);
  if (g.on == "database") return Status::Ok();  // global: polled, no trigger needed
  return t.Register(g.db, o.address);
}

Status DeleteGrant(PostgresTarget& t, const Object& o) {
  GrantSpec g = Parse(t, o.spec);
  if (g.target == nullptr) return Status::Ok();
  Result<std::optional<Lease>> c = t.ConnectIfExists(g.db);
  if (!c.ok()) return c.error();
  if (!*c) return Status::Ok();
  Status s = (**c)->Exec("SELECT pg_advisory_xact_lock(hashtext(" +
                         QuoteLiteral("driftless grant " + g.on + " " + g.db + " " + g.schema) +
                         "));\nREVOKE ALL ON " + OnClause(g) + " FROM " + Grantee(g));
  if (!s.ok()) {
    // The role, schema or tables are gone: so are the privileges.
    const std::string& state = (**c)->last_sqlstate();
    if (state != "42704" && state != "3F000" && state != "42P01" && state != "3D000")
      return MakeError("grant " + o.address + ": " + s.error().message);
  }
  if (g.on == "database") return Status::Ok();
  return t.Unregister(g.db, o.address);
}

}  // namespace

KindOps GrantOps() { return {ReadGrant, ApplyGrant, DeleteGrant, ReadGrants}; }

}  // namespace driftless::providers::postgres
