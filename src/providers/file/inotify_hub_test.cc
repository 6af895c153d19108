#include "providers/file/inotify_hub.h"

#include <gtest/gtest.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <string>
#include <thread>

#include "providers/file/watcher.h"

namespace driftless::providers::file {
namespace {

namespace fs = std::filesystem;

// The inotify instances this process holds (links named anon_inode:inotify in /proc/self/fd).
size_t InotifyInstances() {
  size_t n = 0;
  for (const auto& entry : fs::directory_iterator("/proc/self/fd")) {
    std::error_code ec;
    fs::path target = fs::read_symlink(entry.path(), ec);
    if (!ec && target.string() == "anon_inode:inotify") ++n;
  }
  return n;
}

class InotifyHubTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "driftless-hub.XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
    fs::create_directories(root_ + "/d");
    fs::create_directories(root_ + "/e");
    Write("d/a.txt", "a");
    Write("d/b.txt", "b");
  }
  void TearDown() override { fs::remove_all(root_); }

  void Write(const std::string& rel, const std::string& bytes) {
    std::FILE* f = std::fopen((root_ + "/" + rel).c_str(), "w");
    ASSERT_TRUE(f != nullptr);
    std::fputs(bytes.c_str(), f);
    std::fclose(f);
  }

  // Waits for the hints of the change just made: the kernel queues its events before the call
  // that made it returns, and the hub routes them in the kernel's order; `until` is the address
  // that the change's last event names (the two minutes only detect a failure).
  static std::set<std::string> Until(provider::Watcher& w, const std::string& until,
                                     bool* lost = nullptr) {
    std::set<std::string> seen;
    bool l = false;
    for (int round = 0; round < 1000 && !seen.count(until) && !l; ++round) {
      std::vector<provider::WatchHint> out;
      EXPECT_TRUE(w.Wait(120000, &out, &l).ok());
      for (const auto& h : out) seen.insert(h.address);
    }
    if (lost) *lost = l;
    return seen;
  }

  std::unique_ptr<provider::Watcher> Watch(const std::vector<WatchedPath>& paths) {
    auto w = WatchFiles(root_, paths);
    EXPECT_TRUE(w.ok()) << w.error().message;
    return w.ok() ? std::move(*w) : nullptr;
  }

  std::string root_;
};

TEST_F(InotifyHubTest, WatchersOfOneFolderShareItsWatchAndOneInstance) {
  // Each round of changes ends with a write of e/rN, which each watcher names rN: once it has
  // that hint, it has had every event of the round (the hub keeps the kernel's order).
  auto one = Watch({{"file.file/a", "d/a.txt", false}, {"r1", "e/r1", false}});
  auto two = Watch({{"file.file/b", "d/b.txt", false},
                    {"r1", "e/r1", false},
                    {"r2", "e/r2", false},
                    {"r3", "e/r3", false}});
  auto three = Watch({{"file.file/a3", "d/a.txt", false}, {"r3", "e/r3", false}});
  ASSERT_TRUE(one && two && three);
  EXPECT_EQ(InotifyInstances(), 1u) << "one inotify instance for every watcher";
  Result<std::shared_ptr<InotifyHub>> hub = InotifyHub::Shared();
  ASSERT_TRUE(hub.ok());
  EXPECT_EQ((*hub)->WatchCount(), 2u) << "d and e, each watched once for the three watchers";

  Write("d/a.txt", "edited");
  Write("e/r1", "1");
  EXPECT_EQ(Until(*one, "r1"), (std::set<std::string>{"file.file/a", "r1"}));
  EXPECT_EQ(Until(*two, "r1"), std::set<std::string>{"r1"}) << "a.txt is not two's";

  // The first watcher goes: the folders' watches stay for the others.
  one.reset();
  EXPECT_EQ((*hub)->WatchCount(), 2u);
  Write("d/b.txt", "edited");
  Write("e/r2", "2");
  std::set<std::string> seen = Until(*two, "r2");
  EXPECT_TRUE(seen.count("file.file/b"));
  EXPECT_FALSE(seen.count("file.file/a"));

  two.reset();
  EXPECT_EQ((*hub)->WatchCount(), 2u) << "three still watches d and e";
  Write("d/a.txt", "again");
  Write("e/r3", "3");
  seen = Until(*three, "r3");
  EXPECT_TRUE(seen.count("file.file/a3"));
  three.reset();
  EXPECT_EQ((*hub)->WatchCount(), 0u) << "the last watcher of a folder removes its watch";
}

