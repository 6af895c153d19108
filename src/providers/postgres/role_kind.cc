// postgres.role: read from pg_authid (pg_roles without the privilege to read it), created and
// altered with CREATE/ALTER ROLE; memberships granted and revoked to match `member_of`
// exactly; the password set as a SCRAM-SHA-256 verifier computed here and compared through the
// verifier the server stores.

#include <libpq-fe.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cstdio>
#include <map>

#include "base/strings.h"
#include "providers/postgres/postgres_target.h"
#include "providers/postgres/quote.h"
#include "providers/postgres/scram.h"
#include "value/render.h"

namespace driftless::providers::postgres {

using value::Value;

namespace {

// What Read reports for a password that does not match the declared one (it is flagged
// sensitive and compared as a salted hash, never shown).
constexpr char kPasswordDiffers[] = "(differs from the declared password)";

// The roles named in the JSON list $1.
std::string ReadSql(bool authid) {
  return std::string(
             "SELECT json_build_object('oid', r.oid::bigint, 'name', r.rolname, "
             "'login', r.rolcanlogin, 'superuser', r.rolsuper, 'createdb', r.rolcreatedb, "
             "'createrole', r.rolcreaterole, 'inherit', r.rolinherit, "
             "'replication', r.rolreplication, 'connection_limit', r.rolconnlimit, "
             "'valid_until', CASE WHEN r.rolvaliduntil IS NULL THEN NULL "
             "  WHEN r.rolvaliduntil = 'infinity' THEN 'infinity' "
             "  ELSE to_char(r.rolvaliduntil AT TIME ZONE 'UTC', "
             "               'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') END, "
             "'member_of', coalesce((SELECT json_agg(g.rolname) FROM pg_auth_members m "
             "  JOIN pg_roles g ON g.oid = m.roleid WHERE m.member = r.oid), '[]'::json), "
             "'password', ") +
         (authid ? "r.rolpassword) FROM pg_authid r" : "NULL) FROM pg_roles r") +
         " WHERE r.rolname IN (SELECT json_array_elements_text($1::json))";
}

bool Md5Matches(const std::string& password, const std::string& user, const std::string& hash) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  std::string input = password + user;
  if (EVP_Digest(input.data(), input.size(), digest, &len, EVP_md5(), nullptr) != 1) return false;
  std::string hex = "md5";
  char buf[3];
  for (unsigned i = 0; i < len; ++i) {
    std::snprintf(buf, sizeof buf, "%02x", digest[i]);
    hex += buf;
  }
  return hex == hash;
}

// The catalog rows of the roles `names` (any order), and whether they hold password verifiers.
Result<std::vector<Value>> QueryRoles(PostgresTarget& t, const std::vector<std::string>& names,
                                      bool* authid) {
  Result<Lease> c = t.pool().Get("");
  if (!c.ok()) return c.error();
  *authid = t.authid_readable.load() != 0;
  const std::string list = JsonStrings(names);
  Result<std::vector<Value>> got = (*c)->QueryJson(ReadSql(*authid), {list});
  if (!got.ok() && *authid && (*c)->last_sqlstate() == "42501") {
    t.authid_readable = 0;  // not a superuser: passwords cannot be compared
    *authid = false;
    got = (*c)->QueryJson(ReadSql(false), {list});
  }
  if (got.ok() && *authid) t.authid_readable = 1;
  return got;
}

// What Read reports of role `o` from its catalog row `v`.
Value RoleFromRow(Value v, const Object& o, bool authid) {
  // Memberships sorted as Normalize sorts them (bytewise, whatever the server's collation).
  if (Value* m = v.Find("member_of"); m && m->is_list())
    *m = StringList(SpecStrings(v, "member_of"));
  // The password: the declared one when the stored verifier was made from it.
  const Value* verifier = v.Find("password");
  std::string stored = verifier && verifier->is_string() ? verifier->as_string() : "";
  v.Erase("password");
  if (const Value* declared = o.spec.Find("password")) {
    Value shown = *declared;  // unknown or already protected: cannot be checked, assumed equal
    if (authid && declared->is_string() && !value::IsProtected(*declared)) {
      const std::string& plain = declared->as_string();
      bool same = ScramVerify(plain, stored) ||
                  (stored.rfind("md5", 0) == 0 && Md5Matches(plain, o.name, stored));
      if (!same) shown = stored.empty() ? Value::Null() : Value::String(kPasswordDiffers);
    }
    shown.set_sensitive(true);
    v.Set("password", std::move(shown));
  }
  return v;
}

Result<std::optional<Value>> ReadRole(PostgresTarget& t, const Object& o) {
  bool authid = false;
  Result<std::vector<Value>> rows = QueryRoles(t, {o.name}, &authid);
  if (!rows.ok()) return rows.error();
  if (rows->empty()) return std::optional<Value>();
  return std::optional<Value>(RoleFromRow(std::move(rows->front()), o, authid));
}

std::vector<Result<std::optional<Value>>> ReadRoles(PostgresTarget& t,
                                                    const std::vector<Object>& objects) {
  bool authid = false;
  Result<std::vector<Value>> rows = QueryRoles(t, NamesOf(objects), &authid);
  return MatchRows(objects, rows,
                   [&](const Value& row, const Object& o) { return RoleFromRow(row, o, authid); });
}

std::string Options(const Value& spec) {
  std::string sql;
  auto flag = [&](const char* key, const char* yes, const char* no, bool fallback) {
    sql += SpecBool(spec, key, fallback) ? yes : no;
  };
  flag("login", " LOGIN", " NOLOGIN", false);
  flag("superuser", " SUPERUSER", " NOSUPERUSER", false);
  flag("createdb", " CREATEDB", " NOCREATEDB", false);
  flag("createrole", " CREATEROLE", " NOCREATEROLE", false);
  flag("inherit", " INHERIT", " NOINHERIT", true);
  flag("replication", " REPLICATION", " NOREPLICATION", false);
  const Value* limit = spec.Find("connection_limit");
  sql += " CONNECTION LIMIT " +
         std::to_string(limit && limit->is_int() ? limit->as_int() : static_cast<int64_t>(-1));
  if (const Value* until = spec.Find("valid_until"); until && until->is_string())
    sql += " VALID UNTIL " + QuoteLiteral(until->as_string());
  return sql;
}

Status ApplyRole(PostgresTarget& t, const Object& o, const std::optional<Value>& live,
                 const Value* prior) {
  Result<Lease> c = t.pool().Get("");
  if (!c.ok()) return c.error();
  const std::string role = QuoteIdent(o.name);
  std::string sql;
  std::vector<std::string> current;
  if (!live) {
    std::string old_name = prior ? SpecString(*prior, "name", "") : "";
    if (prior && !old_name.empty() && old_name != o.name) {
      sql += "ALTER ROLE " + QuoteIdent(old_name) + " RENAME TO " + role + ";\n";
      sql += "ALTER ROLE " + role + " WITH" + Options(o.spec) + ";\n";
      current = SpecStrings(*prior, "member_of");
    } else {
      sql += "CREATE ROLE " + role + " WITH" + Options(o.spec) + ";\n";
    }
  } else {
    sql += "ALTER ROLE " + role + " WITH" + Options(o.spec) + ";\n";
    current = SpecStrings(*live, "member_of");
  }
  sql += "COMMENT ON ROLE " + role + " IS " + QuoteLiteral(t.Marker(o.address)) + ";\n";
  // The password, when it is not the stored one already: a verifier computed here.
  const Value* password = o.spec.Find("password");
  if (password != nullptr && password->is_string() && !value::IsProtected(*password)) {
    const Value* live_password = live ? live->Find("password") : nullptr;
    if (live_password == nullptr || *live_password != *password) {
      char* verifier = PQencryptPasswordConn((*c)->get(), password->as_string().c_str(),
                                             o.name.c_str(), "scram-sha-256");
      if (verifier == nullptr)
        return MakeError("cannot compute the password verifier of role " + Quote(o.name));
      sql += "ALTER ROLE " + role + " PASSWORD " + QuoteLiteral(verifier) + ";\n";
      PQfreemem(verifier);
    }
  }
  std::vector<std::string> wanted = SpecStrings(o.spec, "member_of");
  for (const auto& g : wanted) {
    if (std::find(current.begin(), current.end(), g) == current.end())
      sql += "GRANT " + QuoteIdent(g) + " TO " + role + ";\n";
  }
  for (const auto& g : current) {
    if (std::find(wanted.begin(), wanted.end(), g) == wanted.end())
      sql += "REVOKE " + QuoteIdent(g) + " FROM " + role + ";\n";
  }
  Status s = (*c)->Exec(sql);
  if (!s.ok()) return MakeError("role " + Quote(o.name) + ": " + s.error().message);
  return Status::Ok();
}

Status DeleteRole(PostgresTarget& t, const Object& o) {
  Result<Lease> c = t.pool().Get("");
  if (!c.ok()) return c.error();
  Status s = (*c)->Exec("DROP ROLE IF EXISTS " + QuoteIdent(o.name));
  if (!s.ok()) return MakeError("role " + Quote(o.name) + ": " + s.error().message);
  return Status::Ok();
}

}  // namespace

KindOps RoleOps() { return {ReadRole, ApplyRole, DeleteRole, ReadRoles}; }

}  // namespace driftless::providers::postgres
