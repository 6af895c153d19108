// postgres.grant: the privileges of one role on one object, or on every table, sequence or
// function of a schema, exactly. Read looks at the role's own entries in the objects' ACLs
// (aclexplode, with the owner's default ACL when none was set); apply grants what is declared
// and revokes every other privilege of the object type, and the grant option when not declared.

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

// One JSON row per object: {"object": name, "acl": [[privilege, grantable], ...]} for the
// grantee $1 (an oid as text). $2: the database or schema name, $3: objects as a JSON list.
std::string AclSql(const std::string& on) {
  auto acl = [](const std::string& column, const std::string& dflt) {
    return "'acl', (SELECT coalesce(json_agg(json_build_array(a.privilege_type, "
           "a.is_grantable)), '[]'::json) FROM aclexplode(coalesce(" +
           column + ", " + dflt + ")) a WHERE a.grantee = $1::oid)";
  };
  if (on == "database") {
    return "SELECT json_build_object('object', d.datname, " +
           acl("d.datacl", "acldefault('d', d.datdba)") +
           ") FROM pg_database d WHERE d.datname = $2";
  }
  if (on == "schema") {
    return "SELECT json_build_object('object', n.nspname, " +
           acl("n.nspacl", "acldefault('n', n.nspowner)") +
           ") FROM pg_namespace n WHERE n.nspname = $2";
  }
  if (on == "functions") {
    return "SELECT json_build_object('object', p.oid::regprocedure::text, " +
           acl("p.proacl", "acldefault('f', p.proowner)") +
           ") FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
           "WHERE n.nspname = $2 AND p.prokind IN ('f', 'a', 'w')";
  }
  std::string kinds = on == "sequences" ? "'S'" : "'r', 'p', 'v', 'm', 'f'";
  std::string sql = "SELECT json_build_object('object', c.relname, " +
                    acl("c.relacl",
                        "acldefault(CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END::\"char\", "
                        "c.relowner)") +
                    ") FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE n.nspname = $2 AND c.relkind IN (" +
                    kinds + ")";
  if (on == "table") sql += " AND c.relname IN (SELECT json_array_elements_text($3::json))";
  return sql;
}

Result<std::optional<Value>> ReadGrant(PostgresTarget& t, const Object& o) {
  GrantSpec g = Parse(t, o.spec);
  if (g.target == nullptr) return MakeError("grant " + o.address + ": bad `on`");
  Result<std::optional<Lease>> c = t.ConnectIfExists(g.db);
  if (!c.ok()) return c.error();
  if (!*c) return std::optional<Value>();
  Connection& conn = ***c;
  std::string oid = "0";  // PUBLIC
  if (g.role != "PUBLIC") {
    Result<std::optional<Value>> r =
        conn.QueryOneJson("SELECT to_json(oid::bigint) FROM pg_roles WHERE rolname = $1", {g.role});
    if (!r.ok()) return r.error();
    if (!*r || !(*r)->is_int()) return std::optional<Value>();  // no role, no grant
    oid = std::to_string((*r)->as_int());
  }
  if (g.on != "database") {
    Result<std::optional<Value>> s =
        conn.QueryOneJson("SELECT to_json(1) FROM pg_namespace WHERE nspname = $1", {g.schema});
    if (!s.ok()) return s.error();
    if (!*s) return std::optional<Value>();  // no schema, no grant
  }
  Value objects = Value::MakeList();
  for (const auto& name : g.objects) objects.as_list().push_back(Value::String(name));
  std::vector<std::string> params = {oid, g.on == "database" ? g.db : g.schema};
  if (g.on == "table") params.push_back(value::ToJson(objects));
  Result<std::vector<Value>> rows = conn.QueryJson(AclSql(g.on), params);
  if (!rows.ok()) return rows.error();
  if ((g.on == "database" || g.on == "schema") && rows->empty()) return std::optional<Value>();
  if (g.on == "table" && rows->size() != g.objects.size()) return std::optional<Value>();

  // Per object, the privileges and those with the grant option.
  const std::vector<std::string> declared = SpecStrings(o.spec, "privileges");
  const bool declared_option = SpecBool(o.spec, "with_grant_option", false);
  std::map<std::string, int> count;  // privilege -> on how many objects
  bool all_grantable = true, any_grantable = false;
  for (const Value& row : *rows) {
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
  if (!rows->empty() && count.empty()) return std::optional<Value>();
  if (rows->empty()) {
    // No table (sequence, function) in the schema: nothing differs from the declaration.
    privileges = declared;
    any_grantable = all_grantable = declared_option;
  } else {
    for (const auto& [p, n] : count) {
      // A privilege on only some of the objects shows as such, so that it differs.
      privileges.push_back(static_cast<size_t>(n) == rows->size() ? p : p + " (on some objects)");
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

KindOps GrantOps() { return {ReadGrant, ApplyGrant, DeleteGrant}; }

}  // namespace driftless::providers::postgres
