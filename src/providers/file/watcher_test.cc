#include "providers/file/watcher.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <set>

namespace driftless::providers::file {
namespace {

namespace fs = std::filesystem;

class WatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "driftless-watch.XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
    fs::create_directories(root_ + "/d");
    Write("a.txt", "a");
    Write("d/b.txt", "b");
    Write("unmanaged.txt", "u");
    auto w = WatchFiles(root_, {{"file.file/a", "a.txt", false},
                                {"file.file/b", "d/b.txt", false},
                                {"file.directory/d", "d", true},
                                {"file.file/missing", "nowhere/x.txt", false}});
    ASSERT_TRUE(w.ok()) << w.error().message;
    watcher_ = std::move(*w);
  }
  void TearDown() override { fs::remove_all(root_); }

  void Write(const std::string& rel, const std::string& bytes) {
    std::FILE* f = std::fopen((root_ + "/" + rel).c_str(), "w");
    ASSERT_TRUE(f != nullptr);
    std::fputs(bytes.c_str(), f);
    std::fclose(f);
  }

  // Everything reported for the change just made. The kernel queues a change's events before
  // the call that made it returns, so the first Wait returns at once (its two minutes are only
  // a failure detector) and the drain reads what is already queued.
  std::set<std::string> Changed(bool* lost = nullptr) {
    std::vector<provider::WatchHint> out;
    bool l = false;
    EXPECT_TRUE(watcher_->Wait(120000, &out, &l).ok());
    while (true) {  // drain what belongs to the same burst
      size_t before = out.size();
      EXPECT_TRUE(watcher_->Wait(50, &out, &l).ok());
      if (out.size() == before) break;
    }
    if (lost) *lost = l;
    std::set<std::string> addresses;
    for (const auto& h : out) {
      EXPECT_EQ(h.actor, "") << "files cannot tell who changed them";
      addresses.insert(h.address);
    }
    return addresses;
  }

  std::string root_;
  std::unique_ptr<provider::Watcher> watcher_;
};

TEST_F(WatcherTest, OneWatchPerFolder) { EXPECT_EQ(watcher_->WatchCount(), 2u); }

TEST_F(WatcherTest, EditChmodRenameDeleteAreSeen) {
  Write("a.txt", "edited");
  EXPECT_EQ(Changed(), std::set<std::string>{"file.file/a"});
  chmod((root_ + "/d/b.txt").c_str(), 0600);
  EXPECT_EQ(Changed(), (std::set<std::string>{"file.file/b", "file.directory/d"}));
  fs::rename(root_ + "/a.txt", root_ + "/a2.txt");
  EXPECT_EQ(Changed(), std::set<std::string>{"file.file/a"});
  fs::remove(root_ + "/d/b.txt");
  EXPECT_EQ(Changed(), (std::set<std::string>{"file.file/b", "file.directory/d"}));
  chmod((root_ + "/d").c_str(), 0700);
  EXPECT_EQ(Changed(), std::set<std::string>{"file.directory/d"});
}

TEST_F(WatcherTest, UnmanagedNeighboursAreQuiet) {
  Write("unmanaged.txt", "changed");
  std::vector<provider::WatchHint> out;
  bool lost = false;
  ASSERT_TRUE(watcher_->Wait(200, &out, &lost).ok());
  EXPECT_TRUE(out.empty());
  EXPECT_FALSE(lost);
}

TEST_F(WatcherTest, AFolderThatGoesAwayIsReportedAsLost) {
  fs::remove_all(root_ + "/d");
  bool lost = false;
  std::set<std::string> changed = Changed(&lost);
  EXPECT_TRUE(changed.count("file.file/b"));
  EXPECT_TRUE(lost);
}

}  // namespace
}  // namespace driftless::providers::file
