// The operations layer through its API, on real Git repositories made with the git CLI, real
// files (the file provider) and a real SQLite state in a temporary folder.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/file_util.h"
#include "base/identity.h"
#include "engine/apply.h"
#include "engine/drift.h"
#include "engine/plan.h"
#include "engine/prune.h"
#include "engine/watch.h"
#include "state/open.h"
#include "support/shell.h"

namespace driftless::engine {
namespace {

namespace fs = std::filesystem;

using test::Sh;

// Writes down every callback, in order, as one line each.
class Recorder : public Observer {
 public:
  void OnPlan(const plan::Plan& plan) override {
    Add("plan " + plan.environment + " steps=" + std::to_string(plan.steps.size()));
  }
  bool Approve(const plan::Plan&) override {
    Add("approve");
    return approve;
  }
  void OnStepStarted(const StepInfo& step) override {
    Add("started " + std::to_string(step.index) + "/" + std::to_string(step.count) +
        (step.final ? " final" : "") + (step.commit ? " " + step.commit->subject : ""));
  }
  void OnProgress(const apply::Progress&) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++progress;
  }
  void OnStepFinished(const StepResult& step) override {
    Add("finished " + std::to_string(step.step.index) + " " + step.result.status + step.error);
    if (stop_after_first && stop != nullptr) stop->Stop();
  }
  void OnEvent(const notify::Event& event) override { Add("event " + event.type); }
  void OnWarning(const std::string& message) override { Add("warning " + message); }

  bool approve = true;
  bool stop_after_first = false;
  StopToken* stop = nullptr;
  std::vector<std::string> calls;
  size_t progress = 0;

 private:
  void Add(const std::string& call) {
    std::lock_guard<std::mutex> lock(mu_);
    calls.push_back(call);
  }
  std::mutex mu_;
};

class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = test::GitTestDir("driftless-engine-test");
    ASSERT_FALSE(dir_.empty());
    ASSERT_TRUE(MakeDirs(repo()).ok());
    Git("init -q");
    Write("driftless.yaml",
          "project: shop\ninclude: [\"res/*.yaml\"]\nenvironments:\n"
          "  - branch: main\n    name: production\n"
          "  - branch: \"feature/*\"\n    name: \"pr-{1}\"\n"
          "targets:\n  host: {provider: file, root: \"" +
              dir_ + "/root/${env}\"}\n");
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string repo() const { return dir_ + "/repo"; }
  std::string Git(const std::string& args) { return test::GitIn(repo(), args); }
  void Write(const std::string& rel, const std::string& content) {
    test::WriteIn(repo(), rel, content);
  }
  // `app` upgrades stepwise (each commit that changes it is applied on its own), `other` not.
  void WriteApp(const std::string& version, const std::string& other) {
    Write("res/app.yaml",
          "kind: file.file\nname: app\ntarget: host\nspec:\n  path: app.conf\n  content: \"" +
              version +
              "\"\npolicy: {upgrade: stepwise}\n---\nkind: file.file\nname: other\n"
              "target: host\nspec:\n  path: other.conf\n  content: \"" +
              other + "\"\n");
  }
  std::string Commit(const std::string& message) { return test::CommitIn(repo(), message); }
  // Commits and applies A: app "A" and other "o1".
  void ApplyFirstCommit() {
    WriteApp("A", "o1");
    Commit("A");
    Recorder first;
    ApplyReport report = Apply(first);
    ASSERT_TRUE(report.ok()) << report.failure.message;
  }
  // Commits and applies one file, app.conf "A", whose drift is enforced.
  void ApplyEnforcedApp() {
    Write("res/app.yaml",
          "kind: file.file\nname: app\ntarget: host\nspec:\n  path: app.conf\n  content: A\n"
          "policy: {drift: enforce}\n");
    Commit("A");
    Recorder first;
    ASSERT_TRUE(Apply(first).ok());
  }
  // A watch of production that checks a change at once (no debounce).
  static WatchOptions ProductionWatch() {
    WatchOptions options;
    options.env = "production";
    options.debounce_ms = 0;
    return options;
  }
  std::string Live(const std::string& name, const std::string& env = "production") {
    Result<std::string> text = ReadFileToString(dir_ + "/root/" + env + "/" + name);
    return text.ok() ? *text : "(missing)";
  }

