// Two real `driftless serve` processes on one PostgreSQL state: an event one of them writes
// reaches a stream open on the other at once (the state's "events" channel, LISTEN/NOTIFY), and
// a client that comes back to the other after it restarted, with Last-Event-ID, gets exactly
// the events it missed, in id order. It waits only for what the servers report.
//
// The file's name holds "postgres", so its tests get the test PostgreSQL server.

#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <cstdlib>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "e2e/harness.h"
#include "server/http/testing/raw_client.h"
#include "support/postgres.h"

namespace driftless::test {
namespace {

using server::http::testing::RawClient;
using namespace std::chrono_literals;

// The `id:` values of the events in an SSE text, in order.
std::vector<int64_t> EventIds(const std::string& text) {
  std::vector<int64_t> out;
  size_t at = 0;
  while ((at = text.find("\nid: ", at)) != std::string::npos) {
    size_t end = text.find('\n', at + 1);
    if (end == std::string::npos) break;
    out.push_back(std::stoll(text.substr(at + 5, end - at - 5)));
    at = end;
  }
  return out;
}

// The lines of `log` that hold every one of `needles`.
int LinesWith(const std::string& log, const std::vector<std::string>& needles) {
  std::istringstream in(log);
  int n = 0;
  for (std::string line; std::getline(in, line);) {
    bool all = true;
    for (const std::string& needle : needles) all = all && line.find(needle) != std::string::npos;
    n += all ? 1 : 0;
  }
  return n;
}

class ServeEventsPostgresTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(s_.uri().empty());
    setenv("DRIFTLESS_CACHE", (s_.dir() + "/cache").c_str(), 1);
    s_.WriteRepoFile("app.yaml",
                     "kind: file.file\nname: app\ntarget: host\nspec: {path: app.conf, content: "
                     "one}\n");
    s_.WriteRepoFile("driftless.yaml",
                     "project: shop\nenvironments:\n  - branch: main\n    name: production\n"
                     "    sync: manual\ntargets:\n  host: {provider: file, root: \"" +
                         s_.root() + "/${env}\"}\n");
    GitIn(s_, s_.repo(), "init -q");
    GitIn(s_, s_.repo(), "add -A");
    GitIn(s_, s_.repo(), "commit -q -m one");
    GitIn(s_, s_.dir(), "clone -q --bare repo origin.git");
    editor_ = NewToken("editor", "ci");
    viewer_ = NewToken("viewer", "follower");
    ASSERT_FALSE(editor_.empty() || viewer_.empty());
  }
  void TearDown() override {
    for (Proc& p : procs_) {
      if (p.pid > 0 && !Exited(p.pid)) kill(p.pid, SIGKILL);
      if (p.pid > 0) Wait(p.pid);
    }
  }
  std::string NewToken(const std::string& role, const std::string& name) {
    RunResult r = s_.Pg({"token", "create", "--role", role, "--name", name});
    EXPECT_EQ(r.exit_code, 0) << Summary(r);
    std::string out = r.out;
    while (!out.empty() && out.back() == '\n') out.pop_back();
    return out.substr(out.rfind('\n') == std::string::npos ? 0 : out.rfind('\n') + 1);
  }
  // Starts a server on the shared state; its port once it listens (0 when it never did).
  uint16_t Serve(const std::string& tag) {
    procs_.push_back(Spawn(s_,
                           {"serve", "--repo", "file://" + s_.dir() + "/origin.git", "--listen",
                            "127.0.0.1:0", "--poll", "1h"},
                           tag));
    return ServePort(procs_.back());
  }
  RawClient OpenStream(uint16_t port, const std::string& extra = "") {
    return OpenEventStream(port, viewer_, extra);
  }
  // Queues an apply of production through the server on `port` (once it has fetched and
  // answers) and waits until it is applied (or found nothing to change); its id (0 on failure)
  // and final status.
  std::pair<int64_t, std::string> ApplyThrough(uint16_t port) {
    HttpReply asked;
    EXPECT_TRUE(PollUntil([&] {
      asked = ApiCall(port, "POST", "/api/v1/environments/production/runs", editor_,
                      "{\"action\":\"apply\"}");
      return asked.status == 202;
    })) << asked.status
        << " " << asked.body;
    Json run;
    if (!ReadJson(asked.body, &run)) return {0, ""};
    const int64_t id = run.Int("id");
    Json shown;
    EXPECT_TRUE(PollUntil([&] {
      HttpReply r = ApiCall(port, "GET", "/api/v1/runs/" + std::to_string(id), viewer_);
      return r.status == 200 && ReadJson(r.body, &shown) && IsFinal(shown.Str("status"));
    })) << shown.Str("status");
    EXPECT_TRUE(shown.Str("status") == "applied" || shown.Str("status") == "no_changes")
        << shown.Str("status") << ": " << shown.Str("message");
    return {id, shown.Str("status")};
  }
  static bool IsFinal(const std::string& status) {
    return status == "applied" || status == "errored" || status == "canceled" ||
           status == "superseded" || status == "interrupted" || status == "no_changes";
  }

