#include "server/controller/controller.h"

#include <chrono>
#include <utility>

#include "base/identity.h"
#include "base/memory.h"
#include "engine/apply.h"
#include "engine/plan.h"
#include "engine/prune.h"
#include "engine/watch.h"
#include "notify/event.h"
#include "plan/render.h"
#include "state/open.h"

namespace driftless::server::controller {

using value::Value;

namespace {

using Clock = std::chrono::steady_clock;

// A failure as one message: the declaration problems first, then the message.
std::string FailureText(const engine::Failure& f) {
  std::string text = f.diagnostics.empty() ? "" : f.diagnostics.ToString();
  if (!f.message.empty()) {
    if (!text.empty() && text.back() != '\n') text += "\n";
    text += f.message;
  }
  while (!text.empty() && text.back() == '\n') text.pop_back();
  return text.empty() ? "failed" : text;
}

// What a run records of its plan.
state::RunUpdate PlanUpdate(const plan::Plan& p) {
  state::RunUpdate u;
  u.plan_hash = p.Hash();
  u.plan_text = plan::RenderPlan(p, plan::RenderOptions{});
  std::string json;
  value::AppendRedactedJson(json, plan::PlanToJson(p));
  u.plan_json = std::move(json);
  return u;
}

// Collects what a listing prune finds (nothing is destroyed by it).
class Candidates : public engine::PruneObserver {
 public:
  void OnCandidate(const engine::PruneCandidate& c) override { found.push_back(c); }
  std::vector<engine::PruneCandidate> found;
};

}  // namespace

// Turns an apply's callbacks into run transitions and log lines.
class Controller::RunObserver : public engine::Observer {
 public:
  RunObserver(Controller& c, state::StateStore& store, const state::Run& run, RunControl& control)
      : c_(c), store_(store), run_(run), control_(control) {}

  void OnPlan(const plan::Plan& p) override {
    if (c_.Transition(store_, run_, "planning", "planned", PlanUpdate(p))) status_ = "planned";
  }
  bool Approve(const plan::Plan&) override {
    if (control_.stop.stop_requested() || status_ != "planned") return false;
    if (!c_.Transition(store_, run_, "planned", "applying")) return false;  // canceled meanwhile
    status_ = "applying";
    return true;
  }
  void OnStepFinished(const engine::StepResult& step) override {
    c_.Info("apply finished",
            {{"environment", Value::String(run_.environment)},
             {"run_id", Value::Int(run_.id)},
             {"step", Value::Int(static_cast<int64_t>(step.step.index + 1))},
             {"steps", Value::Int(static_cast<int64_t>(step.step.count))},
             {"commit", Value::String(step.step.commit ? step.step.commit->id : "")},
             {"status", Value::String(step.error.empty() ? step.result.status : "error")},
             {"summary", Value::String(step.error.empty() ? step.result.summary : step.error)}});
  }
  void OnLockWait(const state::Lock& holder, double timeout_seconds) override {
    c_.Info("waiting for the lock", {{"environment", Value::String(run_.environment)},
                                     {"run_id", Value::Int(run_.id)},
                                     {"holder", Value::String(holder.holder.UserAtHost())},
                                     {"timeout_seconds", Value::Double(timeout_seconds)}});
  }
  void OnWarning(const std::string& message) override {
    c_.Error("warning", {{"environment", Value::String(run_.environment)},
                         {"run_id", Value::Int(run_.id)},
                         {"error", Value::String(message)}});
  }

  const std::string& status() const { return status_; }

 private:
  Controller& c_;
  state::StateStore& store_;
  const state::Run& run_;
  RunControl& control_;
  std::string status_ = "planning";
};

// One environment's drift watch: engine::Watch on a thread of its own until `stop`.
struct Controller::Watcher {
  engine::StopToken stop;
  std::thread thread;
};

// A served watch's observer: logs its events, and makes each remediation a run of its own
// (action remediation, author controller, the plan of the drifted resources) that starts only
// when no other run of the environment is active; an active run converges the resources itself.
class Controller::WatchObserver : public engine::Observer {
 public:
  WatchObserver(Controller& c, engine::Workspace& ws, std::string env)
      : c_(c), ws_(ws), env_(std::move(env)) {}

