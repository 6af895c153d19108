// `driftless serve`'s event stream as a client follows it: the real binary following a
// repository reached by file://, an environment whose drift policy is enforce, a hand edit of a
// managed file reverted by the server's drift watch, and the drift.detected / drift.resolved
// events read off GET /api/v1/events; then a client that went away and comes back with
// Last-Event-ID gets exactly what it missed. It waits only for what the server reports.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "e2e/harness.h"
#include "server/http/testing/raw_client.h"

namespace driftless::test {
namespace {

using server::http::testing::RawClient;
using namespace std::chrono_literals;

// The `id:` values of the events in an SSE text, in order, with their `event:` types.
std::vector<std::pair<int64_t, std::string>> Events(const std::string& text) {
  std::vector<std::pair<int64_t, std::string>> out;
  size_t at = 0;
  while ((at = text.find("\nid: ", at)) != std::string::npos) {
    size_t end = text.find('\n', at + 1);
    if (end == std::string::npos) break;
    int64_t id = std::stoll(text.substr(at + 5, end - at - 5));
    std::string type;
    if (text.compare(end + 1, 7, "event: ") == 0) {
      size_t type_end = text.find('\n', end + 1);
      type = text.substr(end + 8, type_end - end - 8);
    }
    out.emplace_back(id, type);
    at = end;
  }
  return out;
}

class ServeEventsTest : public ServeFixture {
 protected:
  void SetUp() override {
    WriteApp("one");
    CommitFirst(
        "  - branch: main\n    name: production\n    sync: auto\n    policy: {drift: enforce}\n");
  }
  RawClient OpenStream(uint16_t port, const std::string& token, const std::string& extra = "") {
    return OpenEventStream(port, token, extra);
  }
  void HandEdit(const std::string& content) {
    std::ofstream(box_.root() + "/production/app.conf", std::ios::trunc) << content;
  }
  bool Reverted() {
    return PollUntil([&] { return ReadFile(box_.root() + "/production/app.conf") == "one"; });
  }
};

TEST_F(ServeEventsTest, AnEnforcedHandEditIsRevertedOnTheStreamAndAResumeGetsExactlyTheMissed) {
  setenv("DRIFTLESS_CACHE", (box_.dir() + "/cache").c_str(), 1);
  const std::string token = Token("viewer", "follower");
  ASSERT_FALSE(token.empty());
  proc_ = Spawn(box_,
                {"serve", "--repo", "file://" + box_.dir() + "/origin.git", "--listen",
                 "127.0.0.1:0", "--poll", "200ms"},
                "serve");
  uint16_t port = ServePort(proc_);
  ASSERT_NE(port, 0) << proc_.Err();
  ASSERT_TRUE(ErrHas("\"msg\":\"run applied\"")) << proc_.Err();
  ASSERT_EQ(ReadFile(box_.root() + "/production/app.conf"), "one");

  // A hand edit while a client follows the stream: reverted, and both drift events arrive.
  RawClient first = OpenStream(port, token);
  HandEdit("edited by hand");
  ASSERT_TRUE(first.ReadUntil("event: drift.resolved\n", kStreamPatience)) << first.received();
  EXPECT_TRUE(Reverted()) << proc_.Err();
  std::vector<std::pair<int64_t, std::string>> seen = Events(first.received());
  ASSERT_FALSE(seen.empty());
  bool detected = false;
  for (const auto& [id, type] : seen) detected = detected || type == "drift.detected";
  EXPECT_TRUE(detected) << first.received();
  EXPECT_NE(first.received().find("\"resource\":\"file.file/app\""), std::string::npos)
      << first.received();
  // The revert is a run of its own: a remediation by the controller, with its plan, applied
  // before drift.resolved was told, and its statuses on the stream.
  HttpReply runs = HttpRequest(port, "GET", "/api/v1/environments/production/runs",
                               {"Authorization: Bearer " + token});
  ASSERT_EQ(runs.status, 200) << runs.body;
  Json listed = ParseJsonOrFail(runs.body, "GET /api/v1/environments/production/runs");
  const Json* items = listed.Find("items");
  ASSERT_NE(items, nullptr) << runs.body;
  ASSERT_FALSE(items->items.empty()) << runs.body;
  const Json& fix = items->items.front();  // newest first
  EXPECT_EQ(fix.Str("action"), "remediation") << runs.body;
  EXPECT_EQ(fix.Str("status"), "applied") << runs.body;
  EXPECT_EQ(fix.Str("author"), "controller") << runs.body;
  EXPECT_FALSE(fix.Str("plan_hash").empty()) << runs.body;
  EXPECT_GT(fix.Int("apply_id"), 0) << runs.body;
  EXPECT_NE(first.received().find("\"action\":\"remediation\""), std::string::npos)
      << first.received();
  const int64_t last = seen.back().first;
  first = std::move(*RawClient::ConnectTcp(port));  // the client goes away

  // While nobody follows: another hand edit, reverted again.
  HandEdit("edited again");
  ASSERT_TRUE(Reverted()) << proc_.Err();

  // The client comes back with the last id it saw.
  RawClient again = OpenStream(port, token, "Last-Event-ID: " + std::to_string(last) + "\r\n");
  ASSERT_TRUE(again.ReadUntil("event: drift.resolved\n", kStreamPatience)) << again.received();
  std::vector<std::pair<int64_t, std::string>> resumed = Events(again.received());
  ASSERT_FALSE(resumed.empty());
  // Exactly the events after `last`, as the log has them: the JSON page is the reference.
  HttpReply page =
      HttpRequest(port, "GET", "/api/v1/events?limit=1000&after=" + std::to_string(last),
                  {"Authorization: Bearer " + token});
  ASSERT_EQ(page.status, 200) << page.body;
  Json doc = ParseJsonOrFail(page.body, "GET /api/v1/events");
  std::vector<std::pair<int64_t, std::string>> logged;
  const Json* events = doc.Find("events");
  ASSERT_NE(events, nullptr) << page.body;
  for (const Json& e : events->items) {
    if (e.Int("id") > resumed.back().first) break;
    logged.emplace_back(e.Int("id"), e.Str("type"));
  }
  EXPECT_EQ(resumed, logged) << again.received() << "\n" << page.body;
  EXPECT_GT(resumed.front().first, last);
  size_t types = 0;
  for (const auto& [id, type] : resumed)
    types += type == "drift.detected" || type == "drift.resolved";
  EXPECT_GE(types, 2u) << again.received();

  kill(proc_.pid, SIGTERM);
  EXPECT_EQ(Wait(proc_.pid), 0) << proc_.Err();
  proc_.pid = -1;
}

TEST_F(ServeEventsTest, ABadEventRetentionIsRefusedNamingTheFlag) {
  for (const char* bad : {"soon", "30s"}) {
    RunResult r = box_.Run(
        {"serve", "--repo", box_.repo(), "--listen", "127.0.0.1:0", "--event-retention", bad});
    EXPECT_EQ(r.exit_code, 1) << Summary(r);
    EXPECT_NE(r.err.find("--event-retention"), std::string::npos) << r.err;
  }
}

}  // namespace
}  // namespace driftless::test
