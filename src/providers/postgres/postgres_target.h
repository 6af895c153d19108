#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "provider/provider.h"
#include "providers/postgres/connection.h"

// Internal to the postgres provider: the target class, the schemas and what the kinds share.

namespace driftless::providers::postgres {

inline constexpr char kRoleKind[] = "postgres.role";
inline constexpr char kDatabaseKind[] = "postgres.database";
inline constexpr char kSchemaKind[] = "postgres.schema";
inline constexpr char kGrantKind[] = "postgres.grant";
inline constexpr char kExtensionKind[] = "postgres.extension";

/// The schemas of the five kinds, declared as data.
const std::vector<provider::ResourceSchema>& PostgresSchemas();

/// The schema that holds the event trigger's functions and the list of managed objects in each
/// watched database, and the channel the trigger notifies.
inline constexpr char kHelperSchema[] = "_driftless";
inline constexpr char kChannel[] = "driftless_ddl";

/// One resource as the kinds see it.
struct Object {
  std::string address;  ///< "postgres.role/app"
  std::string name;     ///< the object's name: spec.name, else the resource's name
  const value::Value& spec;
};

class PostgresTarget;

/// Reading and writing one kind. `apply` makes the object equal to the spec: `live` is what
/// Read saw (std::nullopt: create it), `prior` the last applied attributes (or nullptr).
struct KindOps {
  Result<std::optional<value::Value>> (*read)(PostgresTarget& t, const Object& o);
  Status (*apply)(PostgresTarget& t, const Object& o, const std::optional<value::Value>& live,
                  const value::Value* prior);
  Status (*remove)(PostgresTarget& t, const Object& o);
  /// What `read` returns for each of `objects`, in order, with one query (per database).
  std::vector<Result<std::optional<value::Value>>> (*read_many)(PostgresTarget& t,
                                                                const std::vector<Object>& objects);
};

KindOps RoleOps();
KindOps DatabaseOps();
KindOps SchemaOps();
KindOps GrantOps();
KindOps ExtensionOps();

/// The string member `key` of a spec, or `fallback`.
std::string SpecString(const value::Value& spec, std::string_view key,
                       const std::string& fallback = "");
/// The bool member `key` of a spec, or `fallback`.
bool SpecBool(const value::Value& spec, std::string_view key, bool fallback);
/// The strings of the list member `key` of a spec.
std::vector<std::string> SpecStrings(const value::Value& spec, std::string_view key);
/// A sorted list value of strings.
value::Value StringList(std::vector<std::string> items);
/// `items` as a JSON list, the parameter of `IN (SELECT json_array_elements_text($1::json))`.
std::string JsonStrings(const std::vector<std::string>& items);
/// The objects' names, in order.
std::vector<std::string> NamesOf(const std::vector<Object>& objects);
/// Per object, `make(row, object)` of the row (of `rows`, or their failure) whose "name" is the
/// object's name, else std::nullopt (no such object).
std::vector<Result<std::optional<value::Value>>> MatchRows(
    const std::vector<Object>& objects, const Result<std::vector<value::Value>>& rows,
    const std::function<value::Value(const value::Value&, const Object&)>& make);
/// `n` reads that failed with `error` (the query they shared failed).
std::vector<Result<std::optional<value::Value>>> Failed(size_t n, const Error& error);
/// The rows (JSON objects) by their string member `key`; rows without it are left out.
std::map<std::string, const value::Value*> RowsByName(const std::vector<value::Value>& rows,
                                                      std::string_view key);

/// "2027-01-01", "2027-01-01T12:00[:00][Z|+02[:00]]" or "infinity" in canonical form
/// ("2027-01-01T10:00:00Z"); "" when malformed. A time without an offset is UTC.
std::string NormalizeTimestamp(std::string_view s);

/// A PostgreSQL server reached through one connection string (`dsn`).
class PostgresTarget final : public provider::Target {
 public:
  PostgresTarget(std::string target_name, std::string dsn, DsnParts parts);

  Result<value::Value> Normalize(const std::string& kind, const value::Value& spec,
                                 const provider::ReadRepoFile& read_file,
                                 std::vector<provider::FieldError>& errors) const override;
  Result<std::optional<value::Value>> Read(const provider::ResourceRequest& req) const override;
  /// One catalog query per kind (per database for schemas, grants and extensions).
  bool ReadsInBatches() const override { return true; }
  std::vector<Result<std::optional<value::Value>>> ReadMany(
      const std::vector<provider::ResourceRequest>& reqs) const override;
  Result<value::Value> Create(const provider::ResourceRequest& req, bool adopt) override;
  Result<value::Value> Update(const provider::ResourceRequest& req,
                              const value::Value& prior) override;
  Status Delete(const provider::ResourceRequest& prior) override;
  std::string Describe() const override;
  /// IDs are names separated by "/" (providers/postgres/import_id.h): a role or database
  /// `NAME`, a schema or extension `[DATABASE/]NAME`, a grant
  /// `ROLE/DATABASE/ON[/SCHEMA[/TABLE,...]]` (import.cc).
  Result<std::optional<value::Value>> ReadById(
      const std::string& id, const provider::ResourceRequest& declared) const override;
  /// LISTEN on the event trigger's channel in each database that holds managed schemas,
  /// grants and extensions; one catalog query per second for roles, databases and database
  /// grants (providers/postgres/watcher.h).
  Result<std::unique_ptr<provider::Watcher>> Watch(
      const std::vector<provider::WatchItem>& items) override;

  Pool& pool() const { return *pool_; }
  /// A connection to database `db`; std::nullopt when the database does not exist.
  Result<std::optional<Lease>> ConnectIfExists(const std::string& db);
  /// The connection string's own database: the default of `database` fields.
  const std::string& default_database() const { return parts_.dbname; }
  const std::string& target_name() const { return target_name_; }
  /// The comment that marks an object as managed ("managed by driftless: ADDRESS ...").
  std::string Marker(const std::string& address) const;

  /// Records that `address` is managed in database `db` and makes sure the event trigger is
  /// installed there. Without the privilege to install it (event triggers need a superuser),
  /// nothing happens: drift there is found by scans.
  Status Register(const std::string& db, const std::string& address);
  /// Forgets `address` in `db`; the trigger and its helper schema are removed when nothing
  /// managed is left there.
  Status Unregister(const std::string& db, const std::string& address);

  /// Whether pg_authid (password verifiers) is readable; set on the first read of a role.
  std::atomic<int> authid_readable{-1};

 private:
  std::string target_name_;
  std::string dsn_;
  DsnParts parts_;
  std::unique_ptr<Pool> pool_;
  std::mutex registered_mu_;
  std::set<std::string> registered_;  // "db\naddress" registered by this process
  std::set<std::string> installed_;   // databases where this process installed the trigger
};

}  // namespace driftless::providers::postgres
