// PostgresTarget::ReadById: the import IDs of the five kinds, parsed into the fields that name
// the object, checked against the declaration, then read as Read reads the declared object.

#include <cctype>

#include "base/strings.h"
#include "providers/postgres/grant_privileges.h"
#include "providers/postgres/import_id.h"
#include "providers/postgres/postgres_target.h"
#include "providers/postgres/quote.h"

namespace driftless::providers::postgres {

using value::Value;

namespace {

// The form of a kind's ID, for messages.
std::string FormOf(const std::string& kind) {
  if (kind == kRoleKind || kind == kDatabaseKind) return "NAME";
  if (kind == kSchemaKind || kind == kExtensionKind) return "[DATABASE/]NAME";
  return "ROLE/DATABASE/ON[/SCHEMA[/TABLE,...]], ON one of database, schema, tables, table, "
         "sequences, functions";
}

// The fields the ID names, or why it does not name an object of `kind`.
Result<Value> IdentityOf(const std::string& kind, const std::vector<IdPart>& parts,
                         const std::string& default_database) {
  std::string why;
  auto single = [&](size_t i) -> const std::string& {
    if (parts[i].size() != 1 && why.empty())
      why = "a list of names where one name stands (quote a name that holds \",\")";
    return parts[i][0];
  };
  Value out = Value::MakeObject();
  auto check = [&](const std::string& name) {
    if (std::string bad = CheckName(name); !bad.empty() && why.empty())
      why = "the name \"" + name + "\" " + bad;
  };
  auto set = [&](const char* field, const std::string& name) {
    check(name);
    out.Set(field, Value::String(name));
  };
  const size_t n = parts.size();
  if (kind == kRoleKind || kind == kDatabaseKind) {
    if (n != 1)
      why = std::to_string(n) + " parts where one stands (quote a name that holds \"/\")";
    else
      set("name", single(0));
  } else if (kind == kSchemaKind || kind == kExtensionKind) {
    if (n > 2) {
      why = std::to_string(n) + " parts, at most two";
    } else {
      set("database", n == 2 ? single(0) : default_database);
      set("name", single(n - 1));
    }
  } else if (kind == kGrantKind) {
    if (n < 3) {
      why = std::to_string(n) + " part" + (n == 1 ? "" : "s") + ", at least three";
    } else {
      std::string role = single(0);
      set("role", AsciiLower(role) == "public" ? "PUBLIC" : role);
      set("database", single(1));
      const std::string& on = single(2);
      out.Set("on", Value::String(on));
      if (FindGrantTarget(on) == nullptr) {
        if (why.empty()) why = "\"" + on + "\" is not an `on`";
      } else if (on == "database") {
        if (n != 3) why = "more than three parts for on: database";
      } else if (on == "table") {
        if (n != 5) {
          why = "on: table takes five parts, the last the table names";
        } else {
          set("schema", single(3));
          for (const auto& t : parts[4]) check(t);
          out.Set("objects", StringList(parts[4]));
        }
      } else if (n > 4) {
        why = "more than four parts for on: " + on;
      } else {
        set("schema", n == 4 ? single(3) : "public");
      }
    }
  } else {
    return MakeError("the postgres provider has no kind " + kind);
  }
  if (!why.empty()) return MakeError(why);
  return out;
}

// The ID of the object a declaration names; "" while part of it is unknown.
std::string DeclaredId(const std::string& kind, const provider::ResourceRequest& declared) {
  const Value& spec = declared.spec;
  std::vector<std::string> fields;
  if (kind == kRoleKind || kind == kDatabaseKind) {
    fields = {"name"};
  } else if (kind == kSchemaKind || kind == kExtensionKind) {
    fields = {"database", "name"};
  } else {
    fields = {"role", "database", "on"};
    const std::string on = SpecString(spec, "on");
    if (on != "database") fields.push_back("schema");
    if (on == "table") fields.push_back("objects");
  }
  std::vector<IdPart> parts;
  for (const auto& f : fields) {
    const Value* v = spec.Find(f);
    if (v == nullptr && f == "name") {
      parts.push_back({declared.name});
      continue;
    }
    if (v == nullptr || v->ContainsUnknown()) return "";
    if (v->is_string()) {
      parts.push_back({v->as_string()});
    } else {
      parts.push_back(SpecStrings(spec, f));
      if (parts.back().empty()) return "";
    }
  }
  return FormatImportId(parts);
}

}  // namespace

Result<std::optional<Value>> PostgresTarget::ReadById(
    const std::string& id, const provider::ResourceRequest& declared) const {
  const std::string& kind = declared.kind;
  auto form = [&] { return "; the ID of a " + kind + " is " + FormOf(kind); };
  Result<std::vector<IdPart>> parts = ParseImportId(id);
  if (!parts.ok()) return MakeError(parts.error().message + form());
  Result<Value> identity = IdentityOf(kind, *parts, default_database());
  if (!identity.ok()) {
    return MakeError("ID \"" + id + "\" does not parse: " + identity.error().message + form());
  }
  Result<Value> spec = provider::ImportSpec(declared, id, *identity, DeclaredId(kind, declared));
  if (!spec.ok()) return spec.error();
  return Read({kind, declared.name, *spec});
}

}  // namespace driftless::providers::postgres