  // A workspace on the repository with the production environment selected.
  std::unique_ptr<Workspace> Open(const std::string& env = "production") {
    WorkspaceOptions options;
    options.dir = repo();
    options.state = dir_ + "/state.db";
    auto ws = std::make_unique<Workspace>(options);
    Status s = ws->Select(env);
    EXPECT_TRUE(s.ok()) << s.error().message;
    return ws;
  }
  ApplyReport Apply(Recorder& recorder, const StopToken* stop = nullptr,
                    const std::string& env = "production") {
    std::unique_ptr<Workspace> ws = Open(env);
    ApplyRequest request;
    request.stop = stop;
    return ApplyEnvironment(*ws, request, recorder);
  }
  // The environment's applies, oldest first.
  std::vector<state::ApplyRecord> History() {
    Result<std::unique_ptr<state::StateStore>> store = state::OpenStateStore(dir_ + "/state.db");
    EXPECT_TRUE(store.ok());
    if (!store.ok()) return {};
    Result<std::vector<state::ApplyRecord>> applies = (*store)->ListApplies("production", 100);
    EXPECT_TRUE(applies.ok());
    if (!applies.ok()) return {};
    return std::vector<state::ApplyRecord>(applies->rbegin(), applies->rend());
  }

  std::string dir_;
};

TEST_F(EngineTest, PlanReturnsTheStepsBeforeTheCommitsOwnPlan) {
  ApplyFirstCommit();
  WriteApp("B", "o2");
  Commit("B");
  WriteApp("C", "o3");
  Commit("C");

  std::unique_ptr<Workspace> ws = Open();
  PlanReport report = PlanEnvironment(*ws, PlanRequest{"production", false});
  ASSERT_TRUE(report.ok()) << report.failure.message << report.failure.diagnostics.ToString();
  ASSERT_EQ(report.plan->steps.size(), 1u);
  EXPECT_TRUE(report.HasChanges());
  EXPECT_EQ(report.plan->environment, "production");
  EXPECT_EQ(Live("app.conf"), "A");  // planning changes nothing
  EXPECT_EQ(History().size(), 1u);
}

TEST_F(EngineTest, PlanOfInvalidDeclarationsNamesTheFileAndLine) {
  Write("res/app.yaml", "kind: file.file\nname: app\ntarget: nowhere\nspec: {path: a}\n");
  Commit("broken");
  std::unique_ptr<Workspace> ws = Open();
  PlanReport report = PlanEnvironment(*ws, PlanRequest{"production", false});
  EXPECT_FALSE(report.plan.has_value());
  ASSERT_TRUE(report.failure.diagnostics.HasErrors());
  EXPECT_NE(report.failure.diagnostics.ToString().find("res/app.yaml:3"), std::string::npos)
      << report.failure.diagnostics.ToString();
}

TEST_F(EngineTest, ApplyWithStepsReturnsEachStepAndCallsTheObserverInOrder) {
  WriteApp("A", "o1");
  Commit("A");
  Recorder first;
  ApplyReport initial = Apply(first);
  ASSERT_TRUE(initial.ok()) << initial.failure.message;
  ASSERT_EQ(initial.steps.size(), 1u);
  EXPECT_TRUE(initial.steps[0].step.final);
  EXPECT_EQ(initial.steps[0].result.summary, "2 created");
  WriteApp("B", "o2");
  const std::string b = Commit("B");
  WriteApp("C", "o3");
  const std::string c = Commit("C");

  Recorder recorder;
  ApplyReport report = Apply(recorder);
  ASSERT_TRUE(report.ok()) << report.failure.message;
  EXPECT_EQ(report.outcome, ApplyReport::Outcome::kApplied);
  EXPECT_FALSE(report.failure.any());
  ASSERT_EQ(report.steps.size(), 2u);
  EXPECT_FALSE(report.steps[0].step.final);
  EXPECT_EQ(report.steps[0].step.commit->id, b);
  EXPECT_EQ(report.steps[0].result.summary, "1 updated");  // app only: other jumps straight
  EXPECT_TRUE(report.steps[1].step.final);
  EXPECT_EQ(report.steps[1].step.commit->id, c);
  EXPECT_EQ(report.steps[1].result.summary, "2 updated");
  EXPECT_EQ(recorder.calls,
            (std::vector<std::string>{
                "plan production steps=1", "approve", "started 0/2 B", "event apply.started",
                "event apply.succeeded", "finished 0 succeeded", "started 1/2 final C",
                "event apply.started", "event apply.succeeded", "finished 1 succeeded"}));
  EXPECT_EQ(recorder.progress, 3u);
  EXPECT_EQ(Live("app.conf"), "C");
  EXPECT_EQ(Live("other.conf"), "o3");
  std::vector<state::ApplyRecord> h = History();
  ASSERT_EQ(h.size(), 3u);
  EXPECT_EQ(h[1].commit_subject, "B (stepwise upgrade)");
  EXPECT_EQ(h[2].commit_subject, "C");

  // Up to date: nothing to do, nothing asked, nothing recorded.
  Recorder again;
  ApplyReport none = Apply(again);
  EXPECT_EQ(none.outcome, ApplyReport::Outcome::kNoChanges);
  EXPECT_TRUE(none.ok());
  EXPECT_TRUE(again.calls.empty());
  EXPECT_EQ(History().size(), 3u);
}

