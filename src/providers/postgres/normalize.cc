// Normalize: checks and canonical forms of the postgres kinds (what is stored as applied and
// compared with what Read reports).

#include <algorithm>
#include <cctype>
#include <ctime>

#include "base/strings.h"
#include "providers/postgres/grant_privileges.h"
#include "providers/postgres/postgres_target.h"
#include "providers/postgres/quote.h"

namespace driftless::providers::postgres {

using value::Value;

namespace {

// A copy of `v` with the sensitivity and source mark of `like`.
Value Like(Value v, const Value& like) {
  v.set_sensitive(like.sensitive());
  v.set_mark(like.line(), like.column());
  return v;
}

void SetDefault(Value& spec, const char* key, Value v) {
  if (spec.Find(key) == nullptr) spec.Set(key, std::move(v));
}

// Checks the string member `key` as an object name.
void CheckNameField(const Value& spec, const char* key, std::vector<provider::FieldError>& errors) {
  const Value* v = spec.Find(key);
  if (v == nullptr || !v->is_string()) return;
  if (std::string why = CheckName(v->as_string()); !why.empty())
    errors.push_back({key, "the name " + why});
}

// Sorted, without duplicates; each checked as a name.
void NormalizeNameList(Value& spec, const char* key, std::vector<provider::FieldError>& errors) {
  Value* v = spec.Find(key);
  if (v == nullptr) return;
  std::vector<std::string> items;
  for (size_t i = 0; i < v->as_list().size(); ++i) {
    const Value& item = v->as_list()[i];
    if (!item.is_string()) {
      errors.push_back({std::string(key) + "." + std::to_string(i), "must be a string"});
      continue;
    }
    if (std::string why = CheckName(item.as_string()); !why.empty()) {
      errors.push_back({std::string(key) + "." + std::to_string(i), "the name " + why});
      continue;
    }
    items.push_back(item.as_string());
  }
  *v = Like(StringList(std::move(items)), *v);
}

bool Digits(std::string_view s, size_t at, size_t n, int* out) {
  if (at + n > s.size()) return false;
  int x = 0;
  for (size_t i = at; i < at + n; ++i) {
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) return false;
    x = x * 10 + (s[i] - '0');
  }
  *out = x;
  return true;
}

}  // namespace

// "2027-01-01", "2027-01-01T12:00[:00][Z|+02[:00]]" or "infinity" -> "2027-01-01T10:00:00Z";
// "" when malformed. A time without an offset is UTC.
std::string NormalizeTimestamp(std::string_view s) {
  if (s == "infinity") return "infinity";
  int y, mo, d, h = 0, mi = 0, sec = 0;
  if (!Digits(s, 0, 4, &y) || s.size() < 10 || s[4] != '-' || !Digits(s, 5, 2, &mo) ||
      s[7] != '-' || !Digits(s, 8, 2, &d))
    return "";
  size_t at = 10;
  int offset = 0;
  if (at < s.size()) {
    if ((s[at] != 'T' && s[at] != ' ') || !Digits(s, at + 1, 2, &h) || s.size() < at + 6 ||
        s[at + 3] != ':' || !Digits(s, at + 4, 2, &mi))
      return "";
    at += 6;
    if (at < s.size() && s[at] == ':') {
      if (!Digits(s, at + 1, 2, &sec)) return "";
      at += 3;
    }
    if (at < s.size()) {
      if (s[at] == 'Z' && at + 1 == s.size()) {
        ++at;
      } else if (s[at] == '+' || s[at] == '-') {
        int oh = 0, om = 0;
        if (!Digits(s, at + 1, 2, &oh)) return "";
        size_t end = at + 3;
        if (end < s.size()) {
          if (s[end] == ':') ++end;
          if (!Digits(s, end, 2, &om)) return "";
          end += 2;
        }
        if (end != s.size()) return "";
        offset = (oh * 60 + om) * 60 * (s[at] == '-' ? -1 : 1);
        at = end;
      } else {
        return "";
      }
    }
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) return "";
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = sec;
  time_t t = timegm(&tm) - offset;
  std::tm out{};
  gmtime_r(&t, &out);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &out);
  return buf;
}