  void OnEvent(const notify::Event& e) override {
    c_.Info("event", {{"environment", Value::String(env_)},
                      {"type", Value::String(e.type)},
                      {"resource", Value::String(e.resource)}});
  }
  void OnWarning(const std::string& message) override {
    if (c_.options_.log != nullptr) {
      c_.options_.log->Write(
          "warning", "watch",
          {{"environment", Value::String(env_)}, {"error", Value::String(message)}});
    }
  }
  bool Approve(const plan::Plan& p) override {
    Result<state::StateStore*> store = ws_.State();
    if (!store.ok()) return false;
    const state::RunUpdate u = PlanUpdate(p);
    state::Run run;
    run.environment = env_;
    run.action = "remediation";
    run.author = "controller";
    run.commit = p.revision;
    run.plan_hash = *u.plan_hash;
    run.plan_text = *u.plan_text;
    run.plan_json = *u.plan_json;
    Result<std::optional<state::Run>> started = (*store)->StartRun(run, "applying");
    if (!started.ok()) {
      c_.Error("starting a remediation failed",
               {{"environment", Value::String(env_)},
                {"error", Value::String(started.error().message)}});
      return false;
    }
    if (!*started) {
      c_.Info("remediation left to the active run", {{"environment", Value::String(env_)}});
      return false;
    }
    run_ = std::move(**started);
    c_.Announce(**store, *run_, "applying", {});
    return true;
  }
  void OnStepFinished(const engine::StepResult& step) override {
    if (!run_) return;
    Result<state::StateStore*> store = ws_.State();
    if (!store.ok()) return;
    state::RunUpdate u;
    if (step.result.apply_id != 0) u.apply_id = step.result.apply_id;
    u.message = step.error.empty() ? step.result.summary : step.error;
    c_.Transition(**store, *run_, "applying", step.succeeded() ? "applied" : "errored", u);
    run_.reset();
    c_.Wake(env_);  // a run queued meanwhile waited for this one
  }

 private:
  Controller& c_;
  engine::Workspace& ws_;
  std::string env_;
  std::optional<state::Run> run_;  // the remediation being applied
};

Controller::Controller(ControllerOptions options) : options_(std::move(options)) {}

Controller::~Controller() { Stop(); }

void Controller::Info(const std::string& msg, const Log::Fields& fields) {
  if (options_.log != nullptr) options_.log->Write("info", msg, fields);
}

void Controller::Error(const std::string& msg, const Log::Fields& fields) {
  if (options_.log != nullptr) options_.log->Write("error", msg, fields);
}

engine::WorkspaceOptions Controller::RunOptions(const std::string& commit) const {
  engine::WorkspaceOptions o = options_.workspace;
  o.ref = commit;
  o.lock_timeout = options_.lock_timeout;
  o.fetch = false;  // only the fetch loop fetches: runs and watches read what it fetched
  return o;
}

Status Controller::Start() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (started_) return MakeError("the controller was started already");
    started_ = true;
  }
  engine::Workspace probe(RunOptions(""));
  const std::string location = probe.StatePath();
  for (auto* store : {&fetch_store_, &api_store_}) {
    Result<std::unique_ptr<state::StateStore>> opened = state::OpenStateStore(location);
    if (!opened.ok()) return opened.error();
    *store = std::move(*opened);
  }
  // A run left active by a server that died cannot be going on: say so (one server per state;
  // several servers on one state need leases, docs/server.md).
  state::RunFilter active;
  active.statuses = {"planning", "applying"};
  Result<state::Page<state::Run>> left = fetch_store_->ListRuns(active, 0, 1000);
  if (!left.ok()) return left.error();
  for (const state::Run& r : left->items) {
    state::RunUpdate u;
    u.message =
        "the server stopped while this run was " + r.status + "; history says what was applied";
    Transition(*fetch_store_, r, r.status, "interrupted", u);
  }
  state::RunFilter queued;
  queued.statuses = {"queued"};
  Result<state::Page<state::Run>> waiting = fetch_store_->ListRuns(queued, 0, 1000);
  if (!waiting.ok()) return waiting.error();
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const state::Run& r : waiting->items) pending_.insert(r.environment);
  }
  fetcher_ = std::thread([this] { FetchLoop(); });
  for (int i = 0; i < std::max(1, options_.runners); ++i) {
    runners_.emplace_back([this] { RunnerLoop(); });
  }
  return Status::Ok();
}

