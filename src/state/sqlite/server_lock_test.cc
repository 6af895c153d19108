#include "state/sqlite/server_lock.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "base/file_util.h"

namespace driftless::state {
namespace {

class ServerLockTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "dl_server_lock_XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string dir_;
};

TEST_F(ServerLockTest, ASecondHolderIsRefusedNamingTheStateAndTheFirst) {
  const std::string state = dir_ + "/sub/state.db";
  Result<std::unique_ptr<ServerLock>> first = ServerLock::Acquire(state);
  ASSERT_TRUE(first.ok()) << first.error().message;
  ASSERT_TRUE((*first)->SetListen("127.0.0.1:8080").ok());
  // flock belongs to the open file, so a second open in this process conflicts as another
  // process would.
  Result<std::unique_ptr<ServerLock>> second = ServerLock::Acquire(state);
  ASSERT_FALSE(second.ok());
  const std::string& message = second.error().message;
  EXPECT_NE(message.find("the SQLite state " + state + " is already served"), std::string::npos)
      << message;
  EXPECT_NE(message.find("(pid " + std::to_string(getpid()) + " of "), std::string::npos)
      << message;
  EXPECT_NE(message.find("listening on 127.0.0.1:8080"), std::string::npos) << message;
  // Released with the holder.
  first->reset();
  Result<std::unique_ptr<ServerLock>> third = ServerLock::Acquire(state);
  EXPECT_TRUE(third.ok()) << third.error().message;
}

TEST_F(ServerLockTest, TheFileSaysWhoHoldsItAndIsEmptiedOnRelease) {
  const std::string state = dir_ + "/state.db";
  {
    Result<std::unique_ptr<ServerLock>> lock = ServerLock::Acquire(state);
    ASSERT_TRUE(lock.ok()) << lock.error().message;
    Result<std::string> text = ReadFileToString(ServerLock::LockPath(state));
    ASSERT_TRUE(text.ok());
    EXPECT_NE(text->find("pid=" + std::to_string(getpid()) + "\n"), std::string::npos) << *text;
    EXPECT_EQ(text->find("listen="), std::string::npos) << *text;
    ASSERT_TRUE((*lock)->SetListen("unix:///run/driftless.sock").ok());
    text = ReadFileToString(ServerLock::LockPath(state));
    ASSERT_TRUE(text.ok());
    EXPECT_NE(text->find("listen=unix:///run/driftless.sock\n"), std::string::npos) << *text;
  }
  Result<std::string> after = ReadFileToString(ServerLock::LockPath(state));
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(*after, "");
}

TEST_F(ServerLockTest, AnInMemoryStateHasNoFileToLock) {
  Result<std::unique_ptr<ServerLock>> lock = ServerLock::Acquire(":memory:");
  ASSERT_FALSE(lock.ok());
  EXPECT_NE(lock.error().message.find("needs a state file"), std::string::npos);
}

}  // namespace
}  // namespace driftless::state
