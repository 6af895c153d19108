#include "providers/postgres/postgres_provider.h"

#include <utility>

#include "providers/postgres/postgres_target.h"

namespace driftless::providers::postgres {
namespace {

using provider::FieldSchema;
using provider::FieldType;
using provider::ResourceSchema;

FieldSchema NameField(const std::string& what) {
  return {.name = "name",
          .type = FieldType::kString,
          .description = "The " + what +
                         "'s name in PostgreSQL; defaults to the resource's name. Always "
                         "quoted: case and any character are kept. At most 63 bytes."};
}

FieldSchema DatabaseField(const std::string& what) {
  return {.name = "database",
          .type = FieldType::kString,
          .force_new = true,
          .description = "The database that holds the " + what +
                         "; defaults to the connection string's database."};
}

FieldSchema Oid() {
  return {
      .name = "oid", .type = FieldType::kInt, .computed = true, .description = "The object's oid."};
}

FieldSchema Flag(const std::string& name, const std::string& description) {
  return {.name = name, .type = FieldType::kBool, .description = description};
}

std::vector<ResourceSchema> BuildSchemas() {
  std::vector<ResourceSchema> out;
  out.push_back(ResourceSchema{
      .kind = kRoleKind,
      .description = "A role (a user when it may log in). Flags not declared get PostgreSQL's "
                     "defaults and are compared all the same.",
      .fields = {
          NameField("role"),
          Flag("login", "May log in (default false)."),
          Flag("superuser", "Default false."),
          Flag("createdb", "Default false."),
          Flag("createrole", "Default false."),
          Flag("inherit",
               "Inherits the privileges of the roles it is a member of (default "
               "true)."),
          Flag("replication", "Default false."),
          {.name = "connection_limit",
           .type = FieldType::kInt,
           .description = "-1 (the default): no limit."},
          {.name = "password",
           .type = FieldType::kString,
           .sensitive = true,
           .description = "The password, normally `${secret.NAME}`. Set as a SCRAM-SHA-256 "
                          "verifier computed by driftless (the server never sees the "
                          "password); compared by checking it against the verifier the server "
                          "stores, so a password changed by hand is drift. Left alone when "
                          "absent."},
          {.name = "valid_until",
           .type = FieldType::kString,
           .description = "When the password stops being valid: \"2027-01-01\", "
                          "\"2027-01-01T12:00:00Z\", \"2027-01-01T12:00:00+02:00\" or "
                          "\"infinity\"; shown in UTC (\"2027-01-01T00:00:00Z\"). Left alone "
                          "when absent."},
          {.name = "member_of",
           .type = FieldType::kList,
           .description = "The roles it is a member of, exactly: a membership beyond the list "
                          "is drift and is revoked on apply. Default [] (none)."},
          Oid(),
      }});
  out.push_back(ResourceSchema{
      .kind = kDatabaseKind,
      .description = "A database.",
      .fields = {
          NameField("database"),
          {.name = "owner",
           .type = FieldType::kString,
           .description = "The owning role; left alone when absent (a new database is owned "
                          "by the connecting user)."},
          {.name = "encoding",
           .type = FieldType::kString,
           .force_new = true,
           .description = "\"UTF8\", \"LATIN1\", ... (upper case; \"utf-8\" is \"UTF8\"). "
                          "Cannot be altered: a change replaces the database."},
          {.name = "lc_collate",
           .type = FieldType::kString,
           .force_new = true,
           .description = "Collation locale (\"C.UTF-8\"). A change replaces the database."},
          {.name = "lc_ctype",
           .type = FieldType::kString,
           .force_new = true,
           .description = "Character classification locale. A change replaces the database."},
          {.name = "template",
           .type = FieldType::kString,
           .force_new = true,
           .description = "The database copied on creation (default template1, or template0 "
                          "when encoding or a locale is declared). Not readable afterwards; a "
                          "change replaces the database.",
           .write_only = true},
          {.name = "connection_limit",
           .type = FieldType::kInt,
           .description = "-1 (the default): no limit."},
          Flag("allow_connections", "Default true."),
          Oid(),
      }});
  out.push_back(ResourceSchema{.kind = kSchemaKind,
                               .description = "A schema in a database.",
                               .fields = {
                                   NameField("schema"),
                                   DatabaseField("schema"),
                                   {.name = "owner",
                                    .type = FieldType::kString,
                                    .description = "The owning role; left alone when absent."},
                               }});
  out.push_back(ResourceSchema{
      .kind = kGrantKind,
      .description = "The privileges of one role on one object (or on all tables, sequences or "
                     "functions of a schema), exactly: privileges beyond the list are drift and "
                     "are revoked on apply. One grant resource per role and object.",
      .fields = {
          {.name = "name",
           .type = FieldType::kString,
           .description = "Informational only: a grant is identified by role, database, on, "
                          "schema and objects.",
           .write_only = true},
          {.name = "role",
           .type = FieldType::kString,
           .required = true,
           .force_new = true,
           .description = "The role that gets the privileges (\"PUBLIC\" for everyone)."},
          DatabaseField("objects (for on: database, the database itself)"),
          {.name = "on",
           .type = FieldType::kString,
           .required = true,
           .force_new = true,
           .description = "database, schema, tables (all tables of the schema), table (the "
                          "tables in `objects`), sequences or functions (all of the schema)."},
          {.name = "schema",
           .type = FieldType::kString,
           .force_new = true,
           .description = "The schema, for every `on` but database (default \"public\")."},
          {.name = "objects",
           .type = FieldType::kList,
           .force_new = true,
           .description = "Table names in `schema`, for on: table."},
          {.name = "privileges",
           .type = FieldType::kList,
           .required = true,
           .description = "Privilege names (any case; ALL is every privilege of the object "
                          "type; TEMP is TEMPORARY); stored upper case and sorted."},
          Flag("with_grant_option", "The role may grant them on (default false)."),
      }});
  out.push_back(ResourceSchema{
      .kind = kExtensionKind,
      .description = "An extension installed in a database.",
      .fields = {
          {.name = "name",
           .type = FieldType::kString,
           .force_new = true,
           .description = "The extension (\"pgcrypto\"); defaults to the resource's name."},
          DatabaseField("extension"),
          {.name = "schema",
           .type = FieldType::kString,
           .description = "Where its objects live; left alone when absent (a new one goes to "
                          "the extension's default schema)."},
          {.name = "version",
           .type = FieldType::kString,
           .description = "Updated with ALTER EXTENSION ... UPDATE TO when it changes; left "
                          "alone when absent (a new one gets the default version)."},
      }});
  return out;
}

class PostgresProvider final : public provider::Provider {
 public:
  std::string Name() const override { return "postgres"; }
  std::vector<ResourceSchema> Schemas() const override { return PostgresSchemas(); }
  std::vector<FieldSchema> TargetSchema() const override {
    return {{.name = "dsn",
             .type = FieldType::kString,
             .required = true,
             .sensitive = true,
             .description = "A libpq connection string (\"host=db port=5432 user=admin "
                            "dbname=postgres\") or URI (postgresql://...), normally "
                            "`${secret.NAME}`. Never printed; its password is masked in "
                            "errors."}};
  }

