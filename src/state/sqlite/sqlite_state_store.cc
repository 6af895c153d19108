#include "state/sqlite/sqlite_state_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <thread>
#include <unordered_map>
#include <utility>

#include "base/file_util.h"
#include "base/hash.h"
#include "base/strings.h"
#include "state/lock_text.h"
#include "state/sqlite/schema.h"
#include "state/sqlite/sqlite_db.h"
#include "state/sqlite/string_list.h"
#include "state/store_common.h"

namespace driftless::state {

using sqlite_detail::Database;
using sqlite_detail::Stmt;
using sqlite_detail::Transaction;

namespace {

// Every query lives here, once: the text is also the key of the prepared statement cache.

constexpr std::string_view kSelectEnvironment =
    "SELECT name, serial, salt, created_at FROM environments WHERE name = ?1";
constexpr std::string_view kSelectEnvironments =
    "SELECT name, serial, salt, created_at FROM environments ORDER BY name";
constexpr std::string_view kInsertEnvironment =
    "INSERT OR IGNORE INTO environments (name, serial, salt, created_at) VALUES (?1, 0, ?2, ?3)";
constexpr std::string_view kBumpSerial =
    "UPDATE environments SET serial = serial + 1 WHERE name = ?1 RETURNING serial";

// The columns FillResource reads, in its order.
#define DL_RESOURCE_COLUMNS                                                                   \
  "address, kind, name, target, attrs_json, spec_hash, live_digest, depends_on, \"commit\", " \
  "serial, updated_at"
constexpr std::string_view kSelectResources =
    "SELECT " DL_RESOURCE_COLUMNS " FROM resources WHERE env = ?1 ORDER BY address";
constexpr std::string_view kSelectDigests =
    "SELECT address, spec_hash, live_digest, live_stamp FROM resources WHERE env = ?1 "
    "ORDER BY address";
constexpr std::string_view kSelectDigest =
    "SELECT address, spec_hash, live_digest, live_stamp FROM resources WHERE env = ?1 AND "
    "address = ?2";
constexpr std::string_view kRecordStamp =
    "UPDATE resources SET live_stamp = ?4 WHERE env = ?1 AND address = ?2 AND live_digest = ?3 "
    "AND live_stamp != ?4";
constexpr std::string_view kCountResources = "SELECT count(*) FROM resources WHERE env = ?";
constexpr std::string_view kSelectResource =
    "SELECT " DL_RESOURCE_COLUMNS " FROM resources WHERE env = ?1 AND address = ?2";
#undef DL_RESOURCE_COLUMNS
// OR FAIL (here and in kUpdateChange): a failing statement need not undo its own rows, because
// the whole transaction is rolled back, so SQLite can skip the per-statement journal.
constexpr std::string_view kUpsertResource =
    "INSERT OR FAIL INTO resources (env, address, kind, name, target, attrs_json, spec_hash, "
    "live_digest, depends_on, \"commit\", serial, updated_at) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) "
    "ON CONFLICT (env, address) DO UPDATE SET kind = excluded.kind, name = excluded.name, "
    "target = excluded.target, attrs_json = excluded.attrs_json, "
    "spec_hash = excluded.spec_hash, live_digest = excluded.live_digest, "
    "depends_on = excluded.depends_on, \"commit\" = excluded.\"commit\", "
    "serial = excluded.serial, updated_at = excluded.updated_at, live_stamp = ''";
constexpr std::string_view kDeleteResource =
    "DELETE FROM resources WHERE env = ?1 AND address = ?2";
constexpr std::string_view kResourceExists =
    "SELECT 1 FROM resources WHERE env = ?1 AND address = ?2";
constexpr std::string_view kRenameResource =
    "UPDATE resources SET address = ?3, kind = ?4, name = ?5, serial = ?6, updated_at = ?7 "
    "WHERE env = ?1 AND address = ?2";
constexpr std::string_view kSelectDependents =
    "SELECT address, depends_on FROM resources WHERE env = ?1 AND instr(depends_on, ?2) > 0";
constexpr std::string_view kUpdateDependsOn =
    "UPDATE resources SET depends_on = ?3 WHERE env = ?1 AND address = ?2";

constexpr std::string_view kSelectLock =
    "SELECT token, user, host, pid, operation, acquired_at, expires_at FROM locks "
    "WHERE env = ?1";
constexpr std::string_view kSelectLocks =
    "SELECT token, user, host, pid, operation, acquired_at, expires_at, env FROM locks";
constexpr std::string_view kInsertLock =
    "INSERT INTO locks (env, token, user, host, pid, operation, acquired_at, expires_at) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
constexpr std::string_view kDeleteLock = "DELETE FROM locks WHERE env = ?1 AND token = ?2";
constexpr std::string_view kRenewLock =
    "UPDATE locks SET expires_at = ?3 WHERE env = ?1 AND token = ?2";
constexpr std::string_view kNextToken =
    "INSERT INTO lock_tokens (env, last_token) VALUES (?1, 1) "
    "ON CONFLICT (env) DO UPDATE SET last_token = last_token + 1 RETURNING last_token";

constexpr std::string_view kInterruptAll =
    "UPDATE applies SET status = 'interrupted', finished_at = ?2 "
    "WHERE env = ?1 AND status = 'running'";
constexpr std::string_view kInterruptToken =
    "UPDATE applies SET status = 'interrupted', finished_at = ?3 "
    "WHERE env = ?1 AND lock_token = ?2 AND status = 'running'";

constexpr std::string_view kInsertApply =
    "INSERT INTO applies (env, kind, user, host, pid, \"commit\", commit_subject, "
    "commit_author, decl_hash, started_at, finished_at, status, summary, plan_json, lock_token) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 0, 'running', ?11, ?12, ?13)";
constexpr std::string_view kInsertChange =
    "INSERT INTO changes (apply_id, seq, address, action, status, error, diff) "
    "VALUES (?1, ?2, ?3, ?4, 'pending', '', ?5)";
constexpr std::string_view kAppendChange =
    "INSERT INTO changes (apply_id, seq, address, action, status, error, diff) "
    "VALUES (?1, (SELECT coalesce(max(seq), -1) + 1 FROM changes WHERE apply_id = ?1), ?2, '', "
    "?3, ?4, '')";
constexpr std::string_view kUpdateChange =
    "UPDATE OR FAIL changes SET status = ?3, error = ?4 WHERE apply_id = ?1 AND address = ?2";
constexpr std::string_view kSkipPending =
    "UPDATE changes SET status = 'skipped', error = ?2 WHERE apply_id = ?1 AND status = 'pending'";
constexpr std::string_view kSelectApplyState = "SELECT env, status FROM applies WHERE id = ?1";
constexpr std::string_view kFinishApply =
    "UPDATE applies SET status = ?2, summary = ?3, finished_at = ?4 WHERE id = ?1";

#define DL_APPLY_COLUMNS                                                                   \
  "id, env, kind, user, host, pid, \"commit\", commit_subject, commit_author, decl_hash, " \
  "started_at, finished_at, status, summary, plan_json"
constexpr std::string_view kSelectApplies =
    "SELECT " DL_APPLY_COLUMNS " FROM applies ORDER BY id DESC LIMIT ?1";
constexpr std::string_view kSelectAppliesOfEnv =
    "SELECT " DL_APPLY_COLUMNS " FROM applies WHERE env = ?1 ORDER BY id DESC LIMIT ?2";
constexpr std::string_view kSelectApply = "SELECT " DL_APPLY_COLUMNS " FROM applies WHERE id = ?1";
// Each environment's newest successful apply of a commit (one index probe per environment).
constexpr std::string_view kAppliedCommits =
    "SELECT name, (SELECT \"commit\" FROM applies WHERE env = name AND kind = 'apply' AND "
    "status = 'succeeded' AND \"commit\" <> '' ORDER BY id DESC LIMIT 1) AS c FROM "
    "environments WHERE c IS NOT NULL";
#undef DL_APPLY_COLUMNS
constexpr std::string_view kSelectChanges =
    "SELECT address, action, status, error, diff FROM changes WHERE apply_id = ?1 ORDER BY seq";
// Pending changes of unfinished applies, unless a later apply of the same environment settled
// the same address. The caller drops the applies of live lock holders.
constexpr std::string_view kSelectPending =
    "SELECT c.address, c.action, c.status, c.error, c.diff, a.env, a.lock_token "
    // CROSS JOIN: SQLite then loops over the few running or interrupted applies and reaches
    // their changes by index, instead of scanning every change for 'pending' (100,000 rows
    // after a large apply, at each check of a watch).
    "FROM applies a CROSS JOIN changes c ON c.apply_id = a.id "
    "WHERE (?1 = '' OR a.env = ?1) AND a.status IN ('running', 'interrupted') "
    "AND c.status = 'pending' AND NOT EXISTS ("
    "  SELECT 1 FROM applies a2 JOIN changes c2 ON c2.apply_id = a2.id "
    "  WHERE a2.env = a.env AND a2.id > a.id AND c2.address = c.address "
    "  AND c2.status IN ('done', 'failed')) "
    "ORDER BY a.id DESC, c.seq";

Environment ReadEnvironment(const Stmt& st) {
  Environment e;
  e.name = st.Text(0);
  e.serial = st.Int(1);
  e.salt = st.Text(2);
  e.created_at = st.Int(3);
  return e;
}

// Reads the columns of kSelectDigests into *d.
void ReadDigest(const Stmt& st, ResourceDigest* d) {
  d->address.assign(st.View(0));
  d->spec_hash.assign(st.View(1));
  d->live_digest.assign(st.View(2));
  d->live_stamp.assign(st.View(3));
}

// Reads the resource columns of the current row into *r. False when depends_on is malformed.
bool FillResource(const Stmt& st, ResourceState* r) {
  r->address.assign(st.View(0));
  r->kind.assign(st.View(1));
  r->name.assign(st.View(2));
  r->target.assign(st.View(3));
  r->attrs_json.assign(st.View(4));
  r->spec_hash.assign(st.View(5));
  r->live_digest.assign(st.View(6));
  std::string_view deps = st.View(7);
  if (deps == "[]") {
    r->depends_on.clear();
  } else if (!sqlite_detail::DecodeStringList(deps, &r->depends_on)) {
    return false;
  }
  r->commit.assign(st.View(8));
  r->serial = st.Int(9);
  r->updated_at = st.Int(10);
  return true;
}

Lock ReadLockRow(const Stmt& st, const std::string& env) {
  Lock lock;
  lock.environment = env;
  lock.token = st.Int(0);
  lock.holder.user = st.Text(1);
  lock.holder.host = st.Text(2);
  lock.holder.pid = st.Int(3);
  lock.operation = st.Text(4);
  lock.acquired_at = st.Int(5);
  lock.expires_at = st.Int(6);
  return lock;
}

ApplyRecord ReadApplyRow(const Stmt& st) {
  ApplyRecord a;
  a.id = st.Int(0);
  a.environment = st.Text(1);
  a.kind = st.Text(2);
  a.user = st.Text(3);
  a.host = st.Text(4);
  a.pid = st.Int(5);
  a.commit = st.Text(6);
  a.commit_subject = st.Text(7);
  a.commit_author = st.Text(8);
  a.decl_hash = st.Text(9);
  a.started_at = st.Int(10);
  a.finished_at = st.Int(11);
  a.status = st.Text(12);
  a.summary = st.Text(13);
  a.plan_json = st.Text(14);
  return a;
}

ChangeRecord ReadChangeRow(const Stmt& st) {
  ChangeRecord c;
  c.address = st.Text(0);
  c.action = st.Text(1);
  c.status = st.Text(2);
  c.error = st.Text(3);
  c.diff = st.Text(4);
  return c;
}

// The rows of `addresses` (sorted, each once; missing ones skipped) by `sql` (env, address),
// each read by `read` (false: the row is malformed, `malformed` says how), in one read
// transaction.
template <typename Row, typename Read>
Result<std::vector<Row>> RowsByAddress(sqlite_detail::Database& db, const std::string& env,
                                       const std::vector<std::string>& addresses,
                                       std::string_view sql, Read read, const char* malformed) {
  const std::vector<std::string_view> sorted = SortedUnique(addresses);
  const std::string what = "read resources of environment " + env;
  Result<Transaction> txn = Transaction::Read(db, what);
  if (!txn.ok()) return txn.error();
  std::vector<Row> out;
  out.reserve(sorted.size());
  for (std::string_view address : sorted) {
    Result<Stmt> st = db.Prepare(sql);
    if (!st.ok()) return st.error();
    st->Bind(1, env).BindView(2, address);
    Result<bool> row = st->Step(what);
    if (!row.ok()) return row.error();
    if (!*row) continue;
    if (!read(*st, &out.emplace_back())) {
      return MakeError("resource " + std::string(address) + " of environment " + env + " has " +
                       malformed + " in state database " + db.path());
    }
  }
  Status committed = txn->Commit(what);
  if (!committed.ok()) return committed.error();
  return out;
}
}  // namespace

SqliteStateStore::SqliteStateStore(std::unique_ptr<Database> db, std::string host)
    : db_(std::move(db)), host_(std::move(host)) {
  std::error_code ec;
  std::filesystem::path canonical = std::filesystem::weakly_canonical(db_->path(), ec);
  channel_key_ = ec ? db_->path() : canonical.string();
}

SqliteStateStore::~SqliteStateStore() = default;

const std::string& SqliteStateStore::path() const { return db_->path(); }

Result<std::unique_ptr<SqliteStateStore>> SqliteStateStore::Open(const std::string& path) {
  if (path.empty()) return MakeError("the state database path is empty");
  bool in_memory = path == ":memory:";
  if (!in_memory) {
    size_t slash = path.rfind('/');
    if (slash != std::string::npos && slash > 0) {
      Status made = MakeDirs(path.substr(0, slash));
      if (!made.ok()) {
        return MakeError("cannot create the folder of state database " + path + ": " +
                         made.error().message);
      }
    }
    // Created here rather than by SQLite so that it is private (it holds the salts); the WAL
    // and shared-memory files SQLite adds beside it copy its permissions. Only when it does not
    // exist: closing a descriptor of a file drops every POSIX lock the process holds on it, and
    // so the locks of this process's connections already open on it (another process closing
    // its connection would then checkpoint and delete the write-ahead log they still write to).
    int fd = open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0) {
      close(fd);
    } else if (errno != EEXIST) {
      return MakeError("cannot open state database " + path + ": " + ErrnoMessage());
    }
  }
  Result<std::unique_ptr<Database>> db = Database::Open(path, kBusyTimeoutMs);
  if (!db.ok()) return db.error();
  Database& d = **db;
  {
    // Switching a new file to write-ahead logging takes an exclusive lock. When several
    // processes open the same new file at once, SQLite answers BUSY at once instead of waiting
    // the busy timeout (a reader wanting to write while another waits would deadlock): retry,
    // within the busy timeout.
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(kBusyTimeoutMs);
    std::string got;
    while (true) {
      Result<Stmt> mode = d.Prepare("PRAGMA journal_mode = WAL");
      if (!mode.ok()) return mode.error();
      Result<bool> row = mode->Step("switch to write-ahead logging");
      if (row.ok()) {
        got = *row ? mode->Text(0) : "";
        break;
      }
      const int primary = sqlite3_errcode(d.handle()) & 0xff;
      if ((primary != SQLITE_BUSY && primary != SQLITE_LOCKED) ||
          std::chrono::steady_clock::now() >= until) {
        return row.error();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (got != "wal" && !(in_memory && got == "memory")) {
      return MakeError("cannot switch state database " + path +
                       " to write-ahead logging (journal mode stays \"" + got +
                       "\"); put it on a local file system");
    }
  }
  // cache_size: 512 KiB instead of SQLite's 2 MiB. A plan scans the resources once (a cache
  // does not help a scan, it only grows) and reads a few rows by key; a batch of results
  // touches fewer pages than that. The default added up to 2 MB to every run's peak memory.
  Status pragmas =
      d.Exec("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA cache_size = -512;",
             "configure the connection");
  if (!pragmas.ok()) return pragmas.error();
  Status migrated = sqlite_detail::Migrate(d);
  if (!migrated.ok()) return migrated.error();
  return std::unique_ptr<SqliteStateStore>(
      new SqliteStateStore(std::move(*db), CurrentIdentity().host));
}

// --- environments ---

Result<std::optional<Environment>> SqliteStateStore::GetEnvironment(const std::string& name) {
  Result<Stmt> st = db_->Prepare(kSelectEnvironment);
  if (!st.ok()) return st.error();
  st->Bind(1, name);
  Result<bool> row = st->Step("read environment " + name);
  if (!row.ok()) return row.error();
  if (!*row) return std::optional<Environment>();
  return std::optional<Environment>(ReadEnvironment(*st));
}

Result<Environment> SqliteStateStore::GetOrCreateEnvironment(const std::string& name) {
  if (name.empty()) return MakeError("the environment name is empty");
  Result<std::optional<Environment>> found = GetEnvironment(name);
  if (!found.ok()) return found.error();
  if (found->has_value()) return std::move(**found);
  {
    Result<Stmt> st = db_->Prepare(kInsertEnvironment);
    if (!st.ok()) return st.error();
    // INSERT OR IGNORE: when another process creates it first, its salt wins.
    st->Bind(1, name).Bind(2, RandomHex(32)).Bind(3, NowUnix());
    Status run = st->Run("create environment " + name);
    if (!run.ok()) return run.error();
  }
  found = GetEnvironment(name);
  if (!found.ok()) return found.error();
  if (!found->has_value()) {
    return MakeError("environment " + name + " vanished from state database " + path() +
                     " right after it was created");
  }
  return std::move(**found);
}

Result<std::vector<Environment>> SqliteStateStore::ListEnvironments() {
  Result<Stmt> st = db_->Prepare(kSelectEnvironments);
  if (!st.ok()) return st.error();
  std::vector<Environment> out;
  while (true) {
    Result<bool> row = st->Step("list environments");
    if (!row.ok()) return row.error();
    if (!*row) break;
    out.push_back(ReadEnvironment(*st));
  }
  return out;
}

// --- resources ---

Result<size_t> SqliteStateStore::CountResources(const std::string& env, const std::string& what) {
  Result<Stmt> count = db_->Prepare(kCountResources);
  if (!count.ok()) return count.error();
  count->Bind(1, env);
  Result<bool> row = count->Step(what);
  if (!row.ok()) return row.error();
  return *row ? static_cast<size_t>(count->Int(0)) : size_t{0};
}

Result<std::vector<ResourceState>> SqliteStateStore::ListResources(const std::string& env) {
  const std::string what = "list the resources of environment " + env;
  std::vector<ResourceState> out;
  // Sized exactly: growing a vector of 100,000 rows would briefly hold two copies.
  Result<size_t> rows = CountResources(env, what);
  if (!rows.ok()) return rows.error();
  out.reserve(*rows);
  Result<Stmt> st = db_->Prepare(kSelectResources);
  if (!st.ok()) return st.error();
  st->Bind(1, env);
  while (true) {
    Result<bool> row = st->Step(what);
    if (!row.ok()) return row.error();
    if (!*row) break;
    ResourceState& r = out.emplace_back();
    if (!FillResource(*st, &r)) {
      return MakeError("resource " + r.address + " of environment " + env +
                       " has a malformed depends_on in state database " + path());
    }
  }
  return out;
}

Result<std::optional<ResourceState>> SqliteStateStore::GetResource(const std::string& env,
                                                                   const std::string& address) {
  Result<Stmt> st = db_->Prepare(kSelectResource);
  if (!st.ok()) return st.error();
  st->Bind(1, env).Bind(2, address);
  Result<bool> row = st->Step("read resource " + address + " of environment " + env);
  if (!row.ok()) return row.error();
  if (!*row) return std::optional<ResourceState>();
  ResourceState r;
  if (!FillResource(*st, &r)) {
    return MakeError("resource " + address + " of environment " + env +
                     " has a malformed depends_on in state database " + path());
  }
  return std::optional<ResourceState>(std::move(r));
}

Result<std::vector<ResourceDigest>> SqliteStateStore::ListResourceDigests(const std::string& env) {
  const std::string what = "list the resources of environment " + env;
  Result<Transaction> txn = Transaction::Read(*db_, what);
  if (!txn.ok()) return txn.error();
  std::vector<ResourceDigest> out;
  // Sized exactly: growing a vector of 100,000 rows would briefly hold two copies.
  Result<size_t> rows = CountResources(env, what);
  if (!rows.ok()) return rows.error();
  out.reserve(*rows);
  {
    Result<Stmt> st = db_->Prepare(kSelectDigests);
    if (!st.ok()) return st.error();
    st->Bind(1, env);
    while (true) {
      Result<bool> row = st->Step(what);
      if (!row.ok()) return row.error();
      if (!*row) break;
      ReadDigest(*st, &out.emplace_back());
    }
  }
  Status committed = txn->Commit(what);
  if (!committed.ok()) return committed.error();
  return out;
}

Result<std::vector<ResourceDigest>> SqliteStateStore::GetResourceDigests(
    const std::string& env, const std::vector<std::string>& addresses) {
  return RowsByAddress<ResourceDigest>(
      *db_, env, addresses, kSelectDigest,
      [](const Stmt& st, ResourceDigest* d) {
        ReadDigest(st, d);
        return true;
      },
      "");
}

Status SqliteStateStore::RecordLiveStamps(const std::string& env,
                                          const std::vector<LiveStamp>& stamps) {
  if (stamps.empty()) return Status::Ok();
  const std::string what = "record live stamps of environment " + env;
  // A stamp only saves a later read: rather than wait for another writer (an apply committing
  // its outcomes), give up after a moment.
  sqlite3_busy_timeout(db_->handle(), kStampBusyTimeoutMs);
  struct Restore {
    sqlite3* db;
    ~Restore() { sqlite3_busy_timeout(db, kBusyTimeoutMs); }
  } restore{db_->handle()};
  Result<Transaction> txn = Transaction::Write(*db_, what);
  if (!txn.ok()) return txn.error();
  for (const LiveStamp& s : stamps) {
    Result<Stmt> st = db_->Prepare(kRecordStamp);
    if (!st.ok()) return st.error();
    const std::string digest = s.live_digest.str();
    st->Bind(1, env).BindView(2, s.address).BindView(3, digest).BindView(4, s.stamp);
    Status run = st->Run(what);
    if (!run.ok()) return run;
  }
  return txn->Commit(what);
}

Result<std::vector<ResourceState>> SqliteStateStore::GetResources(
    const std::string& env, const std::vector<std::string>& addresses) {
  return RowsByAddress<ResourceState>(*db_, env, addresses, kSelectResource, FillResource,
                                      "a malformed depends_on");
}

// --- locks ---

Result<std::optional<Lock>> SqliteStateStore::ReadLock(const std::string& env) {
  Result<Stmt> st = db_->Prepare(kSelectLock);
  if (!st.ok()) return st.error();
  st->Bind(1, env);
  Result<bool> row = st->Step("read the lock of environment " + env);
  if (!row.ok()) return row.error();
  if (!*row) return std::optional<Lock>();
  return std::optional<Lock>(ReadLockRow(*st, env));
}

Result<std::optional<Lock>> SqliteStateStore::GetLock(const std::string& env) {
  return ReadLock(env);
}

Status SqliteStateStore::CheckFence(const Lock& lock) {
  Result<std::optional<Lock>> current = ReadLock(lock.environment);
  if (!current.ok()) return current.error();
  if (current->has_value() && (*current)->token == lock.token) return Status::Ok();
  return MakeError(LostLockMessage(lock, current->has_value() ? &**current : nullptr));
}

Status SqliteStateStore::InterruptApplies(const std::string& env, int64_t token, int64_t now) {
  Result<Stmt> st = db_->Prepare(token > 0 ? kInterruptToken : kInterruptAll);
  if (!st.ok()) return st.error();
  st->Bind(1, env);
  if (token > 0) {
    st->Bind(2, token).Bind(3, now);
  } else {
    st->Bind(2, now);
  }
  return st->Run("mark the unfinished applies of environment " + env + " interrupted");
}

Result<Lock> SqliteStateStore::AcquireLock(const std::string& env, const Identity& who,
                                           const std::string& operation, double timeout_seconds,
                                           int64_t lease_seconds) {
  if (Status ok = CheckLockRequest(env, &timeout_seconds, &lease_seconds); !ok.ok()) {
    return ok.error();
  }
  const int64_t start_ms = NowUnixMillis();
  const int64_t deadline_ms = start_ms + static_cast<int64_t>(timeout_seconds * 1000.0);
  const std::string what = "lock environment " + env;
  bool told_waiting = false;
  while (true) {
    std::optional<Lock> holder;
    {
      Result<Transaction> txn = Transaction::Write(*db_, what);
      if (!txn.ok()) return txn.error();
      Result<std::optional<Lock>> current = ReadLock(env);
      if (!current.ok()) return current.error();
      int64_t now = NowUnix();
      if (current->has_value() && !IsStale(**current, who.host, now)) {
        holder = std::move(*current);  // live: the transaction rolls back, then we wait or fail
      } else {
        if (current->has_value()) {
          Result<Stmt> del = db_->Prepare(kDeleteLock);
          if (!del.ok()) return del.error();
          del->Bind(1, env).Bind(2, (*current)->token);
          Status run = del->Run("remove the stale lock of environment " + env);
          if (!run.ok()) return run.error();
        }
        // Nobody holds the lock now, so no apply of the environment can still be running.
        Status interrupted = InterruptApplies(env, 0, now);
        if (!interrupted.ok()) return interrupted.error();
        Lock lock;
        lock.environment = env;
        lock.holder = who;
        lock.operation = operation;
        lock.acquired_at = now;
        lock.expires_at = now + lease_seconds;
        {
          Result<Stmt> next = db_->Prepare(kNextToken);
          if (!next.ok()) return next.error();
          next->Bind(1, env);
          Result<bool> row = next->Step("issue a lock token for environment " + env);
          if (!row.ok()) return row.error();
          if (!*row) return db_->Fail("issue a lock token for environment " + env);
          lock.token = next->Int(0);
        }
        {
          Result<Stmt> ins = db_->Prepare(kInsertLock);
          if (!ins.ok()) return ins.error();
          ins->Bind(1, env).Bind(2, lock.token).Bind(3, who.user).Bind(4, who.host);
          ins->Bind(5, who.pid).Bind(6, operation).Bind(7, lock.acquired_at);
          ins->Bind(8, lock.expires_at);
          Status run = ins->Run(what);
          if (!run.ok()) return run.error();
        }
        Status committed = txn->Commit(what);
        if (!committed.ok()) return committed.error();
        return lock;
      }
    }
    int64_t now_ms = NowUnixMillis();
    if (now_ms >= deadline_ms) {
      return MakeError(LockedMessage(*holder, static_cast<double>(now_ms - start_ms) / 1000.0,
                                     timeout_seconds > 0));
    }
    if (!told_waiting) {
      NotifyLockWait(*holder, timeout_seconds);
      told_waiting = true;
    }
    int64_t pause = std::min<int64_t>(kLockPollMs, deadline_ms - now_ms);
    std::this_thread::sleep_for(std::chrono::milliseconds(pause));
  }
}

Status SqliteStateStore::RenewLock(Lock& lock, int64_t lease_seconds) {
  const std::string what = "renew the lock of environment " + lock.environment;
  Result<Transaction> txn = Transaction::Write(*db_, what);
  if (!txn.ok()) return txn.error();
  Status fence = CheckFence(lock);
  if (!fence.ok()) return fence;
  int64_t expires_at = NowUnix() + ClampLease(lease_seconds);
  {
    Result<Stmt> st = db_->Prepare(kRenewLock);
    if (!st.ok()) return st.error();
    st->Bind(1, lock.environment).Bind(2, lock.token).Bind(3, expires_at);
    Status run = st->Run(what);
    if (!run.ok()) return run;
  }
  Status committed = txn->Commit(what);
  if (!committed.ok()) return committed;
  lock.expires_at = expires_at;
  return Status::Ok();
}

Status SqliteStateStore::ReleaseLock(const Lock& lock) {
  const std::string what = "release the lock of environment " + lock.environment;
  Result<Transaction> txn = Transaction::Write(*db_, what);
  if (!txn.ok()) return txn.error();
  {
    Result<Stmt> st = db_->Prepare(kDeleteLock);
    if (!st.ok()) return st.error();
    st->Bind(1, lock.environment).Bind(2, lock.token);
    Status run = st->Run(what);
    if (!run.ok()) return run;
  }
  if (db_->Changes() == 0) return Status::Ok();  // not ours any more: nothing to release
  Status interrupted = InterruptApplies(lock.environment, lock.token, NowUnix());
  if (!interrupted.ok()) return interrupted;
  return txn->Commit(what);
}

// --- applies ---

Result<int64_t> SqliteStateStore::BumpSerial(const std::string& env, std::string_view what) {
  Result<Stmt> st = db_->Prepare(kBumpSerial);
  if (!st.ok()) return st.error();
  st->Bind(1, env);
  Result<bool> row = st->Step(what);
  if (!row.ok()) return row.error();
  if (!*row) {
    return MakeError("cannot " + std::string(what) + ": environment " + env +
                     " does not exist in state database " + path());
  }
  return st->Int(0);
}

namespace {

// Inside a transaction: fails unless apply `id` exists, belongs to `env` and is running.
Status CheckApplyRunning(Database& db, int64_t id, const std::string& env) {
  Result<Stmt> st = db.Prepare(kSelectApplyState);
  if (!st.ok()) return st.error();
  st->Bind(1, id);
  const std::string name = "apply " + std::to_string(id);
  Result<bool> row = st->Step("read " + name);
  if (!row.ok()) return row.error();
  if (!*row) return MakeError("there is no " + name + " in state database " + db.path());
  return CheckApplyState(id, env, st->View(0), st->View(1));
}

}  // namespace

Result<Transaction> SqliteStateStore::WriteToApply(const Lock& lock, int64_t apply_id,
                                                   const std::string& what) {
  Result<Transaction> txn = Transaction::Write(*db_, what);
  if (!txn.ok()) return txn.error();
  if (Status fence = CheckFence(lock); !fence.ok()) return fence.error();
  if (Status running = CheckApplyRunning(*db_, apply_id, lock.environment); !running.ok()) {
    return running.error();
  }
  return txn;
}

Result<int64_t> SqliteStateStore::BeginApply(const Lock& lock, const ApplyRecord& apply,
                                             const std::vector<ChangeRecord>& intents) {
  const std::string& env = lock.environment;
  if (Status ok = CheckApplyEnvironment(lock, apply); !ok.ok()) return ok.error();
  const std::string what = "record the start of an apply of environment " + env;
  Result<Transaction> txn = Transaction::Write(*db_, what);
  if (!txn.ok()) return txn.error();
  Status fence = CheckFence(lock);
  if (!fence.ok()) return fence.error();
  {
    Result<Stmt> st = db_->Prepare(kSelectEnvironment);
    if (!st.ok()) return st.error();
    st->Bind(1, env);
    Result<bool> row = st->Step(what);
    if (!row.ok()) return row.error();
    if (!*row) {
      return MakeError("cannot " + what + ": the environment does not exist in state database " +
                       path());
    }
  }
  int64_t id = 0;
  {
    Result<Stmt> st = db_->Prepare(kInsertApply);
    if (!st.ok()) return st.error();
    st->Bind(1, env).Bind(2, apply.kind.empty() ? "apply" : apply.kind);
    st->Bind(3, apply.user.empty() ? lock.holder.user : apply.user);
    st->Bind(4, apply.host.empty() ? lock.holder.host : apply.host);
    st->Bind(5, apply.pid != 0 ? apply.pid : lock.holder.pid);
    st->Bind(6, apply.commit).Bind(7, apply.commit_subject).Bind(8, apply.commit_author);
    st->Bind(9, apply.decl_hash).Bind(10, apply.started_at != 0 ? apply.started_at : NowUnix());
    // The plan's text can be megabytes: bound without a copy (SQLite makes one for the row).
    st->Bind(11, apply.summary).BindView(12, apply.plan_json).Bind(13, lock.token);
    Status run = st->Run(what);
    if (!run.ok()) return run.error();
    id = db_->LastInsertId();
  }
  if (Status s = InsertIntents(id, 0, intents, what); !s.ok()) return s.error();
  Status committed = txn->Commit(what);
  if (!committed.ok()) return committed.error();
  return id;
}

Status SqliteStateStore::AddIntents(const Lock& lock, int64_t apply_id, size_t first,
                                    const std::vector<ChangeRecord>& intents) {
  const std::string what = "record the intents of apply " + std::to_string(apply_id) +
                           " of environment " + lock.environment;
  Result<Transaction> txn = WriteToApply(lock, apply_id, what);
  if (!txn.ok()) return txn.error();
  if (Status s = InsertIntents(apply_id, first, intents, what); !s.ok()) return s;
  return txn->Commit(what);
}

Status SqliteStateStore::InsertIntents(int64_t apply_id, size_t first,
                                       const std::vector<ChangeRecord>& intents,
                                       const std::string& what) {
  if (intents.empty()) return Status::Ok();
  Result<Stmt> st = db_->Prepare(kInsertChange);
  if (!st.ok()) return st.error();
  for (size_t i = 0; i < intents.size(); ++i) {
    const ChangeRecord& c = intents[i];
    st->Bind(1, apply_id).Bind(2, static_cast<int64_t>(first + i)).BindView(3, c.address);
    st->BindView(4, c.action).BindView(5, c.diff);
    Status run = st->Run(what);
    if (!run.ok()) return run;
  }
  return Status::Ok();
}

Status SqliteStateStore::RecordResults(const Lock& lock, int64_t apply_id,
                                       const std::vector<ChangeResult>& results) {
  const std::string& env = lock.environment;
  if (Status ok = CheckResultStatuses(apply_id, results); !ok.ok()) return ok;
  const std::string what =
      "record results of apply " + std::to_string(apply_id) + " of environment " + env;
  Result<Transaction> txn = WriteToApply(lock, apply_id, what);
  if (!txn.ok()) return txn.error();
  if (results.empty()) return Status::Ok();
  Result<int64_t> serial = BumpSerial(env, what);
  if (!serial.ok()) return serial.error();
  const int64_t now = NowUnix();

  Result<Stmt> update_change = db_->Prepare(kUpdateChange);
  if (!update_change.ok()) return update_change.error();
  Result<Stmt> append_change = db_->Prepare(kAppendChange);
  if (!append_change.ok()) return append_change.error();
  Result<Stmt> upsert = db_->Prepare(kUpsertResource);
  if (!upsert.ok()) return upsert.error();
  Result<Stmt> remove = db_->Prepare(kDeleteResource);
  if (!remove.ok()) return remove.error();

  // Text is bound without copies: everything bound lives until the statement has run.
  std::string kind, name, deps_json;
  for (const ChangeResult& r : results) {
    update_change->Bind(1, apply_id).BindView(2, r.address).BindView(3, r.status);
    update_change->BindView(4, r.error);
    Status run = update_change->Run(what);
    if (!run.ok()) return run;
    if (db_->Changes() == 0) {
      append_change->Bind(1, apply_id).BindView(2, r.address).BindView(3, r.status);
      append_change->BindView(4, r.error);
      run = append_change->Run(what);
      if (!run.ok()) return run;
    }
    if (r.status == "done" && r.remove) {
      remove->BindView(1, env).BindView(2, r.address);
      run = remove->Run(what);
      if (!run.ok()) return run;
    } else if (r.new_state.has_value() && r.status != "skipped") {
      const ResourceState& s = *r.new_state;
      const std::string& address = s.address.empty() ? r.address : s.address;
      kind = s.kind;
      name = s.name;
      KindAndNameFromAddress(address, &kind, &name);
      deps_json = sqlite_detail::EncodeStringList(s.depends_on);
      upsert->BindView(1, env).BindView(2, address).BindView(3, kind).BindView(4, name);
      upsert->BindView(5, s.target);
      upsert->BindView(6, s.attrs_json.empty() ? std::string_view("{}") : s.attrs_json);
      upsert->BindView(7, s.spec_hash).BindView(8, s.live_digest).BindView(9, deps_json);
      upsert->BindView(10, s.commit).Bind(11, *serial).Bind(12, now);
      run = upsert->Run(what);
      if (!run.ok()) return run;
    }
  }
  return txn->Commit(what);
}

Status SqliteStateStore::FinishApply(const Lock& lock, int64_t apply_id, const std::string& status,
                                     const std::string& summary) {
  const std::string& env = lock.environment;
  if (Status ok = CheckFinishStatus(env, apply_id, status); !ok.ok()) return ok;
  const std::string what = "finish apply " + std::to_string(apply_id) + " of environment " + env;
  Result<Transaction> txn = WriteToApply(lock, apply_id, what);
  if (!txn.ok()) return txn.error();
  {
    Result<Stmt> st = db_->Prepare(kFinishApply);
    if (!st.ok()) return st.error();
    st->Bind(1, apply_id).Bind(2, status).Bind(3, summary).Bind(4, NowUnix());
    Status run = st->Run(what);
    if (!run.ok()) return run;
  }
  if (status != "interrupted") {
    Result<Stmt> st = db_->Prepare(kSkipPending);
    if (!st.ok()) return st.error();
    st->Bind(1, apply_id).Bind(2, kNotAttempted);
    Status run = st->Run(what);
    if (!run.ok()) return run;
  }
  return txn->Commit(what);
}

Result<std::vector<ApplyRecord>> SqliteStateStore::ListApplies(const std::string& env, int limit) {
  Result<Stmt> st = db_->Prepare(env.empty() ? kSelectApplies : kSelectAppliesOfEnv);
  if (!st.ok()) return st.error();
  int64_t sql_limit = limit > 0 ? limit : -1;
  if (env.empty()) {
    st->Bind(1, sql_limit);
  } else {
    st->Bind(1, env).Bind(2, sql_limit);
  }
  std::vector<ApplyRecord> out;
  const std::string what = ListAppliesWhat(env);
  while (true) {
    Result<bool> row = st->Step(what);
    if (!row.ok()) return row.error();
    if (!*row) break;
    out.push_back(ReadApplyRow(*st));
  }
  return out;
}

Result<std::map<std::string, std::string>> SqliteStateStore::AppliedCommits() {
  const std::string what = "read the commits applied";
  Result<Stmt> st = db_->Prepare(kAppliedCommits);
  if (!st.ok()) return st.error();
  std::map<std::string, std::string> out;
  while (true) {
    Result<bool> row = st->Step(what);
    if (!row.ok()) return row.error();
    if (!*row) break;
    out[st->Text(0)] = st->Text(1);
  }
  return out;
}

Result<std::optional<ApplyRecord>> SqliteStateStore::GetApply(int64_t id) {
  const std::string what = "read apply " + std::to_string(id);
  Result<Transaction> txn = Transaction::Read(*db_, what);
  if (!txn.ok()) return txn.error();
  ApplyRecord apply;
  {
    Result<Stmt> st = db_->Prepare(kSelectApply);
    if (!st.ok()) return st.error();
    st->Bind(1, id);
    Result<bool> row = st->Step(what);
    if (!row.ok()) return row.error();
    if (!*row) return std::optional<ApplyRecord>();
    apply = ReadApplyRow(*st);
  }
  {
    Result<Stmt> st = db_->Prepare(kSelectChanges);
    if (!st.ok()) return st.error();
    st->Bind(1, id);
    while (true) {
      Result<bool> row = st->Step(what);
      if (!row.ok()) return row.error();
      if (!*row) break;
      apply.changes.push_back(ReadChangeRow(*st));
    }
  }
  Status committed = txn->Commit(what);
  if (!committed.ok()) return committed.error();
  return std::optional<ApplyRecord>(std::move(apply));
}

Result<std::vector<ChangeRecord>> SqliteStateStore::PendingChanges(const std::string& env) {
  const std::string what = PendingChangesWhat(env);
  Result<Transaction> txn = Transaction::Read(*db_, what);
  if (!txn.ok()) return txn.error();
  // The token of each environment's live lock holder: its apply is running, not in doubt.
  std::unordered_map<std::string, int64_t> live_tokens;
  {
    Result<Stmt> st = db_->Prepare(kSelectLocks);
    if (!st.ok()) return st.error();
    int64_t now = NowUnix();
    while (true) {
      Result<bool> row = st->Step(what);
      if (!row.ok()) return row.error();
      if (!*row) break;
      Lock lock = ReadLockRow(*st, st->Text(7));
      if (!IsStale(lock, host_, now)) live_tokens[lock.environment] = lock.token;
    }
  }
  std::vector<ChangeRecord> out;
  {
    Result<Stmt> st = db_->Prepare(kSelectPending);
    if (!st.ok()) return st.error();
    st->Bind(1, env);
    while (true) {
      Result<bool> row = st->Step(what);
      if (!row.ok()) return row.error();
      if (!*row) break;
      auto live = live_tokens.find(std::string(st->View(5)));
      if (live != live_tokens.end() && live->second == st->Int(6)) continue;
      out.push_back(ReadChangeRow(*st));
    }
  }
  Status committed = txn->Commit(what);
  if (!committed.ok()) return committed.error();
  return out;
}

// --- state surgery ---

Status SqliteStateStore::RemoveResource(const Lock& lock, const std::string& address) {
  const std::string& env = lock.environment;
  const std::string what = "remove " + address + " from the state of environment " + env;
  Result<Transaction> txn = Transaction::Write(*db_, what);
  if (!txn.ok()) return txn.error();
  Status fence = CheckFence(lock);
  if (!fence.ok()) return fence;
  {
    Result<Stmt> st = db_->Prepare(kDeleteResource);
    if (!st.ok()) return st.error();
    st->Bind(1, env).Bind(2, address);
    Status run = st->Run(what);
    if (!run.ok()) return run;
  }
  if (db_->Changes() == 0) {
    return MakeError("cannot " + what + ": there is no such resource in state");
  }
  Result<int64_t> serial = BumpSerial(env, what);
  if (!serial.ok()) return serial.error();
  return txn->Commit(what);
}

Status SqliteStateStore::MoveResource(const Lock& lock, const std::string& from,
                                      const std::string& to) {
  const std::string& env = lock.environment;
  const std::string what = "move " + from + " to " + to + " in the state of environment " + env;
  std::string kind, name;
  if (Status ok = CheckMove(what, from, to, &kind, &name); !ok.ok()) return ok;
  Result<Transaction> txn = Transaction::Write(*db_, what);
  if (!txn.ok()) return txn.error();
  Status fence = CheckFence(lock);
  if (!fence.ok()) return fence;
  {
    Result<Stmt> st = db_->Prepare(kResourceExists);
    if (!st.ok()) return st.error();
    st->Bind(1, env).Bind(2, to);
    Result<bool> row = st->Step(what);
    if (!row.ok()) return row.error();
    if (*row) return MakeError("cannot " + what + ": " + to + " is already in state");
  }
  Result<int64_t> serial = BumpSerial(env, what);
  if (!serial.ok()) return serial.error();
  {
    Result<Stmt> st = db_->Prepare(kRenameResource);
    if (!st.ok()) return st.error();
    st->Bind(1, env).Bind(2, from).Bind(3, to).Bind(4, kind).Bind(5, name);
    st->Bind(6, *serial).Bind(7, NowUnix());
    Status run = st->Run(what);
    if (!run.ok()) return run;
  }
  if (db_->Changes() == 0) {
    return MakeError("cannot " + what + ": " + from + " is not in state");
  }
  // Rewrite the dependency lists that name the old address.
  std::vector<std::pair<std::string, std::vector<std::string>>> dependents;
  {
    Result<Stmt> st = db_->Prepare(kSelectDependents);
    if (!st.ok()) return st.error();
    st->Bind(1, env).Bind(2, Quote(from));
    while (true) {
      Result<bool> row = st->Step(what);
      if (!row.ok()) return row.error();
      if (!*row) break;
      std::vector<std::string> deps;
      if (!sqlite_detail::DecodeStringList(st->View(1), &deps)) {
        return MakeError("cannot " + what + ": resource " + std::string(st->View(0)) +
                         " has a malformed depends_on in state database " + path());
      }
      dependents.emplace_back(st->Text(0), std::move(deps));
    }
  }
  for (auto& [address, deps] : dependents) {
    std::replace(deps.begin(), deps.end(), from, to);
    Result<Stmt> st = db_->Prepare(kUpdateDependsOn);
    if (!st.ok()) return st.error();
    st->Bind(1, env).Bind(2, address).Bind(3, sqlite_detail::EncodeStringList(deps));
    Status run = st->Run(what);
    if (!run.ok()) return run;
  }
  return txn->Commit(what);
}

namespace {

constexpr const char* kSeenDrift =
    "UPDATE drift SET last_seen = ?3, diff = ?5, actor = CASE WHEN ?4 = '' THEN actor ELSE ?4 "
    "END WHERE env = ?1 AND address = ?2 AND resolved_at = 0";
constexpr const char* kOpenDrift =
    "INSERT INTO drift (env, address, onset, last_seen, actor, diff) VALUES (?1, ?2, ?3, ?3, ?4, "
    "?5) RETURNING id";
constexpr const char* kResolveDrift =
    "UPDATE drift SET resolved_at = ?3, resolution = ?4 WHERE env = ?1 AND address = ?2 AND "
    "resolved_at = 0";
constexpr const char* kCountRemediation =
    "UPDATE drift SET remediations = remediations + 1 WHERE env = ?1 AND address = ?2 AND "
    "resolved_at = 0 RETURNING remediations";
constexpr const char* kDriftColumns =
    "SELECT id, env, address, onset, last_seen, resolved_at, resolution, actor, diff, "
    "remediations FROM drift ";

DriftRecord ReadDrift(const Stmt& st) {
  DriftRecord d;
  d.id = st.Int(0);
  d.environment = st.Text(1);
  d.address = st.Text(2);
  d.onset = st.Int(3);
  d.last_seen = st.Int(4);
  d.resolved_at = st.Int(5);
  d.resolution = st.Text(6);
  d.actor = st.Text(7);
  d.diff = st.Text(8);
  d.remediations = st.Int(9);
  return d;
}

}  // namespace

Result<std::vector<DriftRecord>> SqliteStateStore::ObserveDrift(
    const std::string& env, const std::vector<DriftObservation>& drifted,
    const std::vector<std::string>& clean, const std::string& resolution, int64_t now) {
  const std::string what = "record drift of environment " + env;
  std::vector<DriftRecord> opened;
  Result<Transaction> txn = Transaction::Write(*db_, what);
  if (!txn.ok()) return txn.error();
  for (const DriftObservation& o : drifted) {
    // Seen again (the write transaction serialises checkers), else opened now.
    {
      Result<Stmt> st = db_->Prepare(kSeenDrift);
      if (!st.ok()) return st.error();
      st->Bind(1, env).Bind(2, o.address).Bind(3, now).Bind(4, o.actor).Bind(5, o.diff);
      Status run = st->Run(what);
      if (!run.ok()) return run.error();
      if (db_->Changes() > 0) continue;
    }
    Result<Stmt> st = db_->Prepare(kOpenDrift);
    if (!st.ok()) return st.error();
    st->Bind(1, env).Bind(2, o.address).Bind(3, now).Bind(4, o.actor).Bind(5, o.diff);
    Result<bool> row = st->Step(what);
    if (!row.ok()) return row.error();
    if (*row) opened.push_back(OpenedDrift(st->Int(0), env, o, now));
  }
  for (const std::string& address : clean) {
    Result<Stmt> st = db_->Prepare(kResolveDrift);
    if (!st.ok()) return st.error();
    st->Bind(1, env).Bind(2, address).Bind(3, now).Bind(4, resolution);
    Status run = st->Run(what);
    if (!run.ok()) return run.error();
  }
  Status committed = txn->Commit(what);
  if (!committed.ok()) return committed.error();
  return opened;
}

Result<int64_t> SqliteStateStore::CountRemediation(const std::string& env,
                                                   const std::string& address) {
  const std::string what = "count a remediation of " + address + " in environment " + env;
  Result<Stmt> st = db_->Prepare(kCountRemediation);
  if (!st.ok()) return st.error();
  st->Bind(1, env).Bind(2, address);
  Result<bool> row = st->Step(what);
  if (!row.ok()) return row.error();
  return *row ? st->Int(0) : 0;
}

Result<std::vector<DriftRecord>> SqliteStateStore::ListDrift(const std::string& env,
                                                             bool include_resolved, int limit) {
  const std::string what = ListDriftWhat(env);
  // Constant texts: the statement cache keys on the SQL text it is given, which must outlive it.
  static const std::string kAll =
      std::string(kDriftColumns) + "WHERE (?1 = '' OR env = ?1) ORDER BY id DESC LIMIT ?2";
  static const std::string kOpen =
      std::string(kDriftColumns) +
      "WHERE (?1 = '' OR env = ?1) AND resolved_at = 0 ORDER BY id DESC LIMIT ?2";
  Result<Stmt> st = db_->Prepare(include_resolved ? kAll : kOpen);
  if (!st.ok()) return st.error();
  st->Bind(1, env).Bind(2, static_cast<int64_t>(limit));
  std::vector<DriftRecord> out;
  while (true) {
    Result<bool> row = st->Step(what);
    if (!row.ok()) return row.error();
    if (!*row) break;
    out.push_back(ReadDrift(*st));
  }
  return out;
}

// --- the notification outbox ---

namespace {

constexpr const char* kEnqueue =
    "INSERT INTO outbox (sink, env, event_type, event_id, subject, event_json, created_at, "
    "next_attempt_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
constexpr const char* kDue =
    "SELECT id, sink, env, event_type, event_id, subject, event_json, attempts, created_at, "
    "next_attempt_at, delivered_at, last_error FROM outbox WHERE delivered_at = 0 AND "
    "next_attempt_at <= ?1 ORDER BY next_attempt_at, id LIMIT ?2";
constexpr const char* kMarkDelivered =
    "UPDATE outbox SET delivered_at = ?2, last_error = '' WHERE id = ?1 AND delivered_at = 0";
constexpr const char* kMarkFailed =
    "UPDATE outbox SET attempts = attempts + 1, last_error = ?2, next_attempt_at = ?3 WHERE id = "
    "?1 AND delivered_at = 0";
constexpr const char* kOutboxStatus =
    "SELECT sink, sum(delivered_at != 0), sum(delivered_at = 0 AND attempts = 0), "
    "sum(delivered_at = 0 AND attempts > 0), min(CASE WHEN delivered_at = 0 THEN "
    "next_attempt_at END), max(delivered_at), (SELECT o2.last_error FROM outbox o2 WHERE "
    "o2.sink = outbox.sink AND o2.delivered_at = 0 AND o2.attempts > 0 ORDER BY "
    "o2.next_attempt_at DESC, o2.id DESC LIMIT 1) FROM outbox GROUP BY sink ORDER BY sink";
constexpr const char* kLastEnqueued =
    "SELECT max(created_at) FROM outbox WHERE sink = ?1 AND subject = ?2 AND subject != ''";
// Keeps, per sink, the entries delivered last (last_delivered_at of OutboxStatus) and, per sink
// and subject, the newest (LastEnqueuedAt).
constexpr const char* kPruneOutbox =
    "WITH last AS MATERIALIZED (SELECT sink, max(delivered_at) AS at FROM outbox GROUP BY sink) "
    "DELETE FROM outbox WHERE delivered_at > 0 AND delivered_at < ?1 "
    "AND delivered_at < (SELECT at FROM last WHERE last.sink = outbox.sink) "
    "AND (subject = '' OR created_at < (SELECT max(o2.created_at) FROM outbox o2 "
    "WHERE o2.sink = outbox.sink AND o2.subject = outbox.subject AND o2.subject != ''))";

OutboxEntry ReadOutbox(const Stmt& st) {
  OutboxEntry e;
  e.id = st.Int(0);
  e.sink = st.Text(1);
  e.environment = st.Text(2);
  e.event_type = st.Text(3);
  e.event_id = st.Text(4);
  e.subject = st.Text(5);
  e.event_json = st.Text(6);
  e.attempts = st.Int(7);
  e.created_at = st.Int(8);
  e.next_attempt_at = st.Int(9);
  e.delivered_at = st.Int(10);
  e.last_error = st.Text(11);
  return e;
}

}  // namespace

Status SqliteStateStore::Enqueue(const std::vector<OutboxEntry>& entries) {
  if (entries.empty()) return Status::Ok();
  const std::string what = "enqueue " + std::to_string(entries.size()) + " notification(s)";
  Result<Transaction> txn = Transaction::Write(*db_, what);
  if (!txn.ok()) return txn.error();
  const int64_t now = NowUnix();
  for (const OutboxEntry& e : entries) {
    Result<Stmt> st = db_->Prepare(kEnqueue);
    if (!st.ok()) return st.error();
    st->Bind(1, e.sink).Bind(2, e.environment).Bind(3, e.event_type).Bind(4, e.event_id);
    st->Bind(5, e.subject).Bind(6, e.event_json).Bind(7, e.created_at > 0 ? e.created_at : now);
    st->Bind(8, e.next_attempt_at);
    Status run = st->Run(what);
    if (!run.ok()) return run;
  }
  return txn->Commit(what);
}

Result<std::vector<OutboxEntry>> SqliteStateStore::DueDeliveries(int64_t now, int limit) {
  const std::string what = "list the notifications due";
  Result<Stmt> st = db_->Prepare(kDue);
  if (!st.ok()) return st.error();
  st->Bind(1, now).Bind(2, static_cast<int64_t>(limit > 0 ? limit : -1));
  std::vector<OutboxEntry> out;
  while (true) {
    Result<bool> row = st->Step(what);
    if (!row.ok()) return row.error();
    if (!*row) break;
    out.push_back(ReadOutbox(*st));
  }
  return out;
}

Status SqliteStateStore::MarkDelivered(int64_t id, int64_t now) {
  const std::string what = "mark notification " + std::to_string(id) + " delivered";
  Result<Stmt> st = db_->Prepare(kMarkDelivered);
  if (!st.ok()) return st.error();
  st->Bind(1, id).Bind(2, now);
  return st->Run(what);
}

Status SqliteStateStore::MarkFailed(int64_t id, const std::string& error, int64_t next_attempt_at) {
  const std::string what = "record a failed delivery of notification " + std::to_string(id);
  Result<Stmt> st = db_->Prepare(kMarkFailed);
  if (!st.ok()) return st.error();
  st->Bind(1, id).Bind(2, error).Bind(3, next_attempt_at);
  return st->Run(what);
}

Result<std::vector<SinkStatus>> SqliteStateStore::OutboxStatus() {
  const std::string what = "read the notification outbox";
  Result<Stmt> st = db_->Prepare(kOutboxStatus);
  if (!st.ok()) return st.error();
  std::vector<SinkStatus> out;
  while (true) {
    Result<bool> row = st->Step(what);
    if (!row.ok()) return row.error();
    if (!*row) break;
    SinkStatus s;
    s.sink = st->Text(0);
    s.delivered = st->Int(1);
    s.pending = st->Int(2);
    s.failing = st->Int(3);
    s.next_attempt_at = st->Int(4);
    s.last_delivered_at = st->Int(5);
    s.last_error = st->Text(6);
    out.push_back(std::move(s));
  }
  return out;
}

Result<int64_t> SqliteStateStore::PruneOutbox(int64_t delivered_before) {
  const std::string what = "remove delivered notifications";
  Result<Stmt> st = db_->Prepare(kPruneOutbox);
  if (!st.ok()) return st.error();
  st->Bind(1, delivered_before);
  Status run = st->Run(what);
  if (!run.ok()) return run.error();
  return db_->Changes();
}

void SqliteStateStore::ReleaseMemory() {
  db_->ReleaseStatements();
  sqlite3_db_release_memory(db_->handle());
}

Result<int64_t> SqliteStateStore::LastEnqueuedAt(const std::string& sink,
                                                 const std::string& subject) {
  const std::string what = "read the notifications about " + subject;
  Result<Stmt> st = db_->Prepare(kLastEnqueued);
  if (!st.ok()) return st.error();
  st->Bind(1, sink).Bind(2, subject);
  Result<bool> row = st->Step(what);
  if (!row.ok()) return row.error();
  return *row ? st->Int(0) : 0;
}

}  // namespace driftless::state
