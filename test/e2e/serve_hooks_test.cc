// The Git webhook of `driftless serve` as a user wires it: the real binary following a
// repository reached by file://, polling only every hour, so that only a hook can make it fetch
// within a test. It waits only for what the server reports (its JSON log lines, its answers, the
// files it writes, state), never for a while.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cstdlib>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/hash.h"
#include "e2e/harness.h"
#include "server/http/testing/raw_client.h"

namespace driftless::test {
namespace {

constexpr char kSecret[] = "a webhook secret";

class ServeHooksTest : public ServeFixture {
 protected:
  // Commits what is in repo() and pushes `branch` to origin.git.
  void CommitAndPush(const std::string& message, const std::string& branch = "main") {
    Git(box_.repo(), "add -A");
    Git(box_.repo(), "commit -q -m '" + message + "'");
    Git(box_.repo(), "push -q '" + box_.dir() + "/origin.git' " + branch);
  }
  void Init(const std::string& environments) {
    setenv("DRIFTLESS_CACHE", (box_.dir() + "/cache").c_str(), 1);
    CommitFirst(environments);
    secret_file_ = box_.dir() + "/webhook-secret";
    FILE* f = std::fopen(secret_file_.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fprintf(f, "%s\n", kSecret);
    std::fclose(f);
    ASSERT_EQ(chmod(secret_file_.c_str(), 0600), 0);
  }
  // Starts the server (a new process each time, on the same state); its port from its log.
  // `with_secret` false: without --webhook-secret-file.
  void StartServer(const std::string& tag, bool with_secret = true) {
    std::vector<std::string> args = {
        "serve",  "--repo", "file://" + box_.dir() + "/origin.git", "--listen", "127.0.0.1:0",
        "--poll", "1h"};
    if (with_secret) args.insert(args.end(), {"--webhook-secret-file", secret_file_});
    proc_ = Spawn(box_, args, tag);
    ASSERT_TRUE(ErrHas("\"msg\":\"listening\"")) << proc_.Err();
    port_ = ServePort(proc_);
    ASSERT_GT(port_, 0) << proc_.Err();
  }
  // Posts a GitHub-style push hook signed with `key`; its status (0: no answer).
  int PostHook(const std::string& key, const std::string& delivery) {
    const std::string body =
        "{\"ref\":\"refs/heads/main\",\"after\":\"0000000000000000000000000000000000000000\"}";
    std::string raw =
        "POST /api/v1/hooks/git HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        "X-GitHub-Event: push\r\nX-GitHub-Delivery: " +
        delivery + "\r\nX-Hub-Signature-256: sha256=" + HmacSha256Hex(key, body) +
        "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
        "\r\n\r\n" + body;
    auto client = server::http::testing::RawClient::ConnectTcp(port_);
    if (!client.ok() || !client->Send(raw)) return 0;
    std::optional<server::http::testing::RawResponse> r =
        client->ReadResponse(std::chrono::seconds(120));
    last_body_ = r.has_value() ? r->body : "";
    return r.has_value() ? r->status : 0;
  }

  std::string secret_file_;
  uint16_t port_ = 0;
  std::string last_body_;
};

TEST_F(ServeHooksTest, ASignedHookAppliesAPushLongBeforeThePollAndABadOneDoesNothing) {
  Init("  - branch: main\n    name: production\n    sync: auto\n");
  WriteApp("one");
  CommitAndPush("one");
  StartServer("serve");
  ASSERT_TRUE(ErrHas("\"msg\":\"run applied\"")) << proc_.Err();
  EXPECT_EQ(ReadFile(box_.root() + "/production/app.conf"), "one");
  ASSERT_EQ(CountOf(proc_.Err(), "\"msg\":\"run queued\""), 1u) << proc_.Err();

  WriteApp("two");
  CommitAndPush("two");
  // A hook signed with another secret: 401, audited, and nothing is fetched.
  EXPECT_EQ(PostHook("not the secret", "d-1"), 401) << last_body_;
  EXPECT_NE(last_body_.find("bad_signature"), std::string::npos) << last_body_;
  EXPECT_NE(StateBytes(box_).find("webhook.git"), std::string::npos);
  EXPECT_EQ(CountOf(proc_.Err(), "\"msg\":\"run queued\""), 1u) << proc_.Err();
  EXPECT_EQ(ReadFile(box_.root() + "/production/app.conf"), "one");

  // The signed hook: 202, and the commit is applied though the next poll is an hour away.
  EXPECT_EQ(PostHook(kSecret, "d-2"), 202) << last_body_;
  ASSERT_TRUE(ErrHas("\"msg\":\"run applied\"", 2)) << proc_.Err();
  EXPECT_EQ(ReadFile(box_.root() + "/production/app.conf"), "two");
  // The same delivery again: said so, and no fetch (nothing new would run anyway).
  EXPECT_EQ(PostHook(kSecret, "d-2"), 200) << last_body_;
  EXPECT_NE(last_body_.find("\"status\":\"duplicate\""), std::string::npos) << last_body_;
  // Exactly two runs were queued: the first commit's and the one after the signed hook.
  EXPECT_EQ(CountOf(proc_.Err(), "\"msg\":\"run queued\""), 2u) << proc_.Err();
  std::vector<Json> applies = History(box_, "production");
  ASSERT_EQ(applies.size(), 2u);
  kill(proc_.pid, SIGTERM);
  EXPECT_EQ(Wait(proc_.pid), 0) << proc_.Err();
  proc_.pid = -1;
}

TEST_F(ServeHooksTest, ADeletedBranchIsDestroyedAndAProtectedOneKept) {
  Init(
      "  - branch: main\n    name: production\n    sync: auto\n"
      "  - branch: \"feature/*\"\n    name: \"f-{1}\"\n    sync: auto\n"
      "  - branch: \"release/*\"\n    name: \"r-{1}\"\n    sync: auto\n    protected: true\n");
  WriteApp("one");
  CommitAndPush("one");
  Git(box_.repo(), "branch feature/a");
  Git(box_.repo(), "branch release/one");
  Git(box_.repo(), "push -q '" + box_.dir() + "/origin.git' feature/a release/one");
  const std::string approver = Token("editor", "approver");
  StartServer("serve");
  // release/one is protected: its apply waits for an approval.
  int64_t waiting = 0;
  ASSERT_TRUE(PollUntil([&] {
    HttpReply r =
        ApiCall(port_, "GET", "/api/v1/environments/r-one/runs?status=awaiting_approval", approver);
    Json page;
    if (r.status != 200 || !ReadJson(r.body, &page)) return false;
    const Json* items = page.Find("items");
    if (items == nullptr || items->items.empty()) return false;
    waiting = items->items[0].Int("id");
    return true;
  })) << proc_.Err();
  ASSERT_EQ(ApiCall(port_, "POST", "/api/v1/runs/" + std::to_string(waiting) + "/approve", approver)
                .status,
            200);
  ASSERT_TRUE(ErrHas("\"msg\":\"run applied\"", 3)) << proc_.Err();
  ASSERT_EQ(ReadFile(box_.root() + "/f-a/app.conf"), "one");
  ASSERT_EQ(ReadFile(box_.root() + "/r-one/app.conf"), "one");

  Git(box_.dir() + "/origin.git", "update-ref -d refs/heads/feature/a");
  Git(box_.dir() + "/origin.git", "update-ref -d refs/heads/release/one");
  EXPECT_EQ(PostHook(kSecret, "gone-1"), 202) << last_body_;
  ASSERT_TRUE(ErrHas("\"msg\":\"protected environment kept\"")) << proc_.Err();
  ASSERT_TRUE(ErrHas("\"action\":\"destroy\",\"commit\":\"\",\"environment\":\"f-a\","))
      << proc_.Err();
  ASSERT_TRUE(PollUntil([&] { return !Exists(box_.root() + "/f-a/app.conf"); })) << proc_.Err();
  ASSERT_TRUE(PollUntil([&] {
    const std::string err = proc_.Err();
    size_t at = err.find("\"action\":\"destroy\"");
    return at != std::string::npos && err.find("\"status\":\"applied\"", at) != std::string::npos;
  })) << proc_.Err();
  // The protected environment is untouched and reported (in the log and the event log).
  EXPECT_EQ(ReadFile(box_.root() + "/r-one/app.conf"), "one");
  EXPECT_NE(StateBytes(box_).find("env.kept"), std::string::npos);
  EXPECT_EQ(CountOf(proc_.Err(), "\"msg\":\"protected environment kept\""), 1u);
  // The destroy is in history, after the apply.
  std::vector<Json> f_a = History(box_, "f-a");
  ASSERT_EQ(f_a.size(), 2u);
  EXPECT_EQ(History(box_, "r-one").size(), 1u);
  EXPECT_EQ(History(box_, "production").size(), 1u);
}

TEST_F(ServeHooksTest, KilledDuringAnApplyAndRestartedItConverges) {
  Init("  - branch: main\n    name: production\n    sync: auto\n");
  // Enough files for the apply to be caught in its middle.
  constexpr int kFiles = 600;
  auto write_files = [&](const std::string& gen) {
    for (int i = 0; i < kFiles; ++i) {
      box_.WriteRepoFile("f" + std::to_string(i) + ".yaml",
                         "kind: file.file\nname: f" + std::to_string(i) +
                             "\ntarget: host\nspec: {path: f" + std::to_string(i) +
                             ".conf, content: \"" + gen + "\"}\n");
    }
  };
  write_files("one");
  CommitAndPush("one");
  StartServer("serve");
  ASSERT_TRUE(ErrHas("\"msg\":\"run applied\"")) << proc_.Err();
  write_files("two");
  CommitAndPush("two");
  // The server is frozen before the hook is sent, then stepped through the fetch, the plan and
  // the apply in small quanta of its own CPU time until it is caught in the middle of the apply.
  ASSERT_TRUE(Freeze(proc_.pid));
  int hook_status = 0;
  std::thread hook([&] { hook_status = PostHook(kSecret, "k-1"); });
  Thaw(proc_.pid);
  // Up to the apply, quanta of 4 ticks; then one tick at a time until history shows the apply
  // with changes done and changes pending, outside a write transaction of the state.
  const int pid = proc_.pid;
  ApplyProgress progress;
  const bool caught = StepUntil(pid, [&] {
    if (CountOf(proc_.Err(), "\"msg\":\"run applying\"") < 2) return 4;
    progress = ProgressOf(box_, "production", pid);
    const bool middle = progress.status == "running" && progress.done > 0 && progress.pending > 0;
    const bool writing = InStateWrite(box_, pid);
    return middle && !writing ? 0 : 1;
  });
  kill(proc_.pid, SIGKILL);
  hook.join();
  ASSERT_TRUE(caught) << progress.status << " " << progress.done << "/" << progress.pending << "\n"
                      << proc_.Err();
  EXPECT_EQ(hook_status, 202) << last_body_;
  EXPECT_EQ(Wait(proc_.pid), -SIGKILL);
  proc_.pid = -1;
  int wrong = 0;
  for (int i = 0; i < kFiles; ++i) {
    wrong += ReadFile(box_.root() + "/production/f" + std::to_string(i) + ".conf") != "two";
  }
  EXPECT_GT(wrong, 0);
  EXPECT_LT(wrong, kFiles);

  // Restarted on the same state: the run it left is interrupted, and the commit is applied.
  StartServer("serve2");
  ASSERT_TRUE(ErrHas("\"msg\":\"run interrupted\"")) << proc_.Err();
  ASSERT_TRUE(ErrHas("\"msg\":\"run applied\"")) << proc_.Err();
  for (int i = 0; i < kFiles; ++i) {
    EXPECT_EQ(ReadFile(box_.root() + "/production/f" + std::to_string(i) + ".conf"), "two") << i;
  }
  // History says what happened: the first apply, the killed one, the one that converged.
  std::vector<Json> applies = History(box_, "production");
  ASSERT_EQ(applies.size(), 3u);
  EXPECT_EQ(applies[0].Str("status"), "succeeded");
  EXPECT_NE(applies[1].Str("status"), "succeeded");
  EXPECT_EQ(applies[2].Str("status"), "succeeded");
  EXPECT_NE(proc_.Err().find("the server stopped while this run was applying"), std::string::npos)
      << proc_.Err();
  kill(proc_.pid, SIGTERM);
  EXPECT_EQ(Wait(proc_.pid), 0) << proc_.Err();
  proc_.pid = -1;
}

TEST_F(ServeHooksTest, ASecretFileMustBePrivateAndWithoutOneHooksAreRefused) {
  Init("  - branch: main\n    name: production\n    sync: auto\n");
  const std::vector<std::string> serve = {
      "serve",     "--repo",      "file://" + box_.dir() + "/origin.git",
      "--listen",  "127.0.0.1:0", "--webhook-secret-file",
      secret_file_};
  ASSERT_EQ(chmod(secret_file_.c_str(), 0644), 0);
  RunResult open = box_.Run(serve);
  EXPECT_EQ(open.exit_code, 1) << Summary(open);
  EXPECT_NE(open.err.find(secret_file_ + ": every user of this machine can read it"),
            std::string::npos)
      << Summary(open);
  FILE* f = std::fopen(secret_file_.c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fclose(f);
  ASSERT_EQ(chmod(secret_file_.c_str(), 0600), 0);
  RunResult empty = box_.Run(serve);
  EXPECT_EQ(empty.exit_code, 1) << Summary(empty);
  EXPECT_NE(empty.err.find(secret_file_ + ": is empty"), std::string::npos) << Summary(empty);

  StartServer("serve", false);
  ASSERT_TRUE(ErrHas("\"msg\":\"run applied\"")) << proc_.Err();
  EXPECT_EQ(PostHook(kSecret, "n-1"), 403) << last_body_;
  EXPECT_NE(last_body_.find("no webhook secret is configured"), std::string::npos) << last_body_;
  EXPECT_NE(last_body_.find("--webhook-secret-file"), std::string::npos) << last_body_;
}

}  // namespace
}  // namespace driftless::test
