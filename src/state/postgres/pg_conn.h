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

/// A live libpq session and the statements prepared on it. Connections take one from the
/// process's pool of idle sessions (or connect) when a statement or a transaction starts, and
/// give it back when it ends.
struct Session {
  explicit Session(PGconn* c) : conn(c) {}
  ~Session() { PQfinish(conn); }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  PGconn* conn;
  std::unordered_map<std::string, std::string> prepared;  // SQL text -> statement name
  /// It sent or received a message over Connection::kPooledMessageBytes. libpq's buffers grow
  /// to the largest message and never shrink, so such a session is closed, not pooled: a server
  /// whose pooled sessions had each carried one run's plan held a megabyte in each.
  bool bulky = false;
};

/// One logical connection. Not thread-safe: one thread at a time. It holds a libpq session only
/// while it uses one: for a statement outside a transaction, for a whole Transaction, and from
/// Listen to Unlisten; in between the session goes back to a pool shared by every connection of
/// the process to the same location (at most kIdleSessions idle ones are kept, the others
/// closed). So a server with hundreds of stores (a watch each) holds as many PostgreSQL
/// connections as statements run at once, not one per store.
class Connection {
 public:
  /// Idle sessions the pool keeps per location.
  static constexpr size_t kIdleSessions = 8;
  /// The largest message (a statement's parameters, a row of its result) of a session that
  /// goes back to the pool; one that carried more is closed (Session::bulky).
  static constexpr size_t kPooledMessageBytes = 64 * 1024;

  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  /// Connects to `location` (a postgres:// or postgresql:// URI, or libpq key=value pairs), or
  /// takes an idle session of the pool. `shown` is how errors name it (the location with its
  /// password masked). `application_name` is the default of pg_stat_activity's column (the
  /// location may set its own); `keepalive` makes a TCP connection that stays idle notice a dead
  /// peer within about 30 s (a listener's connection).
  static Result<std::unique_ptr<Connection>> Open(const std::string& location,
                                                  const std::string& shown,
                                                  const char* application_name = "driftless",
                                                  bool keepalive = false);

  /// Runs one statement with parameters, prepared once per session (`sql` is the cache key).
  /// `what` completes "cannot ..." in the error message.
  Result<Rows> Exec(std::string_view sql, const Params& params, std::string_view what);
  Result<Rows> Exec(std::string_view sql, std::string_view what) {
    return Exec(sql, Params(), what);
  }
  /// Runs SQL text without parameters and without preparing it (schema changes, BEGIN);
  /// several statements are allowed. Not for LISTEN: see Listen.
  Status Script(const std::string& sql, std::string_view what);

  /// Runs `sql` (LISTEN statements) and keeps this connection's session until Unlisten: the
  /// notifications come to that session.
  Status Listen(const std::string& sql, std::string_view what);
  /// Runs `sql` (UNLISTEN statements); when every Listen is undone, the session may go back to
  /// the pool.
  Status Unlisten(const std::string& sql, std::string_view what);

  /// Waits up to `timeout_ms` for a notification on a channel this connection listens to.
  /// True when one (or more) arrived; they are consumed.
  Result<bool> WaitForNotification(int timeout_ms);

  /// "cannot WHAT in state SHOWN: REASON".
  Error Fail(std::string_view what, std::string_view reason) const;

  /// The SQLSTATE of the last failed statement ("" when none), e.g. "23505" (unique violation).
  const std::string& last_sqlstate() const { return last_sqlstate_; }
  const std::string& shown() const { return shown_; }
  /// The libpq session held (between Listen and Unlisten, or inside a Transaction); nullptr
  /// when none is.
  PGconn* handle() const;

  /// Idle sessions in the pool for `location` with these settings (tests).
  static size_t IdleSessions(const std::string& location, const char* application_name,
                             bool keepalive);

 private:
  Connection(std::string location, std::string shown, std::string application_name, bool keepalive)
      : location_(std::move(location)),
        shown_(std::move(shown)),
        application_name_(std::move(application_name)),
        keepalive_(keepalive) {}
  // Takes a session (an idle one that is still alive, else a new one) unless one is held.
  Status Attach();
  // Gives the session back unless a transaction or a Listen needs it.
  void Detach();
  std::string PoolKey() const;
  friend class Transaction;
  // The outcome of statement result `r` (null when the connection failed): Ok for a command or
  // rows, else the failure (its SQLSTATE kept in last_sqlstate_).
  Status CheckResult(const PGresult* r, std::string_view what);
  // The bytes of the largest row of `r` (0 for a result no larger than kPooledMessageBytes).
  static size_t LargestRow(const PGresult* r);

  std::string location_;
  std::string shown_;
  std::string application_name_;
  bool keepalive_;
  std::unique_ptr<Session> session_;
  std::string last_sqlstate_;
  // A Transaction is open on this connection: its session is kept to its end (and a session
  // that broke inside one is not replaced: the statements after it would run outside it).
  bool in_transaction_ = false;
  int listening_ = 0;  // Listen calls not yet undone by Unlisten
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
  static Result<Transaction> Begin(Connection& c, const char* sql, std::string_view what);
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