void Controller::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    stopping_ = true;
    for (auto& [id, control] : running_) control->stop.Stop();
  }
  cv_.notify_all();
  if (fetcher_.joinable()) fetcher_.join();
  for (std::thread& t : runners_) {
    if (t.joinable()) t.join();
  }
  std::vector<std::string> watched;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [env, w] : watchers_) watched.push_back(env);
  }
  for (const std::string& env : watched) StopWatch(env);
}

void Controller::TriggerFetch() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    fetch_now_ = true;
  }
  cv_.notify_all();
}

bool Controller::ready() const {
  std::lock_guard<std::mutex> lock(mu_);
  return ready_;
}

uint64_t Controller::fetches() const {
  std::lock_guard<std::mutex> lock(mu_);
  return fetches_;
}

std::vector<EnvironmentView> Controller::Environments() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<EnvironmentView> out;
  for (const auto& [name, v] : envs_) out.push_back(v);
  return out;
}

std::optional<EnvironmentView> Controller::FindEnvironment(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = envs_.find(name);
  if (it == envs_.end()) return std::nullopt;
  return it->second;
}

void Controller::FetchLoop() {
  Clock::time_point next = Clock::now();  // the first fetch at once
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_until(lock, next, [&] { return stopping_ || fetch_now_; });
      if (stopping_) return;
      fetch_now_ = false;
    }
    Fetch(*fetch_store_);
    {
      std::lock_guard<std::mutex> lock(mu_);
      ready_ = true;
      ++fetches_;
    }
    next = Clock::now() + std::chrono::milliseconds(
                              static_cast<int64_t>(std::max(0.05, options_.poll_seconds) * 1000));
  }
}