TEST_F(EngineTest, StopBeforeAStepLeavesStateAtTheLastStepApplied) {
  ApplyFirstCommit();
  WriteApp("B", "o2");
  const std::string b = Commit("B");
  WriteApp("C", "o3");
  Commit("C");

  StopToken stop;
  Recorder recorder;
  recorder.stop = &stop;
  recorder.stop_after_first = true;  // the caller cancels while step 1 finishes
  ApplyReport report = Apply(recorder, &stop);
  EXPECT_FALSE(report.ok());
  EXPECT_EQ(report.outcome, ApplyReport::Outcome::kFailed);
  EXPECT_NE(report.failure.message.find("stopped before step 2 of 2"), std::string::npos)
      << report.failure.message;
  EXPECT_NE(report.failure.message.find("stays at commit " + b.substr(0, 7) + " (B)"),
            std::string::npos)
      << report.failure.message;
  ASSERT_EQ(report.steps.size(), 1u);
  EXPECT_TRUE(report.steps[0].succeeded());
  EXPECT_EQ(recorder.calls.back(), "finished 0 succeeded");
  // The step is applied and recorded; the final one never started.
  EXPECT_EQ(Live("app.conf"), "B");
  EXPECT_EQ(Live("other.conf"), "o1");
  std::vector<state::ApplyRecord> h = History();
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h[1].commit, b);
  EXPECT_EQ(h[1].status, "succeeded");
  std::unique_ptr<Workspace> ws = Open();
  Result<std::string> applied = ws->AppliedCommit("production");
  ASSERT_TRUE(applied.ok());
  EXPECT_EQ(*applied, b);

  // The lock was released: the next apply finishes the upgrade.
  Recorder next;
  ApplyReport rest = Apply(next);
  ASSERT_TRUE(rest.ok()) << rest.failure.message;
  ASSERT_EQ(rest.steps.size(), 1u);
  EXPECT_EQ(Live("app.conf"), "C");
}

TEST_F(EngineTest, StoppedOrRefusedBeforeTheFirstChangeChangesNothing) {
  WriteApp("A", "o1");
  Commit("A");
  Recorder refuse;
  refuse.approve = false;
  ApplyReport refused = Apply(refuse);
  EXPECT_EQ(refused.outcome, ApplyReport::Outcome::kNotApproved);
  EXPECT_FALSE(refused.ok());
  EXPECT_EQ(refuse.calls, (std::vector<std::string>{"plan production steps=0", "approve"}));

  StopToken stop;
  stop.Stop();
  Recorder stopped;
  ApplyReport report = Apply(stopped, &stop);
  EXPECT_FALSE(report.ok());
  EXPECT_EQ(report.failure.message, "stopped before the apply; nothing was changed");
  EXPECT_TRUE(report.steps.empty());
  EXPECT_EQ(Live("app.conf"), "(missing)");
  EXPECT_TRUE(History().empty());
}

