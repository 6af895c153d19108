// The REST API of `driftless serve` as a user drives it: the real binary follows a repository
// reached by file://, a sync-manual branch is planned and waits, and an editor's token (made
// by `driftless token create`) applies it through POST /api/v1/environments/{env}/runs; the
// run is then `applied` in GET /api/v1/runs/{id}, and the audit log says who asked. It waits
// only for what the server reports (its log lines, its API), never for a while.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "e2e/harness.h"

namespace driftless::test {
namespace {

class ServeApiTest : public ServeFixture {
 protected:
  void SetUp() override {
    WriteApp("one");
    CommitFirst("  - branch: main\n    name: staging\n    sync: manual\n");
  }
};

TEST_F(ServeApiTest, AnEditorAppliesAPlannedManualBranchThroughTheApi) {
  setenv("DRIFTLESS_CACHE", (box_.dir() + "/cache").c_str(), 1);
  const std::string editor = Token("editor", "ci");
  const std::string viewer = Token("viewer", "dash");
  const std::string admin = Token("admin", "root");
  ASSERT_FALSE(editor.empty());
  proc_ = Spawn(box_,
                {"serve", "--repo", "file://" + box_.dir() + "/origin.git", "--listen",
                 "127.0.0.1:0", "--poll", "1h"},
                "serve");
  ASSERT_TRUE(PollUntil([&] { return CountOf(proc_.Err(), "\"msg\":\"listening\"") > 0; }))
      << proc_.Err();
  const uint16_t port = ServePort(proc_);
  ASSERT_GT(port, 0) << proc_.Err();
  // The sync-manual branch is planned and waits: nothing is written.
  Json runs;
  ASSERT_TRUE(PollUntil([&] {
    HttpReply r = ApiCall(port, "GET", "/api/v1/environments/staging/runs", viewer);
    if (r.status != 200 || !ReadJson(r.body, &runs)) return false;
    const Json* items = runs.Find("items");
    return items != nullptr && !items->items.empty() && items->items[0].Str("status") == "planned";
  })) << proc_.Err();
  EXPECT_FALSE(Exists(box_.root() + "/staging/app.conf"));
  Json env = ParseJsonOrFail(ApiCall(port, "GET", "/api/v1/environments/staging", viewer).body,
                             "GET environment");
  EXPECT_EQ(env.Str("sync"), "manual");
  EXPECT_EQ(env.Str("branch"), "main");
  EXPECT_TRUE(env.IsNull("applied_commit"));
  // No token, and a viewer's, may not apply; nothing is queued for them.
  EXPECT_EQ(ApiCall(port, "POST", "/api/v1/environments/staging/runs", "", "{\"action\":\"apply\"}")
                .status,
            401);
  EXPECT_EQ(
      ApiCall(port, "POST", "/api/v1/environments/staging/runs", viewer, "{\"action\":\"apply\"}")
          .status,
      403);
  // The editor applies it.
  HttpReply asked =
      ApiCall(port, "POST", "/api/v1/environments/staging/runs", editor, "{\"action\":\"apply\"}");
  ASSERT_EQ(asked.status, 202) << asked.body;
  Json run = ParseJsonOrFail(asked.body, "POST runs");
  const int64_t id = run.Int("id");
  ASSERT_GT(id, 0);
  EXPECT_EQ(run.Str("author"), "ci");
  Json shown;
  ASSERT_TRUE(PollUntil([&] {
    HttpReply r = ApiCall(port, "GET", "/api/v1/runs/" + std::to_string(id), viewer);
    return r.status == 200 && ReadJson(r.body, &shown) && shown.Str("status") == "applied";
  })) << shown.Str("status")
      << " " << shown.Str("message") << "\n"
      << proc_.Err();
  EXPECT_NE(shown.Str("plan_text").find("file.file/app"), std::string::npos)
      << shown.Str("plan_text");
  EXPECT_EQ(ReadFile(box_.root() + "/staging/app.conf"), "one");
  env = ParseJsonOrFail(ApiCall(port, "GET", "/api/v1/environments/staging", viewer).body,
                        "GET environment");
  EXPECT_EQ(env.Int("commits_behind"), 0);
  EXPECT_FALSE(env.IsNull("applied_commit"));
  // The audit log (admin) has the editor's run and the viewer's refusal.
  HttpReply audit = ApiCall(port, "GET", "/api/v1/audit?limit=500", admin);
  ASSERT_EQ(audit.status, 200) << audit.body;
  EXPECT_EQ(ApiCall(port, "GET", "/api/v1/audit", editor).status, 403);
  Json entries = ParseJsonOrFail(audit.body, "GET audit");
  bool created = false, refused = false;
  for (const Json& e : entries.Find("items")->items) {
    if (e.Str("who") == "ci" && e.Str("action") == "run.create" && e.Int("run_id") == id) {
      created = true;
    }
    if (e.Str("who") == "dash" && e.Str("result") == "refused") refused = true;
  }
  EXPECT_TRUE(created) << audit.body;
  EXPECT_TRUE(refused) << audit.body;
  kill(proc_.pid, SIGTERM);
  EXPECT_EQ(Wait(proc_.pid), 0) << proc_.Err();
  proc_.pid = -1;
}

}  // namespace
}  // namespace driftless::test