void Controller::Fetch(state::StateStore& store) {
  engine::WorkspaceOptions fetching = RunOptions("");
  fetching.fetch = true;
  engine::Workspace ws(fetching);
  Result<const std::vector<engine::BranchEnvironment>*> branches = ws.BranchEnvironments();
  if (!branches.ok()) {
    Error("fetch failed", {{"error", Value::String(branches.error().message)}});
    return;
  }
  std::map<std::string, EnvironmentView> now;
  for (const engine::BranchEnvironment& be : **branches) {
    EnvironmentView v{be.match.name, be.branch.name, be.branch.head.id, be.match.sync(),
                      be.match.is_protected()};
    if (!now.emplace(v.name, v).second) {
      Error("two branches map to one environment; the first (by name) is followed",
            {{"environment", Value::String(v.name)},
             {"branch", Value::String(be.branch.name)},
             {"followed", Value::String(now[v.name].branch)}});
    }
  }
  // How far each branch head is ahead of what was applied, for the API (commits_behind).
  Result<source::GitRepository*> repo = ws.Repo();
  for (auto& [name, v] : now) {
    Result<std::string> applied = ws.AppliedCommit(name);
    if (!applied.ok() || applied->empty()) continue;
    v.applied = *applied;
    if (*applied == v.head) {
      v.behind = 0;
    } else if (repo.ok() && *repo != nullptr) {
      Result<int64_t> n = (*repo)->CountBetween(*applied, v.head);
      if (n.ok()) v.behind = *n;
    }
  }
  std::map<std::string, EnvironmentView> before;
  std::set<std::string> known;
  {
    std::lock_guard<std::mutex> lock(mu_);
    before = envs_;
    known = known_;
  }
  std::vector<std::string> to_watch;
  for (const auto& [name, v] : now) {
    auto was = before.find(name);
    if (was != before.end() && was->second.head == v.head) continue;
    const std::string action = v.sync == "auto" ? "apply" : "plan";
    if (!known.count(name)) {
      // First sight (a new branch, or a server started again): nothing to do when the head is
      // applied already or its run was queued or done before.
      Result<std::string> applied = ws.AppliedCommit(name);
      if (applied.ok() && *applied == v.head) {
        to_watch.push_back(name);
        continue;
      }
      state::RunFilter f;
      f.environment = name;
      Result<state::Page<state::Run>> last = store.ListRuns(f, 0, 1);
      if (last.ok() && !last->items.empty() && last->items[0].commit == v.head &&
          last->items[0].status != "superseded" && last->items[0].status != "canceled" &&
          last->items[0].status != "interrupted") {
        if (applied.ok() && !applied->empty()) to_watch.push_back(name);
        continue;
      }
      Info(was == before.end() ? "new environment" : "new commit",
           {{"environment", Value::String(name)},
            {"branch", Value::String(v.branch)},
            {"commit", Value::String(v.head)},
            {"sync", Value::String(v.sync)}});
    } else {
      Info("new commit", {{"environment", Value::String(name)},
                          {"branch", Value::String(v.branch)},
                          {"commit", Value::String(v.head)},
                          {"sync", Value::String(v.sync)}});
    }
    state::Run run;
    run.environment = name;
    run.action = action;
    run.commit = v.head;
    run.author = "controller";
    (void)Enqueue(store, run, true);
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    envs_ = now;
    for (const auto& [name, v] : now) {
      known_.insert(name);
      kept_reported_.erase(name);  // its branch is back
    }
  }
  for (const std::string& env : to_watch) {
    bool watching;
    {
      std::lock_guard<std::mutex> lock(mu_);
      watching = watchers_.count(env) > 0 || stopping_;
    }
    if (!watching) StartWatch(env);
  }
  // Environments whose branch is gone or whose ttl passed: listed by prune, destroyed here as
  // runs of their own; protected ones are kept and reported once.
  engine::Workspace listing(RunOptions(""));
  engine::PruneRequest list_only;
  Candidates candidates;
  engine::PruneReport pruned = engine::Prune(listing, list_only, candidates);
  if (!pruned.failure.message.empty()) {
    Error("listing gone environments failed", {{"error", Value::String(pruned.failure.message)}});
  }
  for (const engine::PruneCandidate& c : candidates.found) {
    using D = engine::PruneCandidate::Decision;
    if (c.decision == D::kWouldDestroy) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (!destroy_queued_.insert(c.environment).second) continue;
      }
      Info("environment gone: destroying it",
           {{"environment", Value::String(c.environment)}, {"reason", Value::String(c.reason)}});
      state::Run run;
      run.environment = c.environment;
      run.action = "destroy";
      run.author = "controller";
      if (!Enqueue(store, run, false).ok()) {
        std::lock_guard<std::mutex> lock(mu_);
        destroy_queued_.erase(c.environment);
      }
      continue;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!kept_reported_.insert(c.environment).second) continue;
    }
    const bool is_protected = c.decision == D::kProtected;
    const std::string why = is_protected
                                ? "environment " + c.environment + " is protected: " + c.reason +
                                      ", and it is kept (destroy it through the API as an admin)"
                                : "environment " + c.environment + ": " + c.reason +
                                      ", but the declarations it last applied cannot be read; "
                                      "it is kept";
    Info(is_protected ? "protected environment kept" : "environment kept",
         {{"environment", Value::String(c.environment)}, {"reason", Value::String(why)}});
    Publish(store, "env.kept", c.environment, {{"reason", Value::String(why)}});
  }
}

Result<state::Run> Controller::Enqueue(state::StateStore& store, state::Run run, bool supersede) {
  Result<state::EnqueuedRun> queued = store.EnqueueRun(run, supersede);
  if (!queued.ok()) {
    Error("queueing a run failed", {{"environment", Value::String(run.environment)},
                                    {"action", Value::String(run.action)},
                                    {"error", Value::String(queued.error().message)}});
    return queued.error();
  }
  const state::Run& r = queued->run;
  Info("run queued", {{"environment", Value::String(r.environment)},
                      {"run_id", Value::Int(r.id)},
                      {"action", Value::String(r.action)},
                      {"commit", Value::String(r.commit)},
                      {"author", Value::String(r.author)}});
  Publish(store, "run.queued", r.environment,
          {{"run_id", Value::Int(r.id)},
           {"action", Value::String(r.action)},
           {"commit", Value::String(r.commit)},
           {"actor", Value::String(r.author)}});
  RunStatusChanged(r, "queued");
  for (int64_t id : queued->superseded) {
    Info("run superseded", {{"environment", Value::String(r.environment)},
                            {"run_id", Value::Int(id)},
                            {"by", Value::Int(r.id)}});
    Publish(store, "run.superseded", r.environment,
            {{"run_id", Value::Int(id)}, {"superseded_by", Value::Int(r.id)}});
    state::Run old;
    old.id = id;
    old.environment = r.environment;
    old.action = r.action;
    RunStatusChanged(old, "superseded");
  }
  Wake(r.environment);
  return r;
}