TEST_F(InotifyHubTest, TheInstanceEndsWithItsLastHolder) {
  {
    auto w = Watch({{"file.file/a", "d/a.txt", false}});
    EXPECT_EQ(InotifyInstances(), 1u);
  }
  EXPECT_EQ(InotifyInstances(), 0u);
  auto again = Watch({{"file.file/a", "d/a.txt", false}});
  EXPECT_EQ(InotifyInstances(), 1u);
  Write("d/a.txt", "edited");
  EXPECT_EQ(Until(*again, "file.file/a"), std::set<std::string>{"file.file/a"});
}

TEST_F(InotifyHubTest, AFolderRemovedIsLostForEveryWatcherAndItsWatchForgotten) {
  auto one = Watch({{"file.file/a", "d/a.txt", false}, {"file.directory/d", "d", true}});
  auto two = Watch({{"file.file/b", "d/b.txt", false}});
  ASSERT_TRUE(one && two);
  Result<std::shared_ptr<InotifyHub>> hub = InotifyHub::Shared();
  ASSERT_TRUE(hub.ok());
  EXPECT_EQ((*hub)->WatchCount(), 2u);  // the root (d's parent) and d
  fs::remove_all(root_ + "/d");
  bool lost = false;
  std::set<std::string> seen = Until(*two, "file.file/b", &lost);
  EXPECT_TRUE(seen.count("file.file/b"));
  // Lost comes with the folder's own DELETE_SELF / IGNORED, which follow the deletes inside.
  while (!lost) (void)Until(*two, "never", &lost);
  EXPECT_TRUE(lost);
  lost = false;
  seen = Until(*one, "file.directory/d", &lost);
  while (!lost) seen.merge(Until(*one, "never", &lost));
  EXPECT_TRUE(seen.count("file.file/a"));
  EXPECT_TRUE(seen.count("file.directory/d"));
  // IN_IGNORED drops d's watch: the hub forgets it when it routes the event, each watcher
  // when it takes it (with the lost above, or in a later Wait).
  std::vector<provider::WatchHint> rest;
  while (two->WatchCount() > 0) ASSERT_TRUE(two->Wait(120000, &rest, &lost).ok());
  EXPECT_EQ((*hub)->WatchCount(), 1u) << "the root's watch (one's) is left";
  one.reset();
  two.reset();
  EXPECT_EQ((*hub)->WatchCount(), 0u);
}

TEST_F(InotifyHubTest, AFullQueueIsReportedAsLost) {
  Result<std::shared_ptr<InotifyHub>> hub = InotifyHub::Shared();
  ASSERT_TRUE(hub.ok());
  InotifyHub::Queue busy, sync;
  Result<int> d = (*hub)->Add(&busy, root_ + "/d");
  Result<int> e = (*hub)->Add(&sync, root_ + "/e");
  ASSERT_TRUE(d.ok() && e.ok());
  ASSERT_GE(*d, 0);
  // More events than a queue holds, before `busy` takes any (two files in turn: the kernel
  // merges an event only with an identical one right before it).
  for (size_t i = 0; i < InotifyHub::kQueueLimit + 100; ++i) {
    ASSERT_EQ(chmod((root_ + (i % 2 ? "/d/a.txt" : "/d/b.txt")).c_str(), i % 4 < 2 ? 0600 : 0644),
              0);
  }
  Write("e/sync", "1");
  // The hub routes in the kernel's order: once `sync` has e's event (or lost events itself,
  // when the kernel's own queue overflowed), every chmod before it was routed.
  std::vector<InotifyHub::Event> events;
  bool sync_lost = false;
  while (!sync_lost && events.empty()) sync_lost = sync.Take(120000, &events);
  events.clear();
  EXPECT_TRUE(busy.Take(0, &events)) << "the queue was full: events were lost";
  EXPECT_LE(events.size(), InotifyHub::kQueueLimit);
  events.clear();
  EXPECT_FALSE(busy.Take(0, &events)) << "lost is told once";
  (*hub)->Unsubscribe(&busy);
  (*hub)->Unsubscribe(&sync);
  EXPECT_EQ((*hub)->WatchCount(), 0u);
}

TEST_F(InotifyHubTest, InterruptEndsAWaitFromAnotherThread) {
  auto w = Watch({{"file.file/a", "d/a.txt", false}});
  ASSERT_TRUE(w);
  EXPECT_TRUE(w->Interruptible());
  std::vector<provider::WatchHint> out;
  bool lost = false;
  std::thread waiter([&] { EXPECT_TRUE(w->Wait(-1, &out, &lost).ok()); });
  w->Interrupt();  // before or during the Wait: it ends it either way
  waiter.join();
  EXPECT_TRUE(out.empty());
  EXPECT_FALSE(lost);
  // Used up by that Wait: the next one waits for an event again.
  Write("d/a.txt", "edited");
  EXPECT_EQ(Until(*w, "file.file/a"), std::set<std::string>{"file.file/a"});
}

}  // namespace
}  // namespace driftless::providers::file
