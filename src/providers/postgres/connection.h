#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "value/value.h"

struct pg_conn;

namespace driftless::providers::postgres {

/// One libpq connection, closed at destruction.
class Connection {
 public:
  Connection(pg_conn* c, std::string secret) : c_(c), secret_(std::move(secret)) {}
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  pg_conn* get() const { return c_; }
  /// False once the server closed it (it is then not pooled again).
  bool healthy() const;

  /// Runs `sql` (one or several statements, no parameters; identifiers and values in it are
  /// quoted by QuoteIdent/QuoteLiteral). Several statements run as one transaction.
  Status Exec(const std::string& sql);
  /// Runs a query whose rows each hold one JSON value in their first column, with `params` as
  /// $1, $2, ... (text); returns the parsed values.
  Result<std::vector<value::Value>> QueryJson(const std::string& sql,
                                              const std::vector<std::string>& params = {});
  /// The first row's JSON value, or std::nullopt when there is no row.
  Result<std::optional<value::Value>> QueryOneJson(const std::string& sql,
                                                   const std::vector<std::string>& params = {});
  /// The SQLSTATE of the last failed command ("" when none).
  const std::string& last_sqlstate() const { return sqlstate_; }

 private:
  Error Failed(const std::string& what, void* result);

  pg_conn* c_;
  std::string secret_;
  std::string sqlstate_;
};

class Pool;

/// A connection borrowed from a Pool, given back at destruction.
class Lease {
 public:
  Lease(Pool* pool, std::string db, std::unique_ptr<Connection> c)
      : pool_(pool), db_(std::move(db)), c_(std::move(c)) {}
  Lease(Lease&&) = default;
  ~Lease();
  Connection* operator->() const { return c_.get(); }
  Connection& operator*() const { return *c_; }

 private:
  Pool* pool_;
  std::string db_;
  std::unique_ptr<Connection> c_;
};

/// Connections to the databases of one server, from one connection string, kept for reuse.
/// Thread-safe.
class Pool {
 public:
  /// `dsn`: a libpq connection string or URI; `secret`: its password (masked in errors);
  /// `own_db`: the database the dsn names, whose connections are those of "" (one pool, not
  /// two: a plan reads roles there and schemas of its default database).
  Pool(std::string dsn, std::string secret, std::string own_db = "")
      : dsn_(std::move(dsn)), secret_(std::move(secret)), own_db_(std::move(own_db)) {}
  ~Pool();

  /// A connection to database `db` ("" for the connection string's own).
  Result<Lease> Get(const std::string& db);
  /// A new connection not taken from the pool (for LISTEN).
  Result<std::unique_ptr<Connection>> Connect(const std::string& db) const;
  /// Closes the idle connections to `db` (before it is dropped).
  void Forget(const std::string& db);

  const std::string& secret() const { return secret_; }

 private:
  friend class Lease;
  void Put(const std::string& db, std::unique_ptr<Connection> c);
  // The key of `db` in idle_.
  const std::string& Key(const std::string& db) const;

  std::string dsn_;
  std::string secret_;
  std::string own_db_;
  std::mutex mu_;
  std::map<std::string, std::vector<std::unique_ptr<Connection>>> idle_;
};

/// What a libpq connection string holds that the provider needs.
struct DsnParts {
  std::string dbname;  ///< the database (libpq's default: the user name)
  std::string user;    ///< may be empty (libpq then uses the OS user)
  std::string host;    ///< for messages
  std::string port;
  std::string password;  ///< masked in every error
};

/// Parses a connection string or URI without connecting. The error never quotes the string.
Result<DsnParts> ParseDsn(const std::string& dsn);

}  // namespace driftless::providers::postgres