void Controller::Publish(state::StateStore& store, const std::string& type, const std::string& env,
                         const std::vector<std::pair<std::string, Value>>& fields) {
  notify::Event e = notify::MakeEvent(type, env, "", fields);
  state::EventRecord rec;
  rec.type = type;
  rec.environment = env;
  rec.payload_json = e.ToJson();
  rec.time = e.time;
  Result<int64_t> appended = store.AppendEvent(rec, {});
  if (!appended.ok()) {
    Error("recording an event failed",
          {{"type", Value::String(type)}, {"error", Value::String(appended.error().message)}});
  }
}

bool Controller::Transition(state::StateStore& store, const state::Run& run,
                            const std::string& from, const std::string& to,
                            const state::RunUpdate& update) {
  Result<bool> moved = store.TransitionRun(run.id, from, to, update);
  if (!moved.ok()) {
    Error("a run's transition failed", {{"run_id", Value::Int(run.id)},
                                        {"from", Value::String(from)},
                                        {"to", Value::String(to)},
                                        {"error", Value::String(moved.error().message)}});
    return false;
  }
  if (!*moved) return false;
  Announce(store, run, to, update);
  return true;
}

void Controller::Announce(state::StateStore& store, const state::Run& run, const std::string& to,
                          const state::RunUpdate& update) {
  Log::Fields fields = {{"environment", Value::String(run.environment)},
                        {"run_id", Value::Int(run.id)},
                        {"action", Value::String(run.action)},
                        {"status", Value::String(to)},
                        {"commit", Value::String(run.commit)}};
  if (update.message) fields.emplace_back("message", Value::String(*update.message));
  Info("run " + to, fields);
  std::vector<std::pair<std::string, Value>> event = {{"run_id", Value::Int(run.id)},
                                                      {"action", Value::String(run.action)},
                                                      {"status", Value::String(to)},
                                                      {"commit", Value::String(run.commit)}};
  if (update.message) event.emplace_back("message", Value::String(*update.message));
  Publish(store, "run." + to, run.environment, event);
  RunStatusChanged(run, to);
}

void Controller::RunStatusChanged(const state::Run& run, const std::string& status) const {
  if (options_.on_run_status) options_.on_run_status(run, status);
}

void Controller::Wake(const std::string& env) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    pending_.insert(env);
  }
  cv_.notify_all();
}

void Controller::RunnerLoop() {
  engine::Workspace probe(RunOptions(""));
  Result<std::unique_ptr<state::StateStore>> opened = state::OpenStateStore(probe.StatePath());
  if (!opened.ok()) {
    Error("a runner cannot open the state", {{"error", Value::String(opened.error().message)}});
    return;
  }
  state::StateStore& store = **opened;
  while (true) {
    std::string env;
    {
      std::unique_lock<std::mutex> lock(mu_);
      auto next = [&] {
        for (const std::string& e : pending_) {
          if (!busy_.count(e)) return e;
        }
        return std::string();
      };
      cv_.wait(lock, [&] { return stopping_ || !next().empty(); });
      if (stopping_) return;
      env = next();
      pending_.erase(env);
      busy_.insert(env);
    }
    while (true) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (stopping_) break;
      }
      Result<std::optional<state::Run>> started = store.StartNextRun(env, "planning");
      if (!started.ok()) {
        Error("starting a run failed", {{"environment", Value::String(env)},
                                        {"error", Value::String(started.error().message)}});
        break;
      }
      if (!*started) break;
      const state::Run& r = **started;
      Info("run planning", {{"environment", Value::String(env)},
                            {"run_id", Value::Int(r.id)},
                            {"action", Value::String(r.action)},
                            {"status", Value::String("planning")},
                            {"commit", Value::String(r.commit)}});
      Publish(store, "run.planning", env,
              {{"run_id", Value::Int(r.id)},
               {"action", Value::String(r.action)},
               {"status", Value::String("planning")},
               {"commit", Value::String(r.commit)}});
      RunStatusChanged(r, "planning");
      Execute(store, **started);
      ReturnFreeMemory();  // a run's plan and evaluation are gone: give their pages back
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      busy_.erase(env);
    }
    cv_.notify_all();
  }
}

