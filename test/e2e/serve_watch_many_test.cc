// One `driftless serve` watching many environments: every file watcher of the process shares one
// inotify instance (Linux allows fs.inotify.max_user_instances per user, 128 by default; one
// instance per watched environment stopped a server at that many). It waits only for what the
// server reports (its log lines), never for a while.

#include <gtest/gtest.h>
#include <signal.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "e2e/harness.h"

namespace driftless::test {
namespace {

namespace fs = std::filesystem;

// The limit of inotify instances per user (0 when it cannot be read).
size_t InstanceLimit() {
  std::ifstream in("/proc/sys/fs/inotify/max_user_instances");
  size_t limit = 0;
  in >> limit;
  return limit;
}

// The inotify instances process `pid` holds: its descriptors linked to anon_inode:inotify.
size_t InotifyInstances(int pid) {
  size_t n = 0;
  for (const auto& entry : fs::directory_iterator("/proc/" + std::to_string(pid) + "/fd")) {
    std::error_code ec;
    if (fs::read_symlink(entry.path(), ec).string() == "anon_inode:inotify" && !ec) ++n;
  }
  return n;
}

std::string EnvName(size_t i) {
  char name[16];
  std::snprintf(name, sizeof name, "env-%03zu", i);
  return name;
}

class ServeWatchManyTest : public ServeFixture {};

TEST_F(ServeWatchManyTest, ManyWatchedEnvironmentsShareOneInotifyInstance) {
  // More environments than the limit allows instances when the limit is small enough to run
  // that many here (the default, 128); otherwise 40, and the count of instances tells.
  const size_t limit = InstanceLimit();
  const size_t envs = limit > 0 && limit <= 200 ? limit + 8 : 40;
  WriteApp("one");
  CommitFirst("  - branch: \"env-*\"\n    sync: auto\n");
  for (size_t i = 0; i < envs; ++i) Git(box_.repo(), "branch " + EnvName(i));
  Git(box_.repo(), "push -q '" + box_.dir() + "/origin.git' 'refs/heads/env-*:refs/heads/env-*'");
  setenv("DRIFTLESS_CACHE", (box_.dir() + "/cache").c_str(), 1);
  proc_ = Spawn(box_, {"serve", "--repo", Origin(), "--listen", "127.0.0.1:0", "--poll", "300ms"},
                "serve");
  // Every environment applied and watched (watch.started follows the watch's first scan).
  ASSERT_TRUE(ErrHas("\"msg\":\"run applied\"", envs)) << proc_.Err().substr(0, 4000);
  ASSERT_TRUE(ErrHas("\"type\":\"watch.started\"", envs)) << proc_.Err().substr(0, 4000);
  EXPECT_EQ(InotifyInstances(proc_.pid), 1u)
      << "one inotify instance for " << envs << " watched environments (limit " << limit << ")";
  EXPECT_EQ(CountOf(proc_.Err(), "\"msg\":\"watch\""), 0u) << "no watch failed to start";

  // The last environment's watch sees a change made outside driftless.
  const std::string last = EnvName(envs - 1);
  {
    std::ofstream out(box_.root() + "/" + last + "/app.conf");
    out << "changed by hand";
  }
  ASSERT_TRUE(PollUntil([&] {
    const std::string err = proc_.Err();
    for (size_t at = err.find("\"type\":\"drift.detected\""); at != std::string::npos;
         at = err.find("\"type\":\"drift.detected\"", at + 1)) {
      size_t start = err.rfind('\n', at);
      start = start == std::string::npos ? 0 : start + 1;
      if (err.substr(start, err.find('\n', at) - start).find("\"environment\":\"" + last + "\"") !=
          std::string::npos)
        return true;
    }
    return false;
  })) << proc_.Err().substr(0, 4000);

  // A new commit of one environment pauses its watch (the stop wakes a watch that waits for
  // its next scan, five minutes away) and watches again after the apply.
  WriteApp("two");
  Git(box_.repo(), "commit -q -am two");
  Git(box_.repo(), "push -q '" + box_.dir() + "/origin.git' HEAD:refs/heads/" + EnvName(0));
  ASSERT_TRUE(ErrHas("\"msg\":\"run applied\"", envs + 1)) << proc_.Err().substr(0, 4000);
  EXPECT_EQ(ReadFile(box_.root() + "/" + EnvName(0) + "/app.conf"), "two");
  ASSERT_TRUE(ErrHas("\"type\":\"watch.started\"", envs + 1));
  EXPECT_EQ(InotifyInstances(proc_.pid), 1u);

  kill(proc_.pid, SIGTERM);
  EXPECT_EQ(Wait(proc_.pid), 0) << proc_.Err().substr(0, 4000);
  proc_.pid = -1;
}

}  // namespace
}  // namespace driftless::test