TEST_F(EngineTest, AnApprovedPlanHashMustStillHoldUnderTheLock) {
  ApplyFirstCommit();
  WriteApp("A", "o2");
  Commit("B");
  std::unique_ptr<Workspace> planner = Open();
  PlanReport planned = PlanEnvironment(*planner, PlanRequest{"production", false});
  ASSERT_TRUE(planned.ok());
  const std::string approved = planned.plan->Hash();
  // Live changes after the review: the plan made under the lock differs, nothing is applied.
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/root/production/app.conf", "by hand").ok());
  {
    std::unique_ptr<Workspace> ws = Open();
    Recorder recorder;
    ApplyRequest request;
    request.plan_hash = approved;
    ApplyReport report = ApplyEnvironment(*ws, request, recorder);
    EXPECT_FALSE(report.ok());
    EXPECT_NE(report.failure.message.find("changed since it was made"), std::string::npos)
        << report.failure.message;
    EXPECT_NE(report.plan_hash, approved);
    EXPECT_TRUE(recorder.calls.empty());
    EXPECT_EQ(Live("other.conf"), "o1");
  }
  // The hash of the plan as it is now is applied.
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/root/production/app.conf", "A").ok());
  std::unique_ptr<Workspace> ws = Open();
  Recorder recorder;
  ApplyRequest request;
  request.plan_hash = approved;
  ApplyReport report = ApplyEnvironment(*ws, request, recorder);
  ASSERT_TRUE(report.ok()) << report.failure.message;
  EXPECT_EQ(report.plan_hash, approved);
  EXPECT_EQ(Live("other.conf"), "o2");
}

// Releases a lock held elsewhere once the apply says it waits for it.
class ReleaseOnWait : public Recorder {
 public:
  void OnLockWait(const state::Lock& holder, double timeout_seconds) override {
    waited_for = holder.operation + " " + std::to_string(static_cast<int>(timeout_seconds));
    (void)store->ReleaseLock(*held);
  }
  state::StateStore* store = nullptr;
  state::Lock* held = nullptr;
  std::string waited_for;
};

TEST_F(EngineTest, ApplyTellsThatItWaitsForAHeldLockThenTakesIt) {
  WriteApp("A", "o1");
  Commit("A");
  Result<std::unique_ptr<state::StateStore>> other = state::OpenStateStore(dir_ + "/state.db");
  ASSERT_TRUE(other.ok());
  Result<state::Lock> held =
      (*other)->AcquireLock("production", CurrentIdentity(), "state rm", 0, 600);
  ASSERT_TRUE(held.ok()) << held.error().message;
  WorkspaceOptions options;
  options.dir = repo();
  options.state = dir_ + "/state.db";
  options.lock_timeout = 120;  // a failure bound: the observer releases the lock at once
  Workspace ws(options);
  ASSERT_TRUE(ws.Select("production").ok());
  ReleaseOnWait recorder;
  recorder.store = other->get();
  recorder.held = &*held;
  ApplyReport report = ApplyEnvironment(ws, ApplyRequest{}, recorder);
  ASSERT_TRUE(report.ok()) << report.failure.message;
  EXPECT_EQ(recorder.waited_for, "state rm 120");
  EXPECT_EQ(Live("app.conf"), "A");
}

TEST_F(EngineTest, DestroyRemovesEverythingAndPublishesEnvDestroyed) {
  ApplyFirstCommit();
  std::unique_ptr<Workspace> ws = Open();
  Recorder recorder;
  ApplyReport report = DestroyEnvironment(*ws, ApplyRequest{}, recorder);
  ASSERT_TRUE(report.ok()) << report.failure.message;
  ASSERT_EQ(report.steps.size(), 1u);
  EXPECT_EQ(report.steps[0].result.summary, "2 deleted");
  EXPECT_EQ(recorder.calls,
            (std::vector<std::string>{"plan production steps=0", "approve", "started 0/1 final A",
                                      "event apply.started", "event apply.succeeded",
                                      "event env.destroyed", "finished 0 succeeded"}));
  EXPECT_EQ(Live("app.conf"), "(missing)");
  EXPECT_EQ(History().back().kind, "destroy");
}

