#pragma once

// A thin layer over libpq for the PostgreSQL state store: a connection that prepares each
// statement once, parameters that are always sent separately from the SQL text ($1, $2, ...),
// results read as text, and transactions that roll back unless committed. Failures are values
// that name the state location with its password masked.

#include <libpq-fe.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/result.h"

namespace driftless::state::pg_detail {

/// The parameters of one statement, in order ($1 is the first). Text format; std::nullopt is
/// SQL NULL. Values are copied: temporaries are fine.
class Params {
 public:
  Params& Add(std::string_view v) {
    values_.emplace_back(std::string(v));
    return *this;
  }
  Params& Add(const std::string& v) { return Add(std::string_view(v)); }
  Params& Add(const char* v) { return Add(std::string_view(v)); }
  Params& Add(std::string&& v) {
    values_.emplace_back(std::move(v));
    return *this;
  }
  Params& Add(int64_t v) { return Add(std::to_string(v)); }
  Params& Add(int v) { return Add(static_cast<int64_t>(v)); }
  Params& Null() {
    values_.emplace_back(std::nullopt);
    return *this;
  }
  size_t size() const { return values_.size(); }
  const std::vector<std::optional<std::string>>& values() const { return values_; }

 private:
  std::vector<std::optional<std::string>> values_;
};

/// A statement's result: rows of text columns. NULL reads as "" or 0.
class Rows {
 public:
  explicit Rows(PGresult* r) : r_(r) {}
  ~Rows() {
    if (r_ != nullptr) PQclear(r_);
  }
  Rows(Rows&& o) noexcept : r_(o.r_) { o.r_ = nullptr; }
  Rows& operator=(Rows&&) = delete;
  Rows(const Rows&) = delete;
  Rows& operator=(const Rows&) = delete;

  int size() const { return PQntuples(r_); }
  bool empty() const { return size() == 0; }
  /// Rows changed by an INSERT, UPDATE or DELETE.
  int64_t affected() const;
  std::string_view View(int row, int column) const {
    return std::string_view(PQgetvalue(r_, row, column),
                            static_cast<size_t>(PQgetlength(r_, row, column)));
  }
  std::string Text(int row, int column) const { return std::string(View(row, column)); }
  int64_t Int(int row, int column) const;
  bool Bool(int row, int column) const { return View(row, column) == "t"; }
  bool IsNull(int row, int column) const { return PQgetisnull(r_, row, column) != 0; }

 private:
  PGresult* r_;
};

/// One connection. Not thread-safe: one thread at a time.
class Connection {
 public:
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  /// Connects to `location` (a postgres:// or postgresql:// URI, or libpq key=value pairs).
  /// `shown` is how errors name it (the location with its password masked).
  /// `application_name` is the default of pg_stat_activity's column (the location may set its
  /// own); `keepalive` makes a TCP connection that stays idle notice a dead peer within about
  /// 30 s (a listener's connection).
  static Result<std::unique_ptr<Connection>> Open(const std::string& location,
                                                  const std::string& shown,
                                                  const char* application_name = "driftless",
                                                  bool keepalive = false);

  /// Runs one statement with parameters, prepared once per connection (`sql` is the cache key).
  /// `what` completes "cannot ..." in the error message.
  Result<Rows> Exec(std::string_view sql, const Params& params, std::string_view what);
  Result<Rows> Exec(std::string_view sql, std::string_view what) {
    return Exec(sql, Params(), what);
  }
  /// Runs SQL text without parameters and without preparing it (schema changes, BEGIN, LISTEN);
  /// several statements are allowed.
  Status Script(const std::string& sql, std::string_view what);

  /// Waits up to `timeout_ms` for a notification on a channel this connection listens to.
  /// True when one (or more) arrived; they are consumed.
  Result<bool> WaitForNotification(int timeout_ms);

  /// "cannot WHAT in state SHOWN: REASON".
  Error Fail(std::string_view what, std::string_view reason) const;

  /// The SQLSTATE of the last failed statement ("" when none), e.g. "23505" (unique violation).
  const std::string& last_sqlstate() const { return last_sqlstate_; }
  const std::string& shown() const { return shown_; }
  PGconn* handle() const { return conn_; }

 private:
  Connection(PGconn* conn, std::string shown) : conn_(conn), shown_(std::move(shown)) {}
  // Reconnects when the connection broke outside a transaction (the server restarted, or the
  // session was ended). Inside one it does not: the statements after it would run outside the
  // transaction; they fail instead, and so does the transaction.
  void ResetIfBroken();
  friend class Transaction;
  // The outcome of statement result `r` (null when the connection failed): Ok for a command or
  // rows, else the failure (its SQLSTATE kept in last_sqlstate_).
  Status CheckResult(const PGresult* r, std::string_view what);

  PGconn* conn_;
  std::string shown_;
  std::unordered_map<std::string, std::string> prepared_;  // SQL text -> statement name
  std::string last_sqlstate_;
  // A Transaction is open on this connection (libpq cannot tell once the connection broke:
  // PQtransactionStatus is then PQTRANS_UNKNOWN, for a session inside a transaction or not).
  bool in_transaction_ = false;
};

/// A transaction (READ COMMITTED for writes, REPEATABLE READ READ ONLY for a consistent read of
/// several statements). Rolls back when it goes out of scope without Commit(). Declare it before
/// the statements used inside it.
class Transaction {
 public:
  static Result<Transaction> Write(Connection& c, std::string_view what);
  static Result<Transaction> Read(Connection& c, std::string_view what);

  Transaction(Transaction&& other) noexcept : c_(other.c_) { other.c_ = nullptr; }
  Transaction& operator=(Transaction&&) = delete;
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction();

  Status Commit(std::string_view what);

 private:
  explicit Transaction(Connection* c) : c_(c) {}
  Connection* c_;
};

/// A libpq message on one line, without its trailing newline and "ERROR:  " prefix.
std::string OneLineMessage(const char* message);

/// A PostgreSQL array literal of text ("{\"a\",\"b\"}"), for a $n::text[] parameter.
std::string EncodeTextArray(const std::vector<std::string>& items);
/// The same for views, without copying the items first.
std::string EncodeTextArray(const std::vector<std::string_view>& items);
/// Parses a one-dimensional text array as PostgreSQL prints it into `out` (replacing its
/// contents); false when `text` is not one.
bool DecodeTextArray(std::string_view text, std::vector<std::string>* out);

}  // namespace driftless::state::pg_detail