  PgSandbox s_;
  std::vector<Proc> procs_;
  std::string editor_;
  std::string viewer_;
};

TEST_F(ServeEventsPostgresTest, AStreamOnOneServerShowsWhatAnotherDidAndResumesAfterARestart) {
  const uint16_t a = Serve("a");
  ASSERT_NE(a, 0) << procs_[0].Err();
  const uint16_t b = Serve("b");
  ASSERT_NE(b, 0) << procs_[1].Err();

  // A stream on A; the run is queued through B, so B writes its run.queued.
  RawClient stream = OpenStream(a);
  const auto [run, status] = ApplyThrough(b);
  ASSERT_GT(run, 0);
  const std::string mine = "\"run_id\":" + std::to_string(run);
  ASSERT_TRUE(stream.ReadUntil(mine, kStreamPatience)) << stream.received();
  ASSERT_TRUE(stream.ReadUntil("event: run." + status + "\n", kStreamPatience))
      << stream.received();
  EXPECT_NE(
      stream.received().find("event: run.queued\ndata: {\"action\":\"apply\",\"actor\":\"ci\""),
      std::string::npos)
      << stream.received();
  EXPECT_EQ(LinesWith(procs_[1].Err(), {"\"msg\":\"run queued\"", mine}), 1) << procs_[1].Err();
  EXPECT_EQ(LinesWith(procs_[0].Err(), {"\"msg\":\"run queued\"", mine}), 0) << procs_[0].Err();
  // What A streamed is the log, in order, from the first event after the stream opened.
  std::vector<int64_t> seen = EventIds(stream.received());
  ASSERT_FALSE(seen.empty());
  for (size_t i = 1; i < seen.size(); ++i) EXPECT_LT(seen[i - 1], seen[i]);

  // The servers' notification connections are cut (as by a restart of PostgreSQL's backends):
  // each listener connects again and reads the log, so the open stream misses nothing. Each
  // server has two: the event hub's (events) and the controller's (runs).
  EXPECT_EQ(QueryValue(s_.dsn(),
                       "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE "
                       "application_name = 'driftless listener' AND datname = current_database()"),
            "4");
  const int64_t after_cut = ApplyThrough(b).first;
  ASSERT_GT(after_cut, 0);
  ASSERT_TRUE(stream.ReadUntil("\"run_id\":" + std::to_string(after_cut), kStreamPatience))
      << stream.received();
  ASSERT_TRUE(PollUntil([&] {
    return QueryValue(s_.dsn(),
                      "SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                      "'driftless listener' AND datname = current_database()") == "4";
  }));
  const std::string through = QueryValue(s_.dsn(), "SELECT max(id) FROM driftless.events");
  ASSERT_TRUE(stream.ReadUntil("\nid: " + through + "\n", kStreamPatience)) << stream.received();
  // No gap, no duplicate: every id of the log from the stream's first to here, once, in order.
  seen = EventIds(stream.received());
  std::string streamed;
  for (int64_t id : seen) {
    if (id > std::stoll(through)) break;
    streamed += (streamed.empty() ? "" : ",") + std::to_string(id);
  }
  EXPECT_EQ(streamed, QueryValue(s_.dsn(),
                                 "SELECT string_agg(id::text, ',' ORDER BY id) FROM "
                                 "driftless.events WHERE id BETWEEN " +
                                     std::to_string(seen.front()) + " AND " + through));
  const int64_t last = std::stoll(through);
  stream = std::move(*RawClient::ConnectTcp(a));  // the client goes away

  // A stops; B goes on; A comes back and the client resumes on it from the last id it saw.
  kill(procs_[0].pid, SIGTERM);
  EXPECT_EQ(Wait(procs_[0].pid), 0) << procs_[0].Err();
  const int64_t later = ApplyThrough(b).first;
  ASSERT_GT(later, 0);
  const std::string missed =
      QueryValue(s_.dsn(),
                 "SELECT string_agg(id::text, ',' ORDER BY id) FROM driftless.events "
                 "WHERE id > " +
                     std::to_string(last));
  ASSERT_NE(missed.find(','), std::string::npos) << missed;  // a run's several events
  const uint16_t a2 = Serve("a2");
  ASSERT_NE(a2, 0) << procs_.back().Err();
  RawClient resumed = OpenStream(a2, "Last-Event-ID: " + std::to_string(last) + "\r\n");
  const std::string newest = missed.substr(missed.rfind(',') + 1);
  ASSERT_TRUE(resumed.ReadUntil("\nid: " + newest + "\n", kStreamPatience)) << resumed.received();
  EXPECT_EQ(resumed.received().find("event: reset"), std::string::npos) << resumed.received();
  std::string got;
  for (int64_t id : EventIds(resumed.received())) {
    if (!got.empty()) got += ',';
    got += std::to_string(id);
  }
  // Exactly what was missed, first to last (a2's own first events may follow).
  EXPECT_EQ(got.substr(0, missed.size()), missed) << resumed.received();
  EXPECT_NE(resumed.received().find("\"run_id\":" + std::to_string(later)), std::string::npos);
}

}  // namespace
}  // namespace driftless::test