TEST_F(EngineTest, DriftCheckOpensAndResolvesTheTimeline) {
  ApplyFirstCommit();
  {
    std::unique_ptr<Workspace> ws = Open();
    DriftReport clean = CheckDrift(*ws, "production");
    ASSERT_TRUE(clean.ok()) << clean.failure.message;
    EXPECT_FALSE(clean.HasDrift());
    EXPECT_EQ(clean.Checked(), 2u);
  }
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/root/production/other.conf", "by hand").ok());
  {
    std::unique_ptr<Workspace> ws = Open();
    DriftReport drifted = CheckDrift(*ws, "production");
    ASSERT_TRUE(drifted.ok()) << drifted.failure.message;
    ASSERT_EQ(drifted.Drifted().size(), 1u);
    EXPECT_EQ(drifted.Drifted()[0]->address, "file.file/other");
    ASSERT_EQ(drifted.recorded.opened.size(), 1u);
    EXPECT_EQ(drifted.recorded.opened[0].address, "file.file/other");
    EXPECT_NE(drifted.recorded.opened[0].diff.find("+content: by hand"), std::string::npos)
        << drifted.recorded.opened[0].diff;
  }
  EXPECT_EQ(Live("other.conf"), "by hand");  // a check changes nothing
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/root/production/other.conf", "o1").ok());
  std::unique_ptr<Workspace> ws = Open();
  DriftReport undone = CheckDrift(*ws, "production");
  ASSERT_TRUE(undone.ok());
  EXPECT_FALSE(undone.HasDrift());
  EXPECT_EQ(undone.recorded.undone, (std::vector<std::string>{"file.file/other"}));
}

// Writes down the candidates and each destroy's callbacks.
class PruneRecorder : public PruneObserver {
 public:
  void OnCandidate(const PruneCandidate& c) override {
    calls.push_back("candidate " + c.environment + " " + c.reason + " " +
                    std::to_string(static_cast<int>(c.decision)));
  }
  Observer& DestroyObserver(const PruneCandidate&) override { return destroy; }
  void OnDestroyed(const PruneCandidate& c, const std::string& error,
                   const ApplyReport& report) override {
    calls.push_back("destroyed " + c.environment + error + (report.ok() ? " ok" : " failed"));
  }
  std::vector<std::string> calls;
  Recorder destroy;
};

TEST_F(EngineTest, PruneListsThenDestroysTheEnvironmentOfADeletedBranch) {
  WriteApp("A", "o1");
  Commit("A");
  Git("checkout -q -b feature/x");
  Recorder first;
  ASSERT_TRUE(Apply(first, nullptr, "pr-x").ok());
  EXPECT_EQ(Live("app.conf", "pr-x"), "A");
  Git("checkout -q main");
  {
    std::unique_ptr<Workspace> ws = Open();
    PruneRecorder recorder;
    PruneReport listed = Prune(*ws, PruneRequest{}, recorder);
    ASSERT_TRUE(listed.ok()) << listed.failure.message;
    EXPECT_TRUE(listed.candidates.empty());  // the branch is still there
  }
  Git("branch -q -D feature/x");
  {
    std::unique_ptr<Workspace> ws = Open();
    PruneRecorder recorder;
    PruneReport listed = Prune(*ws, PruneRequest{}, recorder);
    ASSERT_TRUE(listed.ok()) << listed.failure.message;
    ASSERT_EQ(listed.candidates.size(), 1u);
    EXPECT_EQ(listed.candidates[0].decision, PruneCandidate::Decision::kWouldDestroy);
    EXPECT_EQ(listed.candidates[0].resources, 2u);
    EXPECT_EQ(recorder.calls, (std::vector<std::string>{"candidate pr-x its branch is gone 2"}));
    EXPECT_EQ(Live("app.conf", "pr-x"), "A");
  }
  std::unique_ptr<Workspace> ws = Open();
  PruneRecorder recorder;
  PruneRequest request;
  request.destroy = true;
  PruneReport pruned = Prune(*ws, request, recorder);
  ASSERT_TRUE(pruned.ok()) << pruned.failure.message;
  EXPECT_EQ(recorder.calls,
            (std::vector<std::string>{"candidate pr-x its branch is gone 3", "destroyed pr-x ok"}));
  EXPECT_EQ(recorder.destroy.calls.back(), "finished 0 succeeded");
  EXPECT_EQ(Live("app.conf", "pr-x"), "(missing)");
}