  Result<std::unique_ptr<provider::Target>> Configure(const std::string& target_name,
                                                      const value::Value& settings) const override {
    std::string prefix = "target " + target_name + ": ";
    if (!settings.is_object()) return MakeError(prefix + "settings must be a map");
    for (const auto& [key, v] : settings.as_object()) {
      if (key != "dsn") {
        return MakeError(prefix + "unknown setting \"" + key +
                         "\" for the postgres provider (it takes: dsn)");
      }
    }
    const value::Value* dsn = settings.Find("dsn");
    if (dsn == nullptr || !dsn->is_string() || dsn->as_string().empty()) {
      return MakeError(prefix + "the postgres provider needs `dsn`, a connection string");
    }
    Result<DsnParts> parts = ParseDsn(dsn->as_string());
    if (!parts.ok()) return MakeError(prefix + parts.error().message);
    return std::unique_ptr<provider::Target>(
        std::make_unique<PostgresTarget>(target_name, dsn->as_string(), std::move(*parts)));
  }
};

}  // namespace

const std::vector<ResourceSchema>& PostgresSchemas() {
  static const std::vector<ResourceSchema> schemas = BuildSchemas();
  return schemas;
}

std::unique_ptr<provider::Provider> NewPostgresProvider() {
  return std::make_unique<PostgresProvider>();
}

}  // namespace driftless::providers::postgres
