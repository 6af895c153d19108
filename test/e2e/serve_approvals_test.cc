// Approvals of the exact plan, as users meet them: the real `driftless serve` follows a
// repository reached by file://, with real tokens made by `driftless token create`. A run of an
// environment whose rule says `approvals: N` (or `protected: true`) plans and waits in
// awaiting_approval until N people other than its author approve its plan hash; a new commit,
// or a change of live objects that changes the plan, voids the approvals; an enforced drift on a
// protected environment waits for approval too. Every wait is for what the server reports (its
// API, its log lines, the files it writes), never for a while.

#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>
#include <string>

#include "e2e/harness.h"

namespace driftless::test {
namespace {

class ServeApprovalsTest : public ServeFixture {
 protected:
  void SetUp() override {
    setenv("DRIFTLESS_CACHE", (box_.dir() + "/cache").c_str(), 1);
    WriteApp("one");
  }
  void TearDown() override {
    unsetenv("DRIFTLESS_CACHE");
    ServeFixture::TearDown();
  }
  // Starts the server on the repository (polling often, so that a pushed commit is seen).
  void Serve() {
    proc_ = Spawn(box_, {"serve", "--repo", Origin(), "--listen", "127.0.0.1:0", "--poll", "200ms"},
                  "serve");
    port_ = ServePort(proc_);
    ASSERT_NE(port_, 0) << proc_.Err();
  }
  HttpReply Call(const std::string& method, const std::string& target, const std::string& token,
                 const std::string& body = "") {
    return ApiCall(port_, method, target, token, body);
  }
  // The newest run of `env` once it has `status` (its JSON), or a null Json after the patience.
  Json WaitNewest(const std::string& env, const std::string& status, int64_t newer_than = 0) {
    Json found;
    PollUntil([&] {
      HttpReply r = Call("GET", "/api/v1/environments/" + env + "/runs", reader_);
      Json page;
      if (r.status != 200 || !ReadJson(r.body, &page)) return false;
      const Json* items = page.Find("items");
      if (items == nullptr || items->items.empty()) return false;
      const Json& newest = items->items.front();
      if (newest.Int("id") <= newer_than || newest.Str("status") != status) return false;
      found = newest;
      return true;
    });
    return found;
  }
  // Run `id` once it has `status`, with its plan and approvals.
  Json WaitRun(int64_t id, const std::string& status) {
    Json found;
    PollUntil([&] {
      HttpReply r = Call("GET", "/api/v1/runs/" + std::to_string(id), reader_);
      return r.status == 200 && ReadJson(r.body, &found) && found.Str("status") == status;
    });
    return found;
  }
  HttpReply Decide(int64_t id, const std::string& verb, const std::string& token,
                   const std::string& comment = "") {
    return Call("POST", "/api/v1/runs/" + std::to_string(id) + "/" + verb, token,
                comment.empty() ? "" : "{\"comment\":\"" + comment + "\"}");
  }
  // Commits what repo() holds and pushes main to origin.git.
  void Push(const std::string& message) {
    Git(box_.repo(), "add -A");
    Git(box_.repo(), "commit -q -m '" + message + "'");
    Git(box_.repo(), "push -q '" + box_.dir() + "/origin.git' main");
  }
  std::string App(const std::string& env) {
    return ReadFile(box_.root() + "/" + env + "/app.conf");
  }
  // The audit entries (admin's view), newest first.
  std::vector<Json> Audit() {
    HttpReply r = Call("GET", "/api/v1/audit?limit=500", admin_);
    EXPECT_EQ(r.status, 200) << r.body;
    Json page = ParseJsonOrFail(r.body, "GET /api/v1/audit");
    const Json* items = page.Find("items");
    return items == nullptr ? std::vector<Json>() : items->items;
  }
  void MakeTokens() {
    reader_ = Token("viewer", "val");
    alice_ = Token("editor", "alice");
    bob_ = Token("editor", "bob");
    admin_ = Token("admin", "root");
  }