// Collects a watch's events (from the watch's thread) and lets the test wait for one.
class EventLog : public Observer {
 public:
  void OnEvent(const notify::Event& event) override {
    std::string entry = event.type + (event.resource.empty() ? "" : " " + event.resource);
    if (on_event) on_event(entry);  // on the watch's thread, before the watch goes on
    std::lock_guard<std::mutex> lock(mu_);
    events_.push_back(entry);
    cv_.notify_all();
  }
  void OnStepStarted(const StepInfo& step) override { Add("step started " + step.note); }
  void OnStepFinished(const StepResult& step) override {
    Add("step finished " + step.result.status + step.error);
  }
  // Waits up to a minute (a failure detector, not a timing) for `type` to be logged.
  bool WaitFor(const std::string& entry) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(60), [&] {
      for (const auto& e : events_) {
        if (e == entry) return true;
      }
      return false;
    });
  }
  std::vector<std::string> Events() {
    std::lock_guard<std::mutex> lock(mu_);
    return events_;
  }
  std::function<void(const std::string&)> on_event;

 private:
  void Add(const std::string& entry) {
    std::lock_guard<std::mutex> lock(mu_);
    events_.push_back(entry);
    cv_.notify_all();
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> events_;
};

// A watch on a thread of its own until Finish(), which stops it and returns its report.
class BackgroundWatch {
 public:
  BackgroundWatch(Workspace& ws, WatchOptions options, EventLog& log)
      : thread_([this, &ws, options, &log] { report_ = Watch(ws, options, log, stop_); }) {}
  ~BackgroundWatch() {
    if (thread_.joinable()) (void)Finish();
  }
  Result<WatchReport> Finish() {
    stop_.Stop();
    thread_.join();
    return std::move(report_);
  }

 private:
  StopToken stop_;
  Result<WatchReport> report_ = MakeError("not run");
  std::thread thread_;  // last: it starts once the others exist
};

TEST_F(EngineTest, WatchRevertsAHandEditAndStopsWhenAsked) {
  ApplyEnforcedApp();
  std::unique_ptr<Workspace> ws = Open();
  WatchOptions options = ProductionWatch();
  EventLog log;
  BackgroundWatch watch(*ws, options, log);
  ASSERT_TRUE(log.WaitFor("watch.started"));
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/root/production/app.conf", "by hand").ok());
  bool resolved = log.WaitFor("drift.resolved file.file/app");
  Result<WatchReport> report = watch.Finish();
  ASSERT_TRUE(resolved);
  ASSERT_TRUE(report.ok()) << report.error().message;
  EXPECT_EQ(report->remediations, 1u);
  EXPECT_GE(report->checks, 2u);  // the first scan and the check of the changed file
  EXPECT_EQ(Live("app.conf"), "A");
  std::vector<std::string> events = log.Events();
  std::vector<std::string> expected = {
      "watch.started",           "drift.detected file.file/app", "step started remediation",
      "step finished succeeded", "drift.resolved file.file/app", "apply.succeeded"};
  // Nothing else happened before the revert; events after it (another check) may follow.
  ASSERT_GE(events.size(), expected.size());
  EXPECT_EQ(std::vector<std::string>(events.begin(), events.begin() + expected.size()), expected);
  EXPECT_EQ(History().back().kind, "remediation");
}

// A change made while the first scan runs, after it has looked at the file: the watchers are
// already in place and see it (they used to start after the scan, and such a change waited for
// the next periodic scan, an hour here).
TEST_F(EngineTest, WatchSeesAChangeMadeDuringItsFirstScan) {
  Write("res/app.yaml",
        "kind: file.file\nname: early\ntarget: host\nspec: {path: early.conf, content: E}\n"
        "---\nkind: file.file\nname: late\ntarget: host\nspec: {path: late.conf, content: L}\n");
  Commit("A");
  Recorder first;
  ASSERT_TRUE(Apply(first).ok());
  // Drift the first scan reports; while it reports it, `late` (already read) is edited.
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/root/production/early.conf", "before").ok());
  std::unique_ptr<Workspace> ws = Open();
  WatchOptions options = ProductionWatch();
  options.interval = 3600;
  EventLog log;
  log.on_event = [&](const std::string& entry) {
    if (entry == "drift.detected file.file/early") {
      ASSERT_TRUE(WriteFileAtomic(dir_ + "/root/production/late.conf", "during").ok());
    }
  };
  BackgroundWatch watch(*ws, options, log);
  bool seen = log.WaitFor("drift.detected file.file/late");
  Result<WatchReport> report = watch.Finish();
  EXPECT_TRUE(seen) << testing::PrintToString(log.Events());
  ASSERT_TRUE(report.ok()) << report.error().message;
}

