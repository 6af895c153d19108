#include "state/sqlite/sqlite_db.h"

#include <cstdlib>
#include <utility>

namespace driftless::state::sqlite_detail {

Error FailMessage(sqlite3* db, int rc, const std::string& path, std::string_view what) {
  std::string reason = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  std::string message = "cannot ";
  message.append(what);
  message += " in state database " + path + ": " + reason;
  int primary = rc & 0xff;
  if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED) {
    message += " (another process kept the database busy for longer than the busy timeout)";
  } else if (primary == SQLITE_READONLY || primary == SQLITE_CANTOPEN || primary == SQLITE_PERM) {
    message += " (check the file's and its folder's permissions)";
  }
  return MakeError(std::move(message));
}

// --- Stmt ---

Stmt::~Stmt() {
  if (stmt_ != nullptr) {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
}

Stmt::Stmt(Stmt&& other) noexcept : stmt_(other.stmt_), path_(other.path_) {
  other.stmt_ = nullptr;
}

Stmt& Stmt::Bind(int index, int64_t value) {
  sqlite3_bind_int64(stmt_, index, value);
  return *this;
}

Stmt& Stmt::Bind(int index, std::string_view value) {
  // A zero-length blob of text still needs a non-null pointer, or SQLite binds NULL.
  sqlite3_bind_text64(stmt_, index, value.empty() ? "" : value.data(), value.size(),
                      SQLITE_TRANSIENT, SQLITE_UTF8);
  return *this;
}

Stmt& Stmt::BindView(int index, std::string_view value) {
  sqlite3_bind_text64(stmt_, index, value.empty() ? "" : value.data(), value.size(), SQLITE_STATIC,
                      SQLITE_UTF8);
  return *this;
}

Result<bool> Stmt::Step(std::string_view what) {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return FailMessage(sqlite3_db_handle(stmt_), rc, *path_, what);
}

Status Stmt::Run(std::string_view what) {
  while (true) {
    Result<bool> row = Step(what);
    if (!row.ok()) return row.error();
    if (!*row) {
      sqlite3_reset(stmt_);  // ready to be bound and run again
      return Status::Ok();
    }
  }
}

std::string_view Stmt::View(int column) const {
  const unsigned char* text = sqlite3_column_text(stmt_, column);
  if (text == nullptr) return {};
  // sqlite3_column_bytes must come after sqlite3_column_text (it may convert the value).
  int size = sqlite3_column_bytes(stmt_, column);
  return std::string_view(reinterpret_cast<const char*>(text), static_cast<size_t>(size));
}

// --- Database ---

Database::~Database() {
  for (auto& [sql, stmt] : cache_) sqlite3_finalize(stmt);
  sqlite3_close_v2(db_);
}

Result<std::unique_ptr<Database>> Database::Open(const std::string& path, int busy_timeout_ms) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(
      path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    Error error = FailMessage(db, rc, path, "open the file");
    sqlite3_close_v2(db);
    return error;
  }
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, busy_timeout_ms);
  return std::unique_ptr<Database>(new Database(db, path));
}

Result<Stmt> Database::Prepare(std::string_view sql) {
  auto it = cache_.find(sql);
  if (it != cache_.end()) {
    // Lending a statement that is still stepping would reset it under its first user: a bug in
    // this module, never a consequence of input.
    if (sqlite3_stmt_busy(it->second) != 0) std::abort();
    return Stmt(it->second, &path_);
  }
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                              SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
  if (rc != SQLITE_OK) {
    return FailMessage(db_, rc, path_, "prepare a query (" + std::string(sql.substr(0, 40)) + ")");
  }
  cache_.emplace(sql, stmt);
  return Stmt(stmt, &path_);
}

void Database::ReleaseStatements() {
  for (auto it = cache_.begin(); it != cache_.end();) {
    if (sqlite3_stmt_busy(it->second) != 0) {
      ++it;  // still stepping: kept (never the case between a watch's checks)
      continue;
    }
    sqlite3_finalize(it->second);
    it = cache_.erase(it);
  }
  std::unordered_map<std::string_view, sqlite3_stmt*>(cache_).swap(cache_);  // its buckets too
}

Status Database::Exec(const char* sql, std::string_view what) {
  int rc = sqlite3_exec(db_, sql, nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return FailMessage(db_, rc, path_, what);
  return Status::Ok();
}

Error Database::Fail(std::string_view what) const {
  return FailMessage(db_, sqlite3_extended_errcode(db_), path_, what);
}

// --- Transaction ---

namespace {

Status Begin(Database& db, std::string_view sql, std::string_view what) {
  Result<Stmt> stmt = db.Prepare(sql);
  if (!stmt.ok()) return stmt.error();
  return stmt->Run(what);
}

}  // namespace

Result<Transaction> Transaction::Write(Database& db, std::string_view what) {
  Status begun = Begin(db, "BEGIN IMMEDIATE", what);
  if (!begun.ok()) return begun.error();
  return Transaction(&db);
}

Result<Transaction> Transaction::Read(Database& db, std::string_view what) {
  Status begun = Begin(db, "BEGIN DEFERRED", what);
  if (!begun.ok()) return begun.error();
  return Transaction(&db);
}

Transaction::~Transaction() {
  if (db_ == nullptr || sqlite3_get_autocommit(db_->handle()) != 0) return;
  Result<Stmt> rollback = db_->Prepare("ROLLBACK");
  // A failed rollback leaves nothing to do: SQLite rolls back when the connection closes.
  if (rollback.ok()) (void)rollback->Run("roll back");
}

Status Transaction::Commit(std::string_view what) {
  Database* db = db_;
  db_ = nullptr;
  Result<Stmt> commit = db->Prepare("COMMIT");
  Status status = commit.ok() ? commit->Run(what) : Status(commit.error());
  if (!status.ok() && sqlite3_get_autocommit(db->handle()) == 0) {
    Result<Stmt> rollback = db->Prepare("ROLLBACK");
    if (rollback.ok()) (void)rollback->Run("roll back");
  }
  return status;
}

}  // namespace driftless::state::sqlite_detail