void Controller::Execute(state::StateStore& store, state::Run run) {
  auto control = std::make_shared<RunControl>();
  {
    std::lock_guard<std::mutex> lock(mu_);
    running_[run.id] = control;
    if (stopping_) control->stop.Stop();
  }
  engine::Workspace ws(RunOptions(run.commit));
  Status selected = ws.Select(run.environment);
  if (!selected.ok()) {
    state::RunUpdate u;
    u.message = selected.error().message;
    Transition(store, run, "planning", "errored", u);
  } else if (run.action == "plan") {
    engine::PlanRequest request;
    request.env = run.environment;
    engine::PlanReport report = engine::PlanEnvironment(ws, request);
    if (!report.plan) {
      state::RunUpdate u;
      u.message = FailureText(report.failure);
      Transition(store, run, "planning", "errored", u);
    } else if (report.plan->problems.HasErrors()) {
      state::RunUpdate u = PlanUpdate(*report.plan);
      u.message = report.plan->problems.ToString();
      Transition(store, run, "planning", "errored", u);
    } else {
      state::RunUpdate u = PlanUpdate(*report.plan);
      const bool changes = report.HasChanges();
      u.message = changes ? "planned; apply it with POST /api/v1/environments/" + run.environment +
                                "/runs {\"action\": \"apply\"}"
                          : "no changes";
      Transition(store, run, "planning", changes ? "planned" : "no_changes", u);
    }
  } else if (run.action == "apply" || run.action == "destroy") {
    ExecuteApply(store, run, ws, *control);
  } else {
    state::RunUpdate u;
    u.message = "unknown action " + run.action;
    Transition(store, run, "planning", "errored", u);
  }
  std::lock_guard<std::mutex> lock(mu_);
  running_.erase(run.id);
  if (run.action == "destroy") destroy_queued_.erase(run.environment);
}

void Controller::ExecuteApply(state::StateStore& store, const state::Run& run,
                              engine::Workspace& ws, RunControl& control) {
  // The watch compares live objects with state: during an apply they differ for a moment, and
  // an enforcing watch must not revert what the apply just wrote. It starts again afterwards,
  // on the commit applied.
  StopWatch(run.environment);
  RunObserver observer(*this, store, run, control);
  engine::ApplyRequest request;
  request.destroy = run.action == "destroy";
  request.stop = &control.stop;
  engine::ApplyReport report = engine::ApplyEnvironment(ws, request, observer);
  const std::string from = observer.status();
  bool canceled;
  {
    std::lock_guard<std::mutex> lock(mu_);
    canceled = control.canceled;
  }
  const std::string stopped = canceled ? "canceled" : "interrupted";
  state::RunUpdate u;
  if (!report.steps.empty()) u.apply_id = report.steps.back().result.apply_id;
  using O = engine::ApplyReport::Outcome;
  switch (report.outcome) {
    case O::kNoChanges:
      if (report.plan) u.plan_hash = report.plan_hash;
      u.message = "no changes";
      Transition(store, run, from, "no_changes", u);
      break;
    case O::kNotApproved:
      // Canceled through the API (the run is canceled already) or stopped before any change.
      if (control.stop.stop_requested()) {
        u.message = "stopped before any change; nothing was changed";
        Transition(store, run, from, stopped, u);
      }
      break;
    case O::kInvalid:
      u.message = FailureText(report.failure);
      Transition(store, run, from, "errored", u);
      break;
    case O::kApplied:
    case O::kFailed: {
      std::string summary;
      for (const engine::StepResult& s : report.steps) {
        if (!summary.empty()) summary += "; ";
        if (report.steps.size() > 1) summary += "step " + std::to_string(s.step.index + 1) + ": ";
        summary += s.error.empty() ? s.result.summary : s.error;
      }
      if (report.ok()) {
        u.message = summary;
        Transition(store, run, from, "applied", u);
        break;
      }
      u.message = report.failure.any() ? FailureText(report.failure) : summary;
      if (!summary.empty() && report.failure.any()) *u.message += " (" + summary + ")";
      Transition(store, run, from, control.stop.stop_requested() ? stopped : "errored", u);
      break;
    }
  }
  if (report.dispatcher) {
    Result<notify::Dispatcher::Report> sent = report.dispatcher->DeliverDue(5);
    if (!sent.ok()) {
      Error("notifications", {{"environment", Value::String(run.environment)},
                              {"error", Value::String(sent.error().message)}});
    }
  }
  if (run.action != "destroy") StartWatch(run.environment);
}

