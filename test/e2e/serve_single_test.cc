// A SQLite state takes one `driftless serve`: a second server on the same file refuses to start
// and names the first (its pid, host and listen address), the first goes on serving, commands
// keep working beside it, and a server killed with SIGKILL leaves nothing that blocks the next
// one. The real binary on a real repository reached by file://; it waits only for what the
// servers report.

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "e2e/harness.h"

namespace driftless::test {
namespace {

class ServeSingleTest : public ServeFixture {
 protected:
  void SetUp() override {
    setenv("DRIFTLESS_CACHE", (box_.dir() + "/cache").c_str(), 1);
    WriteApp("one");
    CommitFirst("  - branch: main\n    name: production\n    sync: auto\n");
  }

  // Starts a server on the sandbox's SQLite state and waits until it listens; its port.
  uint16_t StartServer(const std::string& tag) {
    proc_ =
        Spawn(box_, {"serve", "--repo", Origin(), "--listen", "127.0.0.1:0", "--poll", "1h"}, tag);
    return ServePort(proc_);
  }
};

TEST_F(ServeSingleTest, ASecondServerOnTheSameStateFileRefusesAndNamesTheFirst) {
  const uint16_t port = StartServer("first");
  ASSERT_NE(port, 0) << proc_.Err();
  ASSERT_TRUE(ErrHas("\"msg\":\"run applied\"")) << proc_.Err();

  RunResult second = box_.Run({"serve", "--repo", Origin(), "--listen", "127.0.0.1:0"});
  EXPECT_EQ(second.exit_code, 1) << Summary(second);
  for (const std::string& part : {
           "error: the SQLite state " + box_.state() + " is already served by driftless serve",
           "(pid " + std::to_string(proc_.pid) + " of ",
           "listening on 127.0.0.1:" + std::to_string(port),
           std::string("share a PostgreSQL state"),
       }) {
    EXPECT_NE(second.err.find(part), std::string::npos) << part << "\n" << second.err;
  }
  // It stopped before it touched anything: it never listened, never reconciled.
  EXPECT_EQ(second.err.find("\"msg\""), std::string::npos) << second.err;

  // The first is not disturbed: it still runs and answers.
  EXPECT_EQ(HttpRequest(port, "GET", "/readyz").status, 200);
  EXPECT_FALSE(Exited(proc_.pid));
  // Commands other than serve work beside it, on the same state.
  RunResult plan = box_.Run({"plan", "production", "--detailed-exitcode"});
  EXPECT_EQ(plan.exit_code, 0) << Summary(plan);
  RunResult history = box_.Run({"history", "production"});
  EXPECT_EQ(history.exit_code, 0) << Summary(history);
  EXPECT_NE(history.out.find("succeeded"), std::string::npos) << history.out;

  // SIGTERM: the lock goes with the server, and the next one starts.
  kill(proc_.pid, SIGTERM);
  EXPECT_EQ(Wait(proc_.pid), 0) << proc_.Err();
  proc_.pid = -1;
  ASSERT_NE(StartServer("next"), 0) << proc_.Err();
}

TEST_F(ServeSingleTest, AServerKilledWithSigkillDoesNotBlockTheNextStart) {
  ASSERT_NE(StartServer("killed"), 0) << proc_.Err();
  const int killed = proc_.pid;
  kill(killed, SIGKILL);
  EXPECT_EQ(Wait(killed), -SIGKILL);
  proc_.pid = -1;
  // The lock file is still there and still names the dead server; only the OS lock counts.
  EXPECT_NE(ReadFile(box_.state() + "-serve.lock").find("pid=" + std::to_string(killed)),
            std::string::npos);

  const uint16_t port = StartServer("after");
  ASSERT_NE(port, 0) << proc_.Err();
  EXPECT_EQ(HttpRequest(port, "GET", "/livez").status, 200);
  EXPECT_NE(ReadFile(box_.state() + "-serve.lock").find("pid=" + std::to_string(proc_.pid)),
            std::string::npos);
}

TEST_F(ServeSingleTest, ServersOnDifferentStateFilesRunSideBySide) {
  ASSERT_NE(StartServer("first"), 0) << proc_.Err();
  // Another sandbox: another state file (and folder), the same repository.
  Sandbox elsewhere;
  elsewhere.WriteRepoFile("README", "another folder\n");
  Proc other = Spawn(
      elsewhere, {"serve", "--repo", Origin(), "--listen", "127.0.0.1:0", "--poll", "1h"}, "other");
  const uint16_t port = ServePort(other);
  EXPECT_NE(port, 0) << other.Err();
  kill(other.pid, SIGTERM);
  EXPECT_EQ(Wait(other.pid), 0) << other.Err();
}

}  // namespace
}  // namespace driftless::test