// A lean watch (the server's: WatchOptions::release_below) frees its declarations after each
// check and evaluates them again for the next: two hand edits, one after the other, are both
// reverted, and what the first check freed is not used by the second.
TEST_F(EngineTest, ALeanWatchEvaluatesAgainForEachCheck) {
  Write("res/app.yaml",
        "kind: file.file\nname: app\ntarget: host\nspec:\n  path: app.conf\n  content: A\n"
        "policy: {drift: enforce}\n---\nkind: file.file\nname: other\ntarget: host\n"
        "spec: {path: other.conf, content: \"${file.file.app.sha256}\"}\n"
        "policy: {drift: enforce}\n");
  Commit("A");
  Recorder first;
  ASSERT_TRUE(Apply(first).ok());
  const std::string other = Live("other.conf");  // app's digest, through the reference
  ASSERT_EQ(other.size(), 64u) << other;
  std::unique_ptr<Workspace> ws = Open();
  WatchOptions options = ProductionWatch();
  options.interval = 3600;
  options.release_below = 100;
  EventLog log;
  BackgroundWatch watch(*ws, options, log);
  ASSERT_TRUE(log.WaitFor("watch.started"));
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/root/production/app.conf", "by hand").ok());
  bool first_reverted = log.WaitFor("drift.resolved file.file/app");
  // Released after that check: the environment is evaluated again for this one, the
  // reference to app's digest included.
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/root/production/other.conf", "again").ok());
  bool second_reverted = log.WaitFor("drift.resolved file.file/other");
  Result<WatchReport> report = watch.Finish();
  EXPECT_TRUE(first_reverted && second_reverted) << testing::PrintToString(log.Events());
  ASSERT_TRUE(report.ok()) << report.error().message;
  EXPECT_EQ(report->remediations, 2u);
  EXPECT_EQ(Live("app.conf"), "A");
  EXPECT_EQ(Live("other.conf"), other);
  EXPECT_EQ(ws->environment(), nullptr) << "released after its last check";
}

// A remediation that fails (a folder stands where the file goes, made while the drift was being
// detected) leaves the drift open; the next change of that resource retries it at once, not a
// full scan later (an hour here).
TEST_F(EngineTest, AFailedRemediationIsRetriedAtTheNextChangeOfItsResource) {
  ApplyEnforcedApp();
  std::unique_ptr<Workspace> ws = Open();
  WatchOptions options = ProductionWatch();
  options.interval = 3600;
  const std::string live = dir_ + "/root/production/app.conf";
  EventLog log;
  bool blocked = false;
  log.on_event = [&](const std::string& entry) {
    if (entry == "drift.detected file.file/app" && !blocked) {
      blocked = true;  // before the remediation: a folder where the file goes
      fs::remove(live);
      fs::create_directory(live);
    }
  };
  BackgroundWatch watch(*ws, options, log);
  ASSERT_TRUE(log.WaitFor("watch.started"));
  ASSERT_TRUE(WriteFileAtomic(live, "by hand").ok());
  ASSERT_TRUE(log.WaitFor("apply.failed"));
  // One change, so that nothing can follow the revert: the folder goes. (The folder's own
  // creation may or may not have been seen as a change that failed once more, hence at least 2.)
  fs::remove(live);
  bool resolved = log.WaitFor("drift.resolved file.file/app");
  Result<WatchReport> report = watch.Finish();
  EXPECT_TRUE(resolved) << testing::PrintToString(log.Events());
  ASSERT_TRUE(report.ok()) << report.error().message;
  EXPECT_GE(report->remediations, 2u);
  EXPECT_EQ(Live("app.conf"), "A");
}

TEST_F(EngineTest, WatchStoppedBeforeItStartsScansOnceAndReturns) {
  ApplyFirstCommit();
  std::unique_ptr<Workspace> ws = Open();
  WatchOptions options = ProductionWatch();
  StopToken stop;
  stop.Stop();
  EventLog log;
  Result<WatchReport> report = Watch(*ws, options, log, stop);
  ASSERT_TRUE(report.ok()) << report.error().message;
  EXPECT_EQ(report->checks, 1u);
  EXPECT_EQ(report->remediations, 0u);
  EXPECT_EQ(log.Events(), (std::vector<std::string>{"watch.started"}));
}

}  // namespace
}  // namespace driftless::engine
