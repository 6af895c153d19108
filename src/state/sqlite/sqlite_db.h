#pragma once

// A thin layer over the SQLite C API for the state store: a connection that caches its prepared
// statements, a statement handle that resets itself when it goes out of scope, and a transaction
// that rolls back unless committed. Failures are values that name the database file.

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "base/result.h"

namespace driftless::state::sqlite_detail {

/// A cached prepared statement lent out for one use. Binds are 1-based, columns 0-based.
/// Going out of scope resets the statement and clears its bindings, so it can be lent again.
class Stmt {
 public:
  Stmt(sqlite3_stmt* stmt, const std::string* path) : stmt_(stmt), path_(path) {}
  ~Stmt();
  Stmt(Stmt&& other) noexcept;
  Stmt& operator=(Stmt&&) = delete;
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  /// Binds a value; strings are copied, so temporaries are fine.
  Stmt& Bind(int index, int64_t value);
  Stmt& Bind(int index, std::string_view value);
  Stmt& Bind(int index, const std::string& value) { return Bind(index, std::string_view(value)); }
  Stmt& Bind(int index, const char* value) { return Bind(index, std::string_view(value)); }
  /// Binds text without copying it: `value` must stay alive and unchanged until the statement
  /// has run (Step returned false, Run returned, or the Stmt went out of scope). For hot paths.
  Stmt& BindView(int index, std::string_view value);

  /// Runs one step: true when a row is ready, false when the statement is done.
  /// `what` completes "cannot ..." in the error message.
  Result<bool> Step(std::string_view what);
  /// Runs the statement to completion, ignoring any rows, and resets it (bindings stay) so that
  /// it can be bound and run again.
  Status Run(std::string_view what);

  /// Column accessors for the current row. NULL reads as 0 or "".
  int64_t Int(int column) const { return sqlite3_column_int64(stmt_, column); }
  std::string_view View(int column) const;
  std::string Text(int column) const { return std::string(View(column)); }
  bool IsNull(int column) const { return sqlite3_column_type(stmt_, column) == SQLITE_NULL; }

 private:
  sqlite3_stmt* stmt_;
  const std::string* path_;
};

/// One connection to a state database file. Not thread-safe: one thread at a time.
class Database {
 public:
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  /// Opens (creating when missing) the file at `path` with the given busy timeout.
  /// Does not set journal mode or any other pragma.
  static Result<std::unique_ptr<Database>> Open(const std::string& path, int busy_timeout_ms);

  /// The statement for `sql`, prepared on first use and kept until the connection closes.
  /// `sql` must have static storage duration (a string literal): it is the cache key.
  Result<Stmt> Prepare(std::string_view sql);
  /// Finalizes the prepared statements (the next Prepare of each prepares it again): a served
  /// watch's connection between its checks holds about 50 KB of them. No Stmt of this
  /// connection may be in use.
  void ReleaseStatements();
  /// Runs one or more statements without caching them (schema changes, pragmas).
  Status Exec(const char* sql, std::string_view what);
  /// Rows changed by the last INSERT, UPDATE or DELETE.
  int64_t Changes() const { return sqlite3_changes64(db_); }
  /// The rowid of the last row inserted.
  int64_t LastInsertId() const { return sqlite3_last_insert_rowid(db_); }

  /// "cannot WHAT in state database PATH: REASON" from the connection's last error.
  Error Fail(std::string_view what) const;

  const std::string& path() const { return path_; }
  sqlite3* handle() const { return db_; }

 private:
  Database(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}

  sqlite3* db_;
  std::string path_;
  std::unordered_map<std::string_view, sqlite3_stmt*> cache_;
};

/// Formats a failure of `db` (by result code and message) the way every error of the store reads.
Error FailMessage(sqlite3* db, int rc, const std::string& path, std::string_view what);

/// A write (BEGIN IMMEDIATE) or read (BEGIN DEFERRED) transaction. Rolls back when it goes out
/// of scope without Commit(). Declare it before the statements used inside it.
class Transaction {
 public:
  /// Takes the database's write lock at once, waiting up to the busy timeout for other writers.
  static Result<Transaction> Write(Database& db, std::string_view what);
  /// A consistent snapshot for several reads.
  static Result<Transaction> Read(Database& db, std::string_view what);

  Transaction(Transaction&& other) noexcept : db_(other.db_) { other.db_ = nullptr; }
  Transaction& operator=(Transaction&&) = delete;
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction();

  /// Commits; after a failure the transaction is rolled back.
  Status Commit(std::string_view what);

 private:
  explicit Transaction(Database* db) : db_(db) {}
  Database* db_;
};

}  // namespace driftless::state::sqlite_detail
