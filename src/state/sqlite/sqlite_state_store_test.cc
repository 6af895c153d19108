#include "state/sqlite/sqlite_state_store.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "state/sqlite/schema.h"
#include "state/testing/state_store_contract.h"

namespace driftless::state {
namespace {

using testing::StateStoreContract;

// A fresh folder per test, removed afterwards.
class SqliteStateStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "dl-state-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/sub/folder/state.db";
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  std::unique_ptr<SqliteStateStore> OpenStore() {
    auto store = SqliteStateStore::Open(path_);
    EXPECT_TRUE(store.ok()) << store.error().message;
    return store.ok() ? std::move(*store) : nullptr;
  }

  // Runs SQL on the file through a separate connection (to fake what other versions or a dead
  // lease would leave behind).
  void RawExec(const std::string& sql) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    char* err = nullptr;
    int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
    EXPECT_EQ(rc, SQLITE_OK) << (err != nullptr ? err : "");
    sqlite3_free(err);
    sqlite3_close(db);
  }

  std::string dir_;
  std::string path_;
};

// The SQLite side of the shared contract suite (state/testing): a fresh file per test.
class SqliteBackend : public testing::Backend {
 public:
  SqliteBackend() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "dl-state-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) {
      ADD_FAILURE() << "cannot make a temporary folder";
      return;
    }
    dir_ = tmpl;
    path_ = dir_ + "/sub/folder/state.db";
  }
  ~SqliteBackend() override {
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }
  std::unique_ptr<StateStore> Open() override {
    auto store = SqliteStateStore::Open(path_);
    if (!store.ok()) {
      ADD_FAILURE() << store.error().message;
      return nullptr;
    }
    return std::move(*store);
  }
  void ExpireLease(const std::string& env) override {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    sqlite3_stmt* st = nullptr;
    ASSERT_EQ(
        sqlite3_prepare_v2(db, "UPDATE locks SET expires_at = 0 WHERE env = ?1", -1, &st, nullptr),
        SQLITE_OK);
    sqlite3_bind_text(st, 1, env.c_str(), -1, SQLITE_TRANSIENT);
    EXPECT_EQ(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    sqlite3_close(db);
  }

 private:
  std::string dir_;
  std::string path_;
};

INSTANTIATE_TEST_SUITE_P(Sqlite, StateStoreContract,
                         ::testing::Values(testing::BackendFactory{
                             "sqlite", [] { return std::make_unique<SqliteBackend>(); }}),
                         testing::BackendName);

TEST_F(SqliteStateStoreTest, OpenCreatesFoldersAndPrivateWalFile) {
  auto store = OpenStore();
  ASSERT_TRUE(store);
  struct stat st {};
  ASSERT_EQ(stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(store->path(), path_);
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &stmt, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0)), "wal");
  sqlite3_finalize(stmt);
  ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &stmt, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(stmt, 0), sqlite_detail::LatestSchemaVersion());
  sqlite3_finalize(stmt);
  sqlite3_close(db);
}

// Whether another process sees a lock of this one on the file (SQLite's shared lock of an open
// connection in WAL mode): a child asks the kernel with F_GETLK, which reports only the locks of
// other processes.
bool OtherProcessesSeeOurLock(const std::string& path) {
  pid_t pid = fork();
  if (pid == 0) {
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    struct flock probe {};
    probe.l_type = F_WRLCK;
    probe.l_whence = SEEK_SET;
    int rc = fd >= 0 ? fcntl(fd, F_GETLK, &probe) : -1;
    _exit(rc == 0 && probe.l_type != F_UNLCK ? 0 : 1);
  }
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) != pid) return false;
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

// Closing any descriptor of the database file drops every POSIX lock the process holds on it,
// SQLite's included. Opening a second store in a process (watch's delivery thread, a server's
// workers) must not do that: another process closing its connection would take itself for the
// last user, checkpoint and delete the write-ahead log, and the first store's later writes would
// go to a deleted file that nobody else ever reads (a watch whose retries `notify status` never
// saw).
TEST_F(SqliteStateStoreTest, OpeningASecondStoreKeepsTheLocksOfTheFirst) {
  auto first = OpenStore();
  ASSERT_TRUE(first);
  ASSERT_TRUE(first->GetOrCreateEnvironment("a").ok());
  ASSERT_TRUE(OtherProcessesSeeOurLock(path_)) << "an open connection in WAL mode holds a lock";
  auto second = OpenStore();
  ASSERT_TRUE(second);
  EXPECT_TRUE(OtherProcessesSeeOurLock(path_));
  ASSERT_TRUE(second->GetOrCreateEnvironment("b").ok());
  EXPECT_TRUE(OtherProcessesSeeOurLock(path_));
}

TEST_F(SqliteStateStoreTest, RefusesDatabasesFromNewerVersionsAndOtherPrograms) {
  {
    auto store = OpenStore();
    ASSERT_TRUE(store);
  }
  RawExec("PRAGMA user_version = 99");
  auto newer = SqliteStateStore::Open(path_);
  ASSERT_FALSE(newer.ok());
  EXPECT_EQ(newer.error().message,
            "state database " + path_ +
                " has schema version 99 but this driftless knows "
                "versions up to " +
                std::to_string(sqlite_detail::LatestSchemaVersion()) +
                ": it was written by a newer driftless; upgrade driftless to use it");

  path_ = dir_ + "/other.db";
  RawExec("CREATE TABLE notes (body TEXT)");
  auto foreign = SqliteStateStore::Open(path_);
  ASSERT_FALSE(foreign.ok());
  EXPECT_NE(foreign.error().message.find("is not a driftless state database"), std::string::npos);

  path_ = dir_ + "/garbage.db";
  std::ofstream(path_) << std::string(4096, 'x');
  auto garbage = SqliteStateStore::Open(path_);
  ASSERT_FALSE(garbage.ok());
  EXPECT_NE(garbage.error().message.find(path_), std::string::npos);

  path_ = dir_;  // a folder
  auto folder = SqliteStateStore::Open(path_);
  ASSERT_FALSE(folder.ok());
  EXPECT_NE(folder.error().message.find(path_), std::string::npos);
  EXPECT_FALSE(SqliteStateStore::Open("").ok());
}

TEST_F(SqliteStateStoreTest, AuditLogRefusesUpdateAndDelete) {
  auto store = OpenStore();
  ASSERT_TRUE(store);
  AuditEntry e;
  e.who = "ci";
  e.action = "run.apply";
  e.result = "refused";
  ASSERT_TRUE(store->AppendAudit(e).ok());
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  sqlite3_busy_timeout(db, 5000);
  for (const char* sql : {"UPDATE audit SET result = 'allowed'", "DELETE FROM audit"}) {
    char* err = nullptr;
    EXPECT_NE(sqlite3_exec(db, sql, nullptr, nullptr, &err), SQLITE_OK) << sql;
    EXPECT_STREQ(err, "the audit log is append-only");
    sqlite3_free(err);
  }
  sqlite3_close(db);
  Result<Page<AuditEntry>> page = store->ListAudit({}, 0, 10);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->items.size(), 1u);
  EXPECT_EQ(page->items[0].result, "refused");
}

}  // namespace
}  // namespace driftless::state