Result<Value> PostgresTarget::Normalize(const std::string& kind, const Value& spec_in,
                                        const provider::ReadRepoFile& read_file,
                                        std::vector<provider::FieldError>& errors) const {
  (void)read_file;
  if (!spec_in.is_object()) return MakeError("spec must be a map");
  Value spec = spec_in;
  CheckNameField(spec, "name", errors);
  CheckNameField(spec, "owner", errors);
  CheckNameField(spec, "database", errors);
  if (kind == kRoleKind) {
    SetDefault(spec, "login", Value::Bool(false));
    SetDefault(spec, "superuser", Value::Bool(false));
    SetDefault(spec, "createdb", Value::Bool(false));
    SetDefault(spec, "createrole", Value::Bool(false));
    SetDefault(spec, "inherit", Value::Bool(true));
    SetDefault(spec, "replication", Value::Bool(false));
    SetDefault(spec, "connection_limit", Value::Int(-1));
    SetDefault(spec, "member_of", Value::MakeList());
    NormalizeNameList(spec, "member_of", errors);
    if (const Value* p = spec.Find("password"); p && p->is_string()) {
      if (p->as_string().find('\0') != std::string::npos)
        errors.push_back({"password", "must not hold a NUL byte"});
    }
    if (Value* v = spec.Find("valid_until"); v && v->is_string()) {
      std::string t = NormalizeTimestamp(v->as_string());
      if (t.empty()) {
        errors.push_back(
            {"valid_until", "\"" + v->as_string() +
                                "\" is not a date: use \"2027-01-01\", \"2027-01-01T12:00:00Z\", "
                                "\"2027-01-01T12:00:00+02:00\" or \"infinity\""});
      } else {
        *v = Like(Value::String(t), *v);
      }
    }
  } else if (kind == kDatabaseKind) {
    CheckNameField(spec, "template", errors);
    SetDefault(spec, "connection_limit", Value::Int(-1));
    SetDefault(spec, "allow_connections", Value::Bool(true));
    if (Value* v = spec.Find("encoding"); v && v->is_string()) {
      std::string e = v->as_string();
      for (char& c : e) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      if (e == "UTF-8") e = "UTF8";
      if (e.empty() ||
          e.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") != std::string::npos) {
        errors.push_back({"encoding", "\"" + v->as_string() + "\" is not an encoding name"});
      }
      *v = Like(Value::String(e), *v);
    }
    for (const char* key : {"lc_collate", "lc_ctype"}) {
      if (const Value* v = spec.Find(key); v && v->is_string()) {
        if (v->as_string().empty() || v->as_string().find('\0') != std::string::npos)
          errors.push_back({key, "must be a locale name"});
      }
    }
  } else if (kind == kSchemaKind || kind == kExtensionKind) {
    SetDefault(spec, "database", Value::String(default_database()));
    if (kind == kExtensionKind) CheckNameField(spec, "schema", errors);
    if (const Value* v = spec.Find("version"); v && v->is_string() && v->as_string().empty())
      errors.push_back({"version", "must not be empty"});
  } else if (kind == kGrantKind) {
    SetDefault(spec, "database", Value::String(default_database()));
    SetDefault(spec, "with_grant_option", Value::Bool(false));
    if (Value* r = spec.Find("role"); r && r->is_string()) {
      if (AsciiLower(r->as_string()) == "public") *r = Like(Value::String("PUBLIC"), *r);
      CheckNameField(spec, "role", errors);
    }
    const std::string on = SpecString(spec, "on");
    const GrantTarget* target = FindGrantTarget(on);
    if (target == nullptr) {
      errors.push_back({"on", "\"" + on +
                                  "\" is not one of database, schema, tables, table, sequences, "
                                  "functions"});
      return spec;
    }
    if (on == "database") {
      if (spec.Find("schema") != nullptr)
        errors.push_back({"schema", "is not used with on: database"});
    } else {
      SetDefault(spec, "schema", Value::String("public"));
      CheckNameField(spec, "schema", errors);
    }
    if (on == "table") {
      const Value* objects = spec.Find("objects");
      if (objects == nullptr || !objects->is_list() || objects->as_list().empty()) {
        errors.push_back({"objects", "on: table needs `objects`, the table names"});
      } else {
        NormalizeNameList(spec, "objects", errors);
      }
    } else if (spec.Find("objects") != nullptr) {
      errors.push_back({"objects", "is only used with on: table"});
    }
    if (Value* privs = spec.Find("privileges"); privs && privs->is_list()) {
      std::vector<std::string> out;
      for (size_t i = 0; i < privs->as_list().size(); ++i) {
        const Value& p = privs->as_list()[i];
        std::string why;
        if (!p.is_string() || !ExpandPrivilege(*target, p.as_string(), &out, &why)) {
          errors.push_back({"privileges." + std::to_string(i),
                            p.is_string() ? why : std::string("must be a string")});
        }
      }
      *privs = Like(StringList(std::move(out)), *privs);
    }
  }
  return spec;
}

}  // namespace driftless::providers::postgres
