// `driftless serve` as a user runs it: the real binary following a repository reached by
// file://, on real files and a SQLite state. It waits only for what the server reports (its
// JSON log lines on standard error, the files it writes), never for a while.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <cstdlib>
#include <string>

#include "e2e/harness.h"

namespace driftless::test {
namespace {

class ServeTest : public ServeFixture {
 protected:
  void SetUp() override {
    WriteApp("one");
    CommitFirst("  - branch: main\n    name: production\n    sync: auto\n");
  }
};

TEST_F(ServeTest, FollowsTheRepositoryAppliesNewCommitsAndStopsOnSigterm) {
  setenv("DRIFTLESS_CACHE", (box_.dir() + "/cache").c_str(), 1);
  proc_ = Spawn(box_,
                {"serve", "--repo", "file://" + box_.dir() + "/origin.git", "--listen",
                 "127.0.0.1:0", "--poll", "200ms"},
                "serve");
  ASSERT_TRUE(ErrHas("\"msg\":\"listening\"")) << proc_.Err();
  EXPECT_NE(proc_.Err().find("\"address\":\"127.0.0.1:"), std::string::npos) << proc_.Err();
  // The branch becomes an environment and is applied (sync auto).
  ASSERT_TRUE(ErrHas("\"msg\":\"run applied\"")) << proc_.Err();
  EXPECT_EQ(ReadFile(box_.root() + "/production/app.conf"), "one");
  // A pushed commit is fetched by the poll and applied as a new run.
  WriteApp("two");
  Git(box_.repo(), "add -A");
  Git(box_.repo(), "commit -q -m two");
  Git(box_.repo(), "push -q '" + box_.dir() + "/origin.git' main");
  ASSERT_TRUE(ErrHas("\"msg\":\"run applied\"", 2)) << proc_.Err();
  EXPECT_EQ(ReadFile(box_.root() + "/production/app.conf"), "two");
  std::vector<Json> applies = History(box_, "production");
  ASSERT_EQ(applies.size(), 2u);
  // /metrics counts both runs, their durations and lags, and the requests made so far.
  uint16_t port = ServePort(proc_);
  ASSERT_NE(port, 0) << proc_.Err();
  ASSERT_EQ(HttpRequest(port, "GET", "/readyz").status, 200);
  HttpReply metrics = HttpRequest(port, "GET", "/metrics");
  ASSERT_EQ(metrics.status, 200);
  EXPECT_EQ(metrics.body.substr(0, 7), "# HELP ") << metrics.body;
  for (const char* line : {
           "driftless_runs_total{environment=\"production\",result=\"applied\"} 2\n",
           "driftless_run_duration_seconds_count{action=\"apply\"} 2\n",
           "driftless_reconcile_lag_seconds_count{environment=\"production\"} 2\n",
           "driftless_api_requests_total{route=\"/readyz\",code=\"200\"} 1\n",
           "driftless_environments{sync=\"auto\"} 1\n",
           "driftless_ready 1\n",
       }) {
    EXPECT_NE(metrics.body.find(line), std::string::npos) << line << metrics.body;
  }
  // SIGTERM: the server stops and exits 0.
  kill(proc_.pid, SIGTERM);
  EXPECT_EQ(Wait(proc_.pid), 0) << proc_.Err();
  proc_.pid = -1;
  EXPECT_NE(proc_.Err().find("\"msg\":\"stopped\""), std::string::npos) << proc_.Err();
}

}  // namespace
}  // namespace driftless::test
