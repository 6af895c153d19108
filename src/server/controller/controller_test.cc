// The controller on a real Git repository (git CLI), real files and a real SQLite state: a
// sync-auto branch is applied, a sync-manual one planned and applied on request, and a queued
// run of an older commit is superseded by a newer commit while the environment's lock is held.
#include "server/controller/controller.h"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "base/file_util.h"
#include "base/identity.h"
#include "state/open.h"
#include "support/shell.h"

namespace driftless::server::controller {
namespace {

namespace fs = std::filesystem;

class ControllerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = test::GitTestDir("driftless-controller-test");
    ASSERT_FALSE(dir_.empty());
    ASSERT_TRUE(MakeDirs(repo()).ok());
    Git("init -q");
    Write("driftless.yaml",
          "project: shop\nenvironments:\n  - branch: main\n    name: production\n    sync: auto\n"
          "  - branch: \"manual/*\"\n    name: \"m-{1}\"\n    sync: manual\n"
          "targets:\n  host: {provider: file, root: \"" +
              dir_ + "/root/${env}\"}\n");
    WriteApp("1");
    Git("add -A");
    Git("commit -q -m one");
  }
  void TearDown() override {
    controller_.reset();
    fs::remove_all(dir_);
  }
  std::string repo() const { return dir_ + "/repo"; }
  std::string Git(const std::string& args) { return test::GitIn(repo(), args); }
  void Write(const std::string& rel, const std::string& content) {
    test::WriteIn(repo(), rel, content);
  }
  void WriteApp(const std::string& v) {
    Write("app.yaml",
          "kind: file.file\nname: app\ntarget: host\nspec: {path: app.conf, content: \"" + v +
              "\"}\n");
  }
  std::string Commit(const std::string& message) { return test::CommitIn(repo(), message); }
  void StartController() {
    ControllerOptions o;
    o.workspace.dir = repo();
    o.workspace.state = dir_ + "/state.db";
    o.poll_seconds = 3600;  // only TriggerFetch fetches after the first
    o.watch = false;
    controller_ = std::make_unique<Controller>(o);
    Status s = controller_->Start();
    ASSERT_TRUE(s.ok()) << s.error().message;
    auto opened = state::OpenStateStore(dir_ + "/state.db");
    ASSERT_TRUE(opened.ok());
    store_ = std::move(*opened);
  }
  // Waits (a minute at most, as a failure detector) until a run of `env` for `commit` has
  // `status`; returns it.
  state::Run WaitRun(const std::string& env, const std::string& commit, const std::string& status) {
    state::Run found;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (std::chrono::steady_clock::now() < deadline) {
      state::RunFilter f;
      f.environment = env;
      auto page = store_->ListRuns(f, 0, 100);
      if (page.ok()) {
        for (const auto& r : page->items) {
          if (r.commit == commit && r.status == status) return r;
          if (r.commit == commit) found = r;
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ADD_FAILURE() << "no run of " << env << " for " << commit << " became " << status
                  << "; last seen: " << found.status << " " << found.message;
    return found;
  }
  std::string Live(const std::string& env) {
    auto text = ReadFileToString(dir_ + "/root/" + env + "/app.conf");
    return text.ok() ? *text : "(missing)";
  }

  std::string dir_;
  std::unique_ptr<Controller> controller_;
  std::unique_ptr<state::StateStore> store_;
};

TEST_F(ControllerTest, AutoAppliesManualPlansAndAppliesOnRequest) {
  Git("branch manual/x");
  const std::string head = Git("rev-parse HEAD");
  StartController();
  state::Run applied = WaitRun("production", head, "applied");
  EXPECT_EQ(applied.action, "apply");
  EXPECT_EQ(applied.author, "controller");
  EXPECT_FALSE(applied.plan_hash.empty());
  EXPECT_EQ(Live("production"), "1");
  state::Run planned = WaitRun("m-x", head, "planned");
  EXPECT_EQ(planned.action, "plan");
  EXPECT_EQ(Live("m-x"), "(missing)");
  Result<state::Run> asked = controller_->RequestRun("m-x", "apply", "alice");
  ASSERT_TRUE(asked.ok()) << asked.error().message;
  WaitRun("m-x", head, "applied");
  EXPECT_EQ(Live("m-x"), "1");
}

TEST_F(ControllerTest, NewerCommitSupersedesAQueuedOlderOne) {
  const std::string first = Git("rev-parse HEAD");
  // Hold the environment's lock so that the first run stays in planning, waiting for it.
  auto opened = state::OpenStateStore(dir_ + "/state.db");
  ASSERT_TRUE(opened.ok());
  auto holder = std::move(*opened);
  auto lock = holder->AcquireLock("production", CurrentIdentity(), "test", 3600);
  ASSERT_TRUE(lock.ok()) << lock.error().message;
  StartController();
  WaitRun("production", first, "planning");
  WriteApp("2");
  const std::string second = Commit("two");
  controller_->TriggerFetch();
  WaitRun("production", second, "queued");
  WriteApp("3");
  const std::string third = Commit("three");
  controller_->TriggerFetch();
  WaitRun("production", third, "queued");
  WaitRun("production", second, "superseded");
  ASSERT_TRUE(holder->ReleaseLock(*lock).ok());
  state::Run a = WaitRun("production", first, "applied");
  state::Run c = WaitRun("production", third, "applied");
  EXPECT_LT(a.id, c.id);
  EXPECT_LE(a.finished_at, c.started_at);  // one after the other (seconds)
  EXPECT_EQ(Live("production"), "3");
}

}  // namespace
}  // namespace driftless::server::controller