void Controller::StartWatch(const std::string& env) {
  if (!options_.watch) return;
  StopWatch(env);
  auto w = std::make_unique<Watcher>();
  Watcher* raw = w.get();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    watchers_[env] = std::move(w);
  }
  raw->thread = std::thread([this, env, raw] {
    std::string applied;
    {
      engine::Workspace probe(RunOptions(""));
      Result<std::string> a = probe.AppliedCommit(env);
      if (!a.ok()) {
        Error("watch",
              {{"environment", Value::String(env)}, {"error", Value::String(a.error().message)}});
        return;
      }
      applied = *a;
    }
    engine::Workspace ws(RunOptions(applied));
    Status selected = ws.Select(env);
    if (!selected.ok()) {
      Error("watch", {{"environment", Value::String(env)},
                      {"error", Value::String(selected.error().message)}});
      return;
    }
    engine::WatchOptions wo;
    wo.env = env;
    wo.interval = options_.watch_interval;
    // Every run of this environment stops the watch and waits for it (StopWatch): see a stop
    // within 50 ms, not the CLI's 500, so a webhook's commit is not held up by the pause.
    wo.stop_check_ms = 50;
    // Many environments are watched at once: between its checks a watch holds its watchers,
    // not its declarations (each check evaluates again, about 10 ms for 1,000 resources).
    wo.release_below = 10000;
    WatchObserver observer(*this, ws, env);
    Result<engine::WatchReport> done = engine::Watch(ws, wo, observer, raw->stop);
    if (!done.ok()) {
      Error("watch",
            {{"environment", Value::String(env)}, {"error", Value::String(done.error().message)}});
    }
  });
}

void Controller::StopWatch(const std::string& env) {
  std::unique_ptr<Watcher> w;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = watchers_.find(env);
    if (it == watchers_.end()) return;
    w = std::move(it->second);
    watchers_.erase(it);
  }
  w->stop.Stop();
  if (w->thread.joinable()) w->thread.join();
}

Result<state::Run> Controller::RequestRun(const std::string& env, const std::string& action,
                                          const std::string& author) {
  if (action != "plan" && action != "apply" && action != "destroy") {
    return MakeError("unknown action \"" + action + "\": use plan, apply or destroy");
  }
  state::Run run;
  run.environment = env;
  run.action = action;
  run.author = author;
  if (action != "destroy") {
    std::optional<EnvironmentView> v = FindEnvironment(env);
    if (!v) return MakeError("no branch maps to environment " + env);
    run.commit = v->head;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return MakeError("the server is stopping");
  }
  std::lock_guard<std::mutex> lock(api_mu_);
  return Enqueue(*api_store_, run, action != "destroy");
}

Result<state::Run> Controller::CancelRun(int64_t id) {
  std::lock_guard<std::mutex> lock(api_mu_);
  for (int attempt = 0; attempt < 3; ++attempt) {
    Result<std::optional<state::Run>> got = api_store_->GetRun(id);
    if (!got.ok()) return got.error();
    if (!*got) return MakeError("no run " + std::to_string(id));
    const state::Run& r = **got;
    if (state::IsFinalRunStatus(r.status)) {
      return MakeError("run " + std::to_string(id) + " is " + r.status + " already");
    }
    if (state::IsActiveRunStatus(r.status)) {
      std::lock_guard<std::mutex> l(mu_);
      auto it = running_.find(id);
      if (it != running_.end()) {
        it->second->canceled = true;
        it->second->stop.Stop();
        return r;
      }
      // Between two states of its runner: look again.
      continue;
    }
    state::RunUpdate u;
    u.message = "canceled";
    if (Transition(*api_store_, r, r.status, "canceled", u)) {
      Result<std::optional<state::Run>> now = api_store_->GetRun(id);
      if (now.ok() && *now) return **now;
      return r;
    }
  }
  return MakeError("run " + std::to_string(id) + " changed while it was being canceled; try again");
}

}  // namespace driftless::server::controller
