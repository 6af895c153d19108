// Skipping the read of unchanged files is safe: a plan trusts a file's stamp (device, inode,
// size, modification and change time) only once it was recorded outside the racy window, a
// change that keeps the size and puts the modification time back is still seen (right after an
// apply, and after a stamp was recorded), so are a replaced inode and a chmod, and
// `drift --full` reads everything, whatever the stamps say.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include "e2e/harness.h"

namespace driftless::test {
namespace {

constexpr long kExt4 = 0xEF53, kTmpfs = 0x01021994, kXfs = 0x58465342, kBtrfs = 0x9123683E,
               kOverlay = 0x794c7630;

// Runs an SQL statement on the sandbox's state with the sqlite3 command; its output.
std::string Sql(const Sandbox& s, const std::string& sql) {
  std::string cmd = "sqlite3 '" + s.state() + "' \"" + sql + "\"";
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return "?";
  std::string out;
  char buf[256];
  while (size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  pclose(p);
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

int64_t Ns(const struct timespec& t) { return int64_t{t.tv_sec} * 1'000'000'000 + t.tv_nsec; }

// Waits, by the clock (up to a minute), until the last change of `path` lies well outside the
// racy window (50 ms; 2.1 s for times in whole seconds).
void WaitUntilOld(const std::string& path) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(1);
  while (std::chrono::steady_clock::now() < deadline) {
    struct stat st {};
    struct timespec now {};
    ASSERT_EQ(stat(path.c_str(), &st), 0) << path;
    clock_gettime(CLOCK_REALTIME, &now);
    if (Ns(st.st_ctim) < Ns(now) - 2'500'000'000) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  FAIL() << path << " did not get old enough";
}

// Writes `bytes` over `path` in place and puts its modification time back: what a change looks
// like to a tool that trusts size and mtime.
void EditKeepingSizeAndMtime(const std::string& path, const std::string& bytes) {
  struct stat before {};
  ASSERT_EQ(stat(path.c_str(), &before), 0);
  ASSERT_EQ(static_cast<size_t>(before.st_size), bytes.size());
  FILE* f = std::fopen(path.c_str(), "r+");
  ASSERT_NE(f, nullptr);
  std::fwrite(bytes.data(), 1, bytes.size(), f);
  std::fclose(f);
  struct timespec times[2] = {before.st_atim, before.st_mtim};
  ASSERT_EQ(utimensat(AT_FDCWD, path.c_str(), times, 0), 0);
  struct stat after {};
  ASSERT_EQ(stat(path.c_str(), &after), 0);
  ASSERT_EQ(Ns(after.st_mtim), Ns(before.st_mtim));
  ASSERT_EQ(after.st_size, before.st_size);
}

class StampsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    box_.WriteProject();
    box_.WriteRepoFile("files.yaml",
                       "kind: file.file\nname: a\ntarget: host\n"
                       "spec: {path: a.txt, content: \"aaaa\\n\", mode: \"0644\"}\n---\n"
                       "kind: file.file\nname: b\ntarget: host\n"
                       "spec: {path: b.txt, content: \"bbbb\\n\", mode: \"0644\"}\n");
    RunResult a = box_.Run({"apply", "--auto-approve"});
    ASSERT_EQ(a.exit_code, 0) << Summary(a);
  }

  // A plan with no changes that records the stamps of the settled files.
  void RecordStamps() {
    WaitUntilOld(box_.root() + "/a.txt");
    WaitUntilOld(box_.root() + "/b.txt");
    RunResult p = box_.Run({"plan", "--detailed-exitcode"});
    ASSERT_EQ(p.exit_code, 0) << Summary(p);
    struct statfs fs {};
    ASSERT_EQ(statfs(box_.root().c_str(), &fs), 0);
    const long type = static_cast<long>(fs.f_type);
    if (type == kExt4 || type == kTmpfs || type == kXfs || type == kBtrfs || type == kOverlay) {
      EXPECT_EQ(Sql(box_, "SELECT count(*) FROM resources WHERE live_stamp != ''"), "2");
    }
  }

  std::string File(const std::string& name) const { return box_.root() + "/" + name; }

  Sandbox box_;
};

TEST_F(StampsTest, SameSizeEditWithTheMtimePutBackRightAfterTheApplyIsSeen) {
  // Within the racy window of the write: no stamp could be trusted yet.
  EditKeepingSizeAndMtime(File("a.txt"), "AAAA\n");
  RunResult drift = box_.Run({"drift"});
  EXPECT_EQ(drift.exit_code, 2) << Summary(drift);
  EXPECT_NE(drift.out.find("AAAA"), std::string::npos) << drift.out;
}

TEST_F(StampsTest, SameSizeEditWithTheMtimePutBackAfterAStampIsSeen) {
  RecordStamps();
  // `touch -d` puts the modification time back; the change time moved on.
  struct stat before {};
  ASSERT_EQ(stat(File("a.txt").c_str(), &before), 0);
  FILE* f = std::fopen(File("a.txt").c_str(), "r+");
  ASSERT_NE(f, nullptr);
  std::fputs("AAAA\n", f);
  std::fclose(f);
  char when[64];
  std::snprintf(when, sizeof when, "@%lld.%09ld", static_cast<long long>(before.st_mtim.tv_sec),
                before.st_mtim.tv_nsec);
  ASSERT_EQ(std::system(("touch -d " + std::string(when) + " '" + File("a.txt") + "'").c_str()), 0);
  struct stat after {};
  ASSERT_EQ(stat(File("a.txt").c_str(), &after), 0);
  ASSERT_EQ(Ns(after.st_mtim), Ns(before.st_mtim));
  for (const char* full : {"", "--full"}) {
    RunResult drift = full[0] ? box_.Run({"drift", full}) : box_.Run({"drift"});
    EXPECT_EQ(drift.exit_code, 2) << full << Summary(drift);
    EXPECT_NE(drift.out.find("file.file/a"), std::string::npos) << full << drift.out;
    EXPECT_EQ(drift.out.find("file.file/b"), std::string::npos) << full << drift.out;
  }
}

TEST_F(StampsTest, AReplacedInodeAndAChmodAreSeen) {
  RecordStamps();
  // Another file with the same size and times renamed over b.txt: another inode.
  struct stat b {};
  ASSERT_EQ(stat(File("b.txt").c_str(), &b), 0);
  FILE* f = std::fopen(File("new").c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fputs("BBBB\n", f);
  std::fclose(f);
  ASSERT_EQ(chmod(File("new").c_str(), 0644), 0);
  struct timespec times[2] = {b.st_atim, b.st_mtim};
  ASSERT_EQ(utimensat(AT_FDCWD, File("new").c_str(), times, 0), 0);
  ASSERT_EQ(rename(File("new").c_str(), File("b.txt").c_str()), 0);
  // And a's mode.
  ASSERT_EQ(chmod(File("a.txt").c_str(), 0600), 0);
  RunResult plan = box_.Run({"plan", "--detailed-exitcode"});
  EXPECT_EQ(plan.exit_code, 2) << Summary(plan);
  EXPECT_NE(plan.out.find("2 to heal"), std::string::npos) << plan.out;
  EXPECT_NE(plan.out.find("BBBB"), std::string::npos) << plan.out;
  EXPECT_NE(plan.out.find("0600"), std::string::npos) << plan.out;
}

TEST_F(StampsTest, FullDriftReadsWhatAStampWouldSkip) {
  RecordStamps();
  if (Sql(box_, "SELECT count(*) FROM resources WHERE live_stamp != ''") != "2") {
    GTEST_SKIP() << "the file system of " << box_.root() << " keeps no stamps";
  }
  // State that no longer says what the live file hashes to, as after a change that a stamp
  // cannot see: a plan that trusts the stamp does not read the file, `drift --full` does.
  ASSERT_EQ(Sql(box_,
                "UPDATE resources SET live_digest = 'elsewhere' "
                "WHERE address = 'file.file/a'; SELECT changes()"),
            "1");
  RunResult trusted = box_.Run({"drift"});
  EXPECT_EQ(trusted.exit_code, 0) << Summary(trusted);
  RunResult full = box_.Run({"drift", "--full"});
  EXPECT_EQ(full.exit_code, 2) << Summary(full);
  EXPECT_NE(full.out.find("file.file/a"), std::string::npos) << full.out;
}

}  // namespace
}  // namespace driftless::test