  uint16_t port_ = 0;
  std::string reader_, alice_, bob_, admin_;
};

TEST_F(ServeApprovalsTest, AProtectedAutoSyncedBranchWaitsForTwoApprovalsByOthersThenApplies) {
  CommitFirst(
      "  - branch: main\n    name: production\n    protected: true\n    approvals: 2\n"
      "    sync: auto\n");
  MakeTokens();
  const std::string elsewhere = Token("admin", "other", "staging-*");
  // An editor's token limited to planning.
  RunResult made = box_.Run(
      {"token", "create", "--role", "editor", "--name", "planner", "--rights", "read,plan"});
  ASSERT_EQ(made.exit_code, 0) << Summary(made);
  EXPECT_NE(made.out.find("limited to read,plan"), std::string::npos) << made.out;
  std::string planner = made.out;
  while (!planner.empty() && planner.back() == '\n') planner.pop_back();
  planner = planner.substr(planner.rfind('\n') + 1);
  Serve();
  // sync: auto on a protected environment plans and waits; nothing is written.
  Json run = WaitNewest("production", "awaiting_approval");
  ASSERT_GT(run.Int("id"), 0) << proc_.Err();
  const int64_t id = run.Int("id");
  EXPECT_EQ(run.Str("author"), "controller");
  EXPECT_EQ(run.Str("action"), "apply");
  const std::string hash = run.Str("plan_hash");
  ASSERT_FALSE(hash.empty());
  EXPECT_FALSE(Exists(box_.root() + "/production/app.conf"));
  // A viewer, and an admin scoped to other environments, may not approve: refused, audited.
  EXPECT_EQ(Decide(id, "approve", reader_).status, 403);
  EXPECT_EQ(Decide(id, "approve", elsewhere).status, 403);
  HttpReply narrow = Decide(id, "approve", planner);
  EXPECT_EQ(narrow.status, 403) << narrow.body;
  EXPECT_NE(narrow.body.find("limited to the rights read,plan"), std::string::npos) << narrow.body;
  // One approval is not two.
  HttpReply first = Decide(id, "approve", alice_, "looks right");
  ASSERT_EQ(first.status, 200) << first.body;
  Json after = ParseJsonOrFail(first.body, "approve");
  EXPECT_EQ(after.Str("status"), "awaiting_approval");
  EXPECT_EQ(after.Int("approvals_required"), 2);
  ASSERT_NE(after.Find("approvals"), nullptr);
  EXPECT_EQ(after.Find("approvals")->items.size(), 1u);
  // The same person twice is still one.
  HttpReply twice = Decide(id, "approve", alice_);
  EXPECT_EQ(twice.status, 409) << twice.body;
  EXPECT_NE(twice.body.find("already"), std::string::npos) << twice.body;
  EXPECT_EQ(WaitRun(id, "awaiting_approval").Str("status"), "awaiting_approval");
  EXPECT_FALSE(Exists(box_.root() + "/production/app.conf"));
  // The second distinct approver lets it apply.
  HttpReply second = Decide(id, "approve", bob_);
  ASSERT_EQ(second.status, 200) << second.body;
  Json applied = WaitRun(id, "applied");
  ASSERT_EQ(applied.Str("status"), "applied") << applied.Str("message") << "\n" << proc_.Err();
  EXPECT_EQ(App("production"), "one");
  EXPECT_EQ(applied.Str("plan_hash"), hash);
  const Json* approvals = applied.Find("approvals");
  ASSERT_NE(approvals, nullptr);
  ASSERT_EQ(approvals->items.size(), 2u);
  EXPECT_EQ(approvals->items[0].Str("who"), "alice");
  EXPECT_EQ(approvals->items[0].Str("comment"), "looks right");
  EXPECT_EQ(approvals->items[0].Str("plan_hash"), hash);
  EXPECT_EQ(approvals->items[1].Str("who"), "bob");
  // History says who approved the apply, with the comments: the API and `history show`.
  const int64_t apply_id = applied.Int("apply_id");
  ASSERT_GT(apply_id, 0);
  HttpReply entry =
      Call("GET", "/api/v1/environments/production/history/" + std::to_string(apply_id), reader_);
  ASSERT_EQ(entry.status, 200) << entry.body;
  Json record = ParseJsonOrFail(entry.body, "GET history entry");
  ASSERT_NE(record.Find("run"), nullptr) << entry.body;
  EXPECT_EQ(record.Find("run")->Int("id"), id);
  EXPECT_EQ(record.Find("run")->Find("approvals")->items.size(), 2u) << entry.body;
  RunResult shown = box_.Run({"history", "show", std::to_string(apply_id)});
  EXPECT_EQ(shown.exit_code, 0) << Summary(shown);
  EXPECT_NE(shown.out.find("queued by controller, plan " + hash.substr(0, 12)), std::string::npos)
      << shown.out;
  EXPECT_NE(shown.out.find("approved: alice at "), std::string::npos) << shown.out;
  EXPECT_NE(shown.out.find(": looks right"), std::string::npos) << shown.out;
  EXPECT_NE(shown.out.find("approved: bob at "), std::string::npos) << shown.out;
  // A finished run takes no more decisions.
  EXPECT_EQ(Decide(id, "approve", admin_).status, 409);
  // The audit log has both approvals with the plan hash, and the refusals.
  int approved = 0;
  bool viewer_refused = false, scoped_refused = false, planner_refused = false;
  for (const Json& e : Audit()) {
    if (e.Str("action") == "run.approve" && e.Str("result") == "allowed" && e.Int("run_id") == id &&
        e.Str("plan_hash") == hash)
      ++approved;
    if (e.Str("who") == "val" && e.Str("result") == "refused" &&
        e.Str("action") == "request.approve")
      viewer_refused = true;
    if (e.Str("who") == "other" && e.Str("result") == "refused") scoped_refused = true;
    if (e.Str("who") == "planner" && e.Str("result") == "refused") planner_refused = true;
  }
  EXPECT_EQ(approved, 2);
  EXPECT_TRUE(viewer_refused);
  EXPECT_TRUE(scoped_refused);
  EXPECT_TRUE(planner_refused);
}

TEST_F(ServeApprovalsTest, TheAuthorCannotApproveTheirOwnRunAndARejectionCancelsIt) {
  CommitFirst("  - branch: main\n    name: staging\n    approvals: 1\n    sync: manual\n");
  MakeTokens();
  Serve();
  ASSERT_GT(WaitNewest("staging", "planned").Int("id"), 0) << proc_.Err();
  auto queue = [&] {
    HttpReply r =
        Call("POST", "/api/v1/environments/staging/runs", alice_, "{\"action\":\"apply\"}");
    EXPECT_EQ(r.status, 202) << r.body;
    return ParseJsonOrFail(r.body, "POST runs").Int("id");
  };
  const int64_t id = queue();
  ASSERT_EQ(WaitRun(id, "awaiting_approval").Str("status"), "awaiting_approval") << proc_.Err();
  HttpReply own = Decide(id, "approve", alice_);
  EXPECT_EQ(own.status, 403) << own.body;
  EXPECT_NE(own.body.find("author"), std::string::npos) << own.body;
  EXPECT_EQ(Decide(id, "reject", alice_).status, 403);
  // Another editor rejects it: canceled, with who and why.
  HttpReply no = Decide(id, "reject", bob_, "not on a Friday");
  ASSERT_EQ(no.status, 200) << no.body;
  Json canceled = WaitRun(id, "canceled");
  EXPECT_EQ(canceled.Str("status"), "canceled");
  EXPECT_NE(canceled.Str("message").find("rejected by bob: not on a Friday"), std::string::npos)
      << canceled.Str("message");
  EXPECT_FALSE(Exists(box_.root() + "/staging/app.conf"));
  // Queued again and approved by someone else: applied.
  const int64_t again = queue();
  ASSERT_EQ(WaitRun(again, "awaiting_approval").Str("status"), "awaiting_approval");
  ASSERT_EQ(Decide(again, "approve", bob_).status, 200);
  EXPECT_EQ(WaitRun(again, "applied").Str("status"), "applied") << proc_.Err();
  EXPECT_EQ(App("staging"), "one");
}

TEST_F(ServeApprovalsTest, ANewCommitVoidsTheApprovalsAndSupersedesTheWaitingRun) {
  CommitFirst("  - branch: main\n    name: production\n    approvals: 2\n    sync: auto\n");
  MakeTokens();
  Serve();
  const Json first = WaitNewest("production", "awaiting_approval");
  const int64_t old_id = first.Int("id");
  ASSERT_GT(old_id, 0) << proc_.Err();
  ASSERT_EQ(Decide(old_id, "approve", alice_).status, 200);
  // A new commit: the waiting run is superseded, its approval counts for nothing.
  WriteApp("two");
  Push("two");
  const Json next = WaitNewest("production", "awaiting_approval", old_id);
  ASSERT_GT(next.Int("id"), old_id) << proc_.Err();
  EXPECT_NE(next.Str("plan_hash"), first.Str("plan_hash"));
  EXPECT_EQ(WaitRun(old_id, "superseded").Str("status"), "superseded");
  EXPECT_EQ(Decide(old_id, "approve", bob_).status, 409);
  // One more approval is not enough for the new run: it needs two of its own.
  ASSERT_EQ(Decide(next.Int("id"), "approve", bob_).status, 200);
  EXPECT_EQ(WaitRun(next.Int("id"), "awaiting_approval").Str("status"), "awaiting_approval");
  EXPECT_FALSE(Exists(box_.root() + "/production/app.conf"));
  ASSERT_EQ(Decide(next.Int("id"), "approve", alice_).status, 200);
  EXPECT_EQ(WaitRun(next.Int("id"), "applied").Str("status"), "applied") << proc_.Err();
  EXPECT_EQ(App("production"), "two");
}

TEST_F(ServeApprovalsTest, ALiveChangeAfterTheApprovalsMakesANewPlanThatWaitsAgain) {
  const std::string seen = box_.dir() + "/notified";
  CommitFirst("  - branch: main\n    name: staging\n    approvals: 1\n    sync: auto\n",
              "notify:\n  - name: script\n    on: [approval.requested, approval.granted, "
              "run.discarded]\n    exec: \"cat >> " +
                  seen + "; echo >> " + seen + "\"\n");
  MakeTokens();
  Serve();
  const Json first = WaitNewest("staging", "awaiting_approval");
  const int64_t id = first.Int("id");
  ASSERT_GT(id, 0) << proc_.Err();
  // The request reached the sink with what changes.
  ASSERT_TRUE(PollUntil([&] {
    return ReadFile(seen).find("approval.requested") != std::string::npos;
  })) << proc_.Err();
  EXPECT_NE(ReadFile(seen).find("file.file/app"), std::string::npos) << ReadFile(seen);
  ASSERT_EQ(Decide(id, "approve", alice_).status, 200);
  ASSERT_EQ(WaitRun(id, "applied").Str("status"), "applied") << proc_.Err();
  // A new commit waits for approval of its plan (one -> two); then someone edits the file by
  // hand: that plan is not what would be applied any more (by hand -> two).
  WriteApp("two");
  Push("two");
  const Json second = WaitNewest("staging", "awaiting_approval", id);
  ASSERT_GT(second.Int("id"), id) << proc_.Err();
  std::ofstream(box_.root() + "/staging/app.conf", std::ios::trunc) << "by hand";
  ASSERT_EQ(Decide(second.Int("id"), "approve", alice_).status, 200);
  EXPECT_EQ(WaitRun(second.Int("id"), "superseded").Str("status"), "superseded") << proc_.Err();
  const Json next = WaitNewest("staging", "awaiting_approval", second.Int("id"));
  ASSERT_GT(next.Int("id"), second.Int("id")) << proc_.Err();
  EXPECT_NE(next.Str("plan_hash"), second.Str("plan_hash"));
  EXPECT_EQ(App("staging"), "by hand");
  ASSERT_TRUE(PollUntil([&] { return ReadFile(seen).find("run.discarded") != std::string::npos; }))
      << ReadFile(seen) << proc_.Err();
  // The new plan, approved, is applied.
  ASSERT_EQ(Decide(next.Int("id"), "approve", bob_).status, 200);
  EXPECT_EQ(WaitRun(next.Int("id"), "applied").Str("status"), "applied") << proc_.Err();
  EXPECT_EQ(App("staging"), "two");
}

TEST_F(ServeApprovalsTest, AnEnforcedDriftOnAProtectedEnvironmentWaitsForApprovalThenIsReverted) {
  CommitFirst(
      "  - branch: main\n    name: production\n    protected: true\n    sync: auto\n"
      "    policy: {drift: enforce}\n");
  MakeTokens();
  Serve();
  const int64_t first = WaitNewest("production", "awaiting_approval").Int("id");
  ASSERT_GT(first, 0) << proc_.Err();
  ASSERT_EQ(Decide(first, "approve", alice_).status, 200);
  ASSERT_EQ(WaitRun(first, "applied").Str("status"), "applied") << proc_.Err();
  // A hand edit: the drift is seen and a remediation waits for approval; nothing reverts it.
  std::ofstream(box_.root() + "/production/app.conf", std::ios::trunc) << "hot fix";
  const Json fix = WaitNewest("production", "awaiting_approval", first);
  ASSERT_GT(fix.Int("id"), first) << proc_.Err();
  EXPECT_EQ(fix.Str("action"), "remediation");
  EXPECT_EQ(App("production"), "hot fix");
  HttpReply shown = Call("GET", "/api/v1/runs/" + std::to_string(fix.Int("id")), reader_);
  ASSERT_EQ(shown.status, 200);
  Json plan = ParseJsonOrFail(shown.body, "GET run");
  EXPECT_NE(plan.Str("plan_text").find("hot fix"), std::string::npos) << plan.Str("plan_text");
  // Approved: reverted, recorded as a remediation.
  ASSERT_EQ(Decide(fix.Int("id"), "approve", bob_).status, 200);
  EXPECT_EQ(WaitRun(fix.Int("id"), "applied").Str("status"), "applied") << proc_.Err();
  EXPECT_EQ(App("production"), "one");
  const std::vector<Json> applies = History(box_, "production");
  ASSERT_FALSE(applies.empty());
  EXPECT_EQ(applies.back().Str("kind"), "remediation");
}

TEST_F(ServeApprovalsTest, RemediationAutoRevertsAnEnforcedDriftOnAProtectedEnvironmentAtOnce) {
  CommitFirst(
      "  - branch: main\n    name: production\n    protected: true\n    sync: auto\n"
      "    remediation: auto\n    policy: {drift: enforce}\n");
  MakeTokens();
  Serve();
  const int64_t first = WaitNewest("production", "awaiting_approval").Int("id");
  ASSERT_GT(first, 0) << proc_.Err();
  ASSERT_EQ(Decide(first, "approve", alice_).status, 200);
  ASSERT_EQ(WaitRun(first, "applied").Str("status"), "applied") << proc_.Err();
  std::ofstream(box_.root() + "/production/app.conf", std::ios::trunc) << "hot fix";
  const Json fix = WaitNewest("production", "applied", first);
  ASSERT_GT(fix.Int("id"), first) << proc_.Err();
  EXPECT_EQ(fix.Str("action"), "remediation");
  EXPECT_EQ(App("production"), "one");
}

}  // namespace
}  // namespace driftless::test
