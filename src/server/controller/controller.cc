#include "server/controller/controller.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <utility>

#include "base/hash.h"
#include "base/identity.h"
#include "base/memory.h"
#include "engine/apply.h"
#include "engine/notifications.h"
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

// How many distinct people other than its author approved `run`'s plan `hash`.
int CountApprovals(const std::vector<state::Approval>& given, const state::Run& run,
                   const std::string& hash) {
  std::set<std::string> who;
  for (const state::Approval& a : given) {
    if (a.decision == "approved" && a.plan_hash == hash && a.who != run.author) who.insert(a.who);
  }
  return static_cast<int>(who.size());
}

// What the hash of a change depends on (plan::Plan::Hash), from its JSON: action, spec hash,
// live object (redacted on both sides).
std::string ChangeKey(const Value& change) {
  std::string key;
  for (const char* member : {"action", "spec_hash", "live"}) {
    const Value* v = change.Find(member);
    key += v == nullptr ? "null" : value::ToJson(*v);
    key += '\n';
  }
  return key;
}

// True when every change `fresh` plans is in `stored_json` (a run's redacted plan) as it is
// there: that run's plan already covers it.
bool PlanCovers(const std::string& stored_json, const plan::Plan& fresh) {
  Result<Value> stored = value::ParseJson(stored_json);
  if (!stored.ok()) return false;
  const Value* list = stored->Find("changes");
  if (list == nullptr || !list->is_list()) return false;
  std::map<std::string, std::string> have;
  for (const Value& c : list->as_list()) {
    const Value* address = c.Find("address");
    if (address != nullptr && address->is_string()) have[address->as_string()] = ChangeKey(c);
  }
  bool covered = true;
  fresh.ForEachChange([&](const plan::Change& c) {
    if (!covered || c.action == plan::Action::kNoop) return;
    auto it = have.find(c.address);
    covered = it != have.end() && it->second == ChangeKey(plan::ChangeToJson(c));
  });
  return covered;
}

// The plan's first lines, for a notification (Slack shows twenty).
std::string ShortDiff(const std::string& plan_text) {
  constexpr size_t kMax = 4000;
  if (plan_text.size() <= kMax) return plan_text;
  size_t cut = plan_text.rfind('\n', kMax);
  return plan_text.substr(0, cut == std::string::npos ? kMax : cut) + "\n...";
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
  RunObserver(Controller& c, state::StateStore& store, engine::Workspace& ws, const state::Run& run,
              RunControl& control, bool resumed)
      : c_(c), store_(store), ws_(ws), run_(run), control_(control), resumed_(resumed) {}

  void OnPlan(const plan::Plan& p) override {
    plan_ = PlanUpdate(p);
    if (c_.Transition(store_, run_, "planning", "planned", plan_)) status_ = "planned";
  }
  // Applies only with the approvals the environment requires, of this very plan.
  bool Approve(const plan::Plan& p) override {
    if (control_.stop.stop_requested() || status_ != "planned") return false;
    const int required = c_.RequiredApprovals(
        run_, ws_.environment() != nullptr ? &ws_.environment()->match() : nullptr);
    if (required > 0) {
      const std::string& hash = *plan_.plan_hash;
      if (resumed_ && hash != run_.plan_hash) {
        c_.Discard(&ws_, store_, run_, "planned",
                   "the plan changed after it was approved (plan hash " +
                       run_.plan_hash.substr(0, 12) + ", now " + hash.substr(0, 12) + ")");
        status_ = "superseded";
        return false;
      }
      Result<std::vector<state::Approval>> given = store_.ListApprovals(run_.id);
      const int have = given.ok() ? CountApprovals(*given, run_, hash) : 0;
      if (have < required) {
        state::RunUpdate u;
        u.message = "waiting for " + std::to_string(required - have) + " more approval" +
                    (required - have == 1 ? "" : "s") + " of plan " + hash.substr(0, 12) +
                    ": POST /api/v1/runs/" + std::to_string(run_.id) + "/approve";
        if (!c_.Transition(store_, run_, "planned", "awaiting_approval", u)) return false;
        status_ = "awaiting_approval";
        c_.Notify(&ws_, store_, run_, "approval.requested",
                  {{"run_id", Value::Int(run_.id)},
                   {"action", Value::String(run_.action)},
                   {"commit", Value::String(run_.commit)},
                   {"plan_hash", Value::String(hash)},
                   {"required", Value::Int(required)},
                   {"approvals", Value::Int(have)},
                   {"actor", Value::String(run_.author)},
                   {"summary", Value::String(p.Summary())},
                   {"diff", Value::String(ShortDiff(*plan_.plan_text))}});
        return false;
      }
    }
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
  engine::Workspace& ws_;
  const state::Run& run_;
  RunControl& control_;
  const bool resumed_;
  state::RunUpdate plan_;  // what OnPlan recorded
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
    Log::Fields fields = {{"environment", Value::String(env_)},
                          {"type", Value::String(e.type)},
                          {"resource", Value::String(e.resource)}};
    // A failed check says why (a target down, or a write fenced after the ownership was lost).
    if (const Value* error = e.extra.Find("error"); error != nullptr && error->is_string()) {
      fields.emplace_back("error", *error);
    }
    c_.Info("event", fields);
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
    std::optional<EnvironmentView> view = c_.FindEnvironment(env_);
    if (view.has_value() && !view->remediates_unapproved) {
      // Reverted only when approved: a remediation run waits (the drift stays open, reported).
      c_.QueueRemediation(**store, env_, p);
      return false;
    }
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
  shared_ = fetch_store_->SharesServers();
  if (shared_) {
    // Several servers: this one reconciles only the environments it owns; a run that a dead
    // owner left active is marked interrupted by whoever takes the environment over (Adopt).
    Result<std::unique_ptr<state::StateStore>> opened = state::OpenStateStore(location);
    if (!opened.ok()) return opened.error();
    lease_store_ = std::move(*opened);
    // Runs queued, approved or asked to cancel through other servers: heard on the `runs`
    // channel (subscribed before the state is first read below, so that none is missed).
    opened = state::OpenStateStore(location);
    if (!opened.ok()) return opened.error();
    listen_store_ = std::move(*opened);
    Result<std::unique_ptr<state::ChangeListener>> listening =
        listen_store_->Listen({state::kRunsChannel});
    if (!listening.ok()) return listening.error();
    listener_ = std::move(*listening);
    const Identity me = CurrentIdentity();
    server_id_ = !options_.server_id.empty()
                     ? options_.server_id
                     : me.host + "-" + std::to_string(me.pid) + "-" + RandomHex(3);
  } else {
    // A run left active by a server that died cannot be going on: say so (one server per
    // state).
    state::RunFilter active;
    active.statuses = {"planning", "applying"};
    active.plans = false;
    Result<state::Page<state::Run>> left = fetch_store_->ListRuns(active, 0, 1000);
    if (!left.ok()) return left.error();
    for (const state::Run& r : left->items) {
      state::RunUpdate u;
      u.message =
          "the server stopped while this run was " + r.status + "; history says what was applied";
      Transition(*fetch_store_, r, r.status, "interrupted", u);
    }
  }
  state::RunFilter queued;
  queued.statuses = {"queued", "awaiting_approval"};  // approved while no server ran
  queued.plans = false;
  Result<state::Page<state::Run>> waiting = fetch_store_->ListRuns(queued, 0, 1000);
  if (!waiting.ok()) return waiting.error();
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const state::Run& r : waiting->items) pending_.insert(r.environment);
  }
  fetcher_ = std::thread([this] { FetchLoop(); });
  if (shared_) {
    leaser_ = std::thread([this] { LeaseLoop(); });
    listen_thread_ = std::thread([this] { ListenLoop(); });
  }
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
  if (listener_) listener_->Interrupt();
  if (fetcher_.joinable()) fetcher_.join();
  if (leaser_.joinable()) leaser_.join();
  if (listen_thread_.joinable()) listen_thread_.join();
  for (std::thread& t : runners_) {
    if (t.joinable()) t.join();
  }
  std::vector<std::string> watched;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [env, w] : watchers_) watched.push_back(env);
  }
  for (const std::string& env : watched) StopWatch(env);
  if (lease_store_ != nullptr) {
    // Every run has ended: give every environment back at once, so that the other servers take
    // them over at their next look rather than after the lease.
    Status gone = lease_store_->Deregister(server_id_);
    if (gone.ok()) {
      Info("environments given back", {{"server", Value::String(server_id_)}});
    } else {
      Error("giving the environments back failed; they are taken over when their lease ends",
            {{"error", Value::String(gone.error().message)}});
    }
    lease_store_.reset();
  }
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

bool Controller::healthy() const {
  std::lock_guard<std::mutex> lock(mu_);
  return healthy_;
}

std::vector<std::string> Controller::Owned() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> out;
  if (!shared_) {
    for (const auto& [name, v] : envs_) out.push_back(name);
    return out;
  }
  for (const auto& [name, token] : owned_) out.push_back(name);
  return out;
}

bool Controller::OwnsLocked(const std::string& env) const {
  return !shared_ || owned_.count(env) > 0;
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
      ++fetches_started_;
    }
    Fetch(*fetch_store_);
    {
      std::lock_guard<std::mutex> lock(mu_);
      ready_ = true;
      ++fetches_;
    }
    cv_.notify_all();  // the lease and listen threads wait for the first fetch
    next = Clock::now() + std::chrono::milliseconds(
                              static_cast<int64_t>(std::max(0.05, options_.poll_seconds) * 1000));
  }
}

int64_t Controller::LeaseMs() const {
  return static_cast<int64_t>(std::max(0.3, options_.lease_seconds) * 1000);
}

void Controller::LeaseLoop() {
  const auto period = std::chrono::milliseconds(LeaseMs() / kLookParts);
  while (true) {
    bool fetched;
    {
      std::lock_guard<std::mutex> lock(mu_);
      fetched = ready_;
    }
    // The first look once the first fetch knows the environments; then every tenth of the
    // lease (the heartbeat goes on while the state is being fetched).
    if (fetched) LeaseTick(*lease_store_);
    std::unique_lock<std::mutex> lock(mu_);
    if (cv_.wait_for(lock, period, [&] { return stopping_; })) return;
  }
}

bool Controller::RenewIfDue(state::StateStore& store) {
  if (Clock::now() - renew_sent_ < std::chrono::milliseconds(LeaseMs() / kLookParts)) return true;
  return Renew(store);
}

bool Controller::StateAway(const std::string& error) {
  bool was;
  {
    std::lock_guard<std::mutex> lock(mu_);
    was = healthy_;
    healthy_ = false;
  }
  if (was) {
    Error("the state cannot be reached: reconciling nothing until it is back",
          {{"error", Value::String(error)}});
  }
  // Past the hold of the last renewal that reached the state (counted from before it was sent,
  // so never later than the database's expiry), the environments are others' to take: stop
  // working on them.
  if (Clock::now() - renewed_ > std::chrono::milliseconds(HoldMs())) {
    std::vector<std::string> mine;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (const auto& [env, token] : owned_) mine.push_back(env);
    }
    for (const std::string& env : mine) Disown(env, "its lease ran out while the state was away");
  }
  return false;
}

bool Controller::Renew(state::StateStore& store) {
  const int64_t hold_ms = HoldMs();
  const Clock::time_point sent = Clock::now();
  renew_sent_ = sent;
  const Identity me = CurrentIdentity();
  state::ServerRecord self;
  self.id = server_id_;
  self.host = me.host;
  self.pid = me.pid;
  self.started_at = NowUnix();
  Result<std::vector<state::ServerRecord>> live = store.Heartbeat(self, hold_ms);
  if (!live.ok()) return StateAway(live.error().message);
  Result<std::vector<state::Ownership>> renewed = store.RenewOwnerships(server_id_, hold_ms);
  if (!renewed.ok()) return StateAway(renewed.error().message);
  renewed_ = sent;
  live_servers_ = std::max<size_t>(1, live->size());
  {
    bool was;
    {
      std::lock_guard<std::mutex> lock(mu_);
      was = healthy_;
      healthy_ = true;
    }
    if (!was) {
      Info("the state is back: reconciling again", {});
      // Runs that could not start meanwhile: their runners gave up while the state was away.
      std::vector<std::string> mine;
      {
        std::lock_guard<std::mutex> lock(mu_);
        for (const auto& [env, token] : owned_) mine.push_back(env);
      }
      for (const std::string& env : mine) Wake(env);
    }
  }
  // Lost: taken over by another server (this one was paused or cut off longer than its hold).
  // Only this thread adds to owned_ or gives back, so owned_ and the state agree here but for
  // what others did.
  std::map<std::string, int64_t> still;
  for (const state::Ownership& o : *renewed) still[o.environment] = o.token;
  std::vector<std::string> lost;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [env, token] : owned_) {
      auto it = still.find(env);
      if (it == still.end() || it->second != token) lost.push_back(env);
    }
  }
  for (const std::string& env : lost) Disown(env, "taken over by another server");
  // Owned in the state but unknown here (a take whose answer was lost): given back.
  for (const auto& [env, token] : still) {
    bool known;
    {
      std::lock_guard<std::mutex> lock(mu_);
      known = owned_.count(env) > 0;
    }
    if (!known) (void)store.ReleaseOwnership(env, token);
  }
  return true;
}

void Controller::LeaseTick(state::StateStore& store) {
  if (!Renew(store)) return;

  // Every environment someone must own: those branches map to, those gone (to destroy or report
  // kept), those with runs waiting (as the listen thread last read them: LookAtRuns).
  std::set<std::string> all;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [name, v] : envs_) all.insert(name);
    all.insert(gone_.begin(), gone_.end());
    all.insert(waiting_.begin(), waiting_.end());
  }
  if (all.empty()) return;
  const size_t servers = live_servers_;
  const size_t share = (all.size() + servers - 1) / servers;

  // Above the fair share (a server joined): give back environments between their runs, never
  // in the middle of one; the newcomer takes them at its next look. Each is dropped from owned_
  // only when it is given back, so that a renewal in between (RenewIfDue) sees the two agree.
  std::vector<std::pair<std::string, int64_t>> give;
  {
    std::lock_guard<std::mutex> lock(mu_);
    size_t held = owned_.size();
    for (const auto& [env, token] : owned_) {
      // Above the share, or no longer an environment at all (destroyed, its branch gone).
      if ((held <= share && all.count(env)) || busy_.count(env) || stopping_) continue;
      give.emplace_back(env, token);
      --held;
    }
  }
  for (const auto& [env, token] : give) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = owned_.find(env);
      // A run began meanwhile, or it was lost: kept for now, or already gone.
      if (it == owned_.end() || it->second != token || busy_.count(env) || stopping_) continue;
      pending_.erase(env);
      owned_.erase(it);
    }
    StopWatch(env);
    Status released = store.ReleaseOwnership(env, token);
    Info("environment given back", {{"environment", Value::String(env)},
                                    {"server", Value::String(server_id_)},
                                    {"token", Value::Int(token)},
                                    {"share", Value::Int(static_cast<int64_t>(share))},
                                    {"servers", Value::Int(static_cast<int64_t>(servers))}});
    if (!released.ok()) {
      Error("giving an environment back failed; it is taken over when its lease ends",
            {{"environment", Value::String(env)},
             {"error", Value::String(released.error().message)}});
    }
    if (!RenewIfDue(store)) return;
  }

  // Below it: take environments no one owns, or whose owner's hold ran out.
  size_t held;
  {
    std::lock_guard<std::mutex> lock(mu_);
    held = owned_.size();
    if (stopping_) return;
  }
  if (held < share) {
    Result<state::Ownerships> owners = store.ListOwnerships();
    if (!owners.ok()) return (void)StateAway(owners.error().message);
    std::map<std::string, const state::Ownership*> by_env;
    for (const state::Ownership& o : owners->items) by_env[o.environment] = &o;
    std::vector<std::pair<std::string, std::string>> free;  // (order key, environment)
    for (const std::string& env : all) {
      auto it = by_env.find(env);
      if (it != by_env.end() && it->second->expires_ms >= owners->now_ms) continue;
      // Each server tries them in an order of its own, so that they rarely race for one.
      free.emplace_back(Sha256Hex(server_id_ + "\n" + env), env);
    }
    std::sort(free.begin(), free.end());
    const int64_t hold_ms = HoldMs();
    for (const auto& [key, env] : free) {
      if (held >= share) break;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (stopping_) return;
      }
      Result<std::optional<state::Ownership>> taken = store.TakeOwnership(env, server_id_, hold_ms);
      if (!taken.ok()) return (void)StateAway(taken.error().message);
      if (!*taken) continue;  // another server was faster
      ++held;
      Adopt(store, **taken);
      // Adopting a share after a takeover takes a while under load: the heartbeat must not
      // wait for it.
      if (!RenewIfDue(store)) return;
    }
  }
}

void Controller::ListenLoop() {
  const auto period = std::chrono::milliseconds(
      static_cast<int64_t>(std::max(0.05, options_.run_poll_seconds) * 1000));
  {
    // The first look once the first fetch knows the environments (notifications wait in the
    // listener meanwhile).
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return stopping_ || ready_; });
    if (stopping_) return;
  }
  Clock::time_point next_poll = Clock::now();
  bool failing = false;
  while (true) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
    }
    std::set<std::string> envs;
    bool full = Clock::now() >= next_poll;
    if (!full) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(next_poll - Clock::now());
      Result<state::Wakeup> w = listener_->Wait(static_cast<int>(
          std::max<int64_t>(1, std::min<int64_t>(left.count(), std::numeric_limits<int>::max()))));
      if (!w.ok()) {
        // The listener connects again by itself (pausing between tries); the lease thread says
        // whether the state is reachable.
        if (!failing) {
          Error("listening for runs failed", {{"error", Value::String(w.error().message)}});
        }
        failing = true;
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait_for(lock, std::chrono::seconds(1), [&] { return stopping_; });
        continue;
      }
      failing = false;
      if (w->interrupted) continue;
      full = w->missed;  // lost notifications: read everything
      for (const state::Notification& n : w->notifications) {
        if (n.channel == state::kRunsChannel) envs.insert(n.payload);
      }
    }
    bool read = true;
    if (full) {
      next_poll = Clock::now() + period;
      read = LookAtRuns(*listen_store_, "");
    } else {
      for (const std::string& env : envs) read = LookAtRuns(*listen_store_, env) && read;
    }
    // A read that failed (a connection that broke, connected again at its next statement):
    // everything is read again in a second.
    if (!read) next_poll = std::min(next_poll, Clock::now() + std::chrono::seconds(1));
  }
}

bool Controller::LookAtRuns(state::StateStore& store, const std::string& env) {
  state::RunFilter waiting;
  waiting.environment = env;
  waiting.statuses = {"queued", "awaiting_approval"};
  Result<state::Page<state::Run>> queued = store.ListRuns(waiting, 0, 1000);
  if (!queued.ok()) {
    Error("reading the waiting runs failed",
          {{"environment", Value::String(env)}, {"error", Value::String(queued.error().message)}});
    return false;
  }
  // This server's waiting runs, queued by any server. One of a commit this server has not
  // fetched yet (another server got the webhook) waits for a fetch first.
  bool fetch = false;
  bool running_here = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (env.empty()) {
      waiting_.clear();
    } else {
      waiting_.erase(env);
    }
    for (const state::Run& r : queued->items) waiting_.insert(r.environment);
    for (const auto& [id, control] : running_) {
      running_here = running_here || env.empty() || control->environment == env;
    }
  }
  for (const state::Run& r : queued->items) {
    bool mine;
    {
      std::lock_guard<std::mutex> lock(mu_);
      mine = owned_.count(r.environment) > 0;
      auto v = envs_.find(r.environment);
      if (mine && r.status == "queued" && !r.commit.empty() && r.action != "destroy" &&
          r.action != "remediation" && (v == envs_.end() || v->second.head != r.commit)) {
        // A commit this server has not fetched: the first run of it asks for a fetch that
        // starts after now, and every run of it waits for that fetch, which wakes them (a run
        // started before it errs with an unknown revision: 14 of 1,000 in the fleet bench).
        auto [need, fresh] = fetch_for_.emplace(r.commit, fetches_started_ + 1);
        fetch = fetch || fresh;
        if (fresh || fetches_ < need->second) continue;
      }
    }
    if (mine) Wake(r.environment);
  }
  if (fetch) TriggerFetch();  // the fetch wakes the runs it finds queued
  if (!running_here) return true;
  // Cancels asked through another server (RequestCancel) of the runs running here.
  Result<std::vector<int64_t>> cancels = store.CancelRequests(env);
  if (!cancels.ok()) {
    Error("reading the cancel requests failed",
          {{"environment", Value::String(env)}, {"error", Value::String(cancels.error().message)}});
    return false;
  }
  for (int64_t id : *cancels) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = running_.find(id);
    if (it == running_.end() || it->second->canceled) continue;
    it->second->canceled = true;
    it->second->stop.Stop();
    Info("cancel asked through another server",
         {{"environment", Value::String(it->second->environment)}, {"run_id", Value::Int(id)}});
  }
  return true;
}

void Controller::Adopt(state::StateStore& store, const state::Ownership& o) {
  const std::string& env = o.environment;
  {
    std::lock_guard<std::mutex> lock(mu_);
    owned_[env] = o.token;
  }
  Info("environment owned", {{"environment", Value::String(env)},
                             {"server", Value::String(server_id_)},
                             {"token", Value::Int(o.token)}});
  // A run left active belongs to an owner whose lease ran out: it is not going on any more
  // (and if that owner comes back, its writes are fenced). Interrupted, then queued again.
  store.SetRunFence(env, o.token);
  state::RunFilter f;
  f.environment = env;
  // Statuses and commits: its runs' plans (hundreds of kilobytes each for 1,000 files) are not
  // read, so that adopting a dead server's share reads little.
  f.plans = false;
  Result<state::Page<state::Run>> last = store.ListRuns(f, 0, 20);
  std::optional<state::Run> again;
  if (last.ok()) {
    for (const state::Run& r : last->items) {
      if (!state::IsActiveRunStatus(r.status)) continue;
      state::RunUpdate u;
      u.message = "the server that ran it lost environment " + env + " while this run was " +
                  r.status + " (its lease ran out); history says what was applied, and server " +
                  server_id_ + " runs it again";
      if (Transition(store, r, r.status, "interrupted", u) && !again && r.action != "remediation") {
        again = r;
      }
    }
    // Interrupted before this server took over (a server that stopped in the middle of it).
    if (!again && !last->items.empty() && last->items[0].status == "interrupted" &&
        last->items[0].action != "remediation" && last->items[0].action != "plan") {
      again = last->items[0];
    }
    // A head that no run is for yet (the servers saw it before anyone owned the environment).
    std::optional<EnvironmentView> v = FindEnvironment(env);
    if (!again && v && v->applied != v->head) {
      const bool has_run = !last->items.empty() && last->items[0].commit == v->head &&
                           last->items[0].status != "superseded" &&
                           last->items[0].status != "canceled" &&
                           last->items[0].status != "interrupted";
      if (!has_run) {
        state::Run r;
        r.environment = env;
        r.action = v->sync == "auto" ? "apply" : "plan";
        r.commit = v->head;
        again = r;
      }
    }
  }
  store.SetRunFence("", 0);
  if (again) {
    state::Run run;
    run.environment = env;
    run.action = again->action;
    run.commit = again->commit;
    run.author = "controller";
    if (run.action != "destroy") {
      std::optional<EnvironmentView> v = FindEnvironment(env);
      if (v) run.commit = v->head;  // the newest commit, which converges it
    }
    (void)Enqueue(store, run, run.action != "destroy");
  } else {
    Wake(env);  // runs queued for it, if any
  }
  StartWatch(env);
}

void Controller::Disown(const std::string& env, const std::string& why) {
  bool had;
  {
    std::lock_guard<std::mutex> lock(mu_);
    had = owned_.erase(env) > 0;
    pending_.erase(env);
    for (auto& [id, control] : running_) {
      if (control->environment == env) control->stop.Stop();
    }
  }
  if (!had) return;
  StopWatch(env);
  // Logged once its watch has ended: nothing of this server's works on it any more but a run
  // being stopped (whose writes are fenced).
  Error("environment lost", {{"environment", Value::String(env)},
                             {"server", Value::String(server_id_)},
                             {"reason", Value::String(why)}});
}

void Controller::Fetch(state::StateStore& store) {
  engine::WorkspaceOptions fetching = RunOptions("");
  fetching.fetch = true;
  engine::Workspace ws(fetching);
  ws.UseState(&store);  // the fetch thread's connection, not one more per fetch
  Result<const std::vector<engine::BranchEnvironment>*> branches = ws.BranchEnvironments();
  if (!branches.ok()) {
    Error("fetch failed", {{"error", Value::String(branches.error().message)}});
    return;
  }
  std::map<std::string, EnvironmentView> now;
  for (const engine::BranchEnvironment& be : **branches) {
    EnvironmentView v{be.match.name, be.branch.name, be.branch.head.id, be.match.sync(),
                      be.match.is_protected()};
    v.approvals = be.match.required_approvals();
    v.remediates_unapproved = be.match.remediates_unapproved();
    if (!now.emplace(v.name, v).second) {
      Error("two branches map to one environment; the first (by name) is followed",
            {{"environment", Value::String(v.name)},
             {"branch", Value::String(be.branch.name)},
             {"followed", Value::String(now[v.name].branch)}});
    }
  }
  // How far each branch head is ahead of what was applied, for the API (commits_behind): the
  // commits applied read in one statement for every environment.
  Result<source::GitRepository*> repo = ws.Repo();
  Result<std::map<std::string, std::string>> applied_commits = store.AppliedCommits();
  if (!applied_commits.ok()) {
    Error("reading the commits applied failed",
          {{"error", Value::String(applied_commits.error().message)}});
  }
  auto applied_of = [&](const std::string& name) -> Result<std::string> {
    if (!applied_commits.ok()) return applied_commits.error();
    auto it = applied_commits->find(name);
    return it == applied_commits->end() ? std::string() : it->second;
  };
  for (auto& [name, v] : now) {
    Result<std::string> applied = applied_of(name);
    if (!applied.ok() || applied->empty()) continue;
    v.applied = *applied;
    if (*applied == v.head) {
      v.behind = 0;
    } else if (repo.ok() && *repo != nullptr) {
      Result<int64_t> n = (*repo)->CountBetween(*applied, v.head);
      if (n.ok()) v.behind = *n;
      // The rule at the applied commit counts too: a commit cannot lift its own protection
      // or approvals.
      Result<source::CommitInfo> at = (*repo)->Resolve(*applied);
      Result<std::optional<config::EnvironmentMatch>> was =
          at.ok() ? ws.MapBranch(v.branch, *at)
                  : Result<std::optional<config::EnvironmentMatch>>(at.error());
      if (was.ok() && was->has_value()) {
        v.is_protected = v.is_protected || (*was)->is_protected();
        v.approvals = std::max(v.approvals, (*was)->required_approvals());
        v.remediates_unapproved = v.remediates_unapproved && (*was)->remediates_unapproved();
      }
    }
  }
  std::map<std::string, EnvironmentView> before;
  std::set<std::string> known;
  {
    // The views first, then the runs: a runner that starts a run at once must find the rule it
    // runs under (its approvals).
    std::lock_guard<std::mutex> lock(mu_);
    before = envs_;
    known = known_;
    envs_ = now;
    for (const auto& [name, v] : now) {
      known_.insert(name);
      kept_reported_.erase(name);  // its branch is back
    }
  }
  std::vector<std::string> to_watch;
  for (const auto& [name, v] : now) {
    auto was = before.find(name);
    if (was != before.end() && was->second.head == v.head) continue;
    const std::string action = v.sync == "auto" ? "apply" : "plan";
    if (shared_ && known.count(name)) {
      // Every server fetches and any may see the new head first (a webhook goes to any of
      // them): the first queues the run, the others find it queued; the state decides between
      // two that look at the same moment.
      state::Run run;
      run.environment = name;
      run.action = action;
      run.commit = v.head;
      run.author = "controller";
      if (EnqueueUnlessCovered(store, run)) {
        Info("new commit", {{"environment", Value::String(name)},
                            {"branch", Value::String(v.branch)},
                            {"commit", Value::String(v.head)},
                            {"sync", Value::String(v.sync)}});
      }
      continue;
    }
    if (shared_ && !known.count(name)) {
      // First sight: its owner queues what it needs when it takes it over (Adopt); the others
      // would only race it.
      bool mine;
      {
        std::lock_guard<std::mutex> lock(mu_);
        mine = OwnsLocked(name);
      }
      if (!mine) continue;
    }
    if (!known.count(name)) {
      // First sight (a new branch, or a server started again): nothing to do when the head is
      // applied already or its run was queued or done before.
      Result<std::string> applied = applied_of(name);
      if (applied.ok() && *applied == v.head) {
        to_watch.push_back(name);
        continue;
      }
      if (Result<bool> covered = state::NewestRunCovers(store, name, v.head);
          covered.ok() && *covered) {
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
  for (const std::string& env : to_watch) {
    bool watching;
    {
      std::lock_guard<std::mutex> lock(mu_);
      watching = watchers_.count(env) > 0 || stopping_ || !OwnsLocked(env);
    }
    if (!watching) StartWatch(env);
  }
  // Environments whose branch is gone or whose ttl passed: listed by prune, destroyed here as
  // runs of their own; protected ones are kept and reported once.
  engine::Workspace listing(RunOptions(""));
  listing.UseState(&store);
  engine::PruneRequest list_only;
  Candidates candidates;
  engine::PruneReport pruned = engine::Prune(listing, list_only, candidates);
  if (!pruned.failure.message.empty()) {
    Error("listing gone environments failed", {{"error", Value::String(pruned.failure.message)}});
  }
  {
    // Someone must own them to destroy them, or to report them kept.
    std::lock_guard<std::mutex> lock(mu_);
    gone_.clear();
    for (const engine::PruneCandidate& c : candidates.found) gone_.insert(c.environment);
  }
  for (const engine::PruneCandidate& c : candidates.found) {
    using D = engine::PruneCandidate::Decision;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!OwnsLocked(c.environment)) continue;  // its owner destroys it, or reports it kept
    }
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
    QueueFailed(run, queued.error());
    return queued.error();
  }
  Queued(store, *queued);
  return queued->run;
}

bool Controller::EnqueueUnlessCovered(state::StateStore& store, const state::Run& run) {
  Result<std::optional<state::EnqueuedRun>> queued = store.EnqueueRunUnlessCovered(run);
  if (!queued.ok()) {
    QueueFailed(run, queued.error());
    return false;
  }
  if (!*queued) {
    Wake(run.environment);  // queued by another server: run by this one if it owns it
    return false;
  }
  Queued(store, **queued);
  return true;
}

void Controller::QueueFailed(const state::Run& run, const driftless::Error& error) {
  Error("queueing a run failed", {{"environment", Value::String(run.environment)},
                                  {"action", Value::String(run.action)},
                                  {"error", Value::String(error.message)}});
}

void Controller::Queued(state::StateStore& store, const state::EnqueuedRun& queued) {
  const state::Run& r = queued.run;
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
  for (int64_t id : queued.superseded) {
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
        for (auto it = pending_.begin(); it != pending_.end();) {
          if (!OwnsLocked(*it)) {
            it = pending_.erase(it);  // its owner runs it
            continue;
          }
          if (healthy_ && !busy_.count(*it)) return *it;
          ++it;
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
        if (stopping_ || !healthy_ || !OwnsLocked(env)) break;
        // Every run write of this environment through `store` checks that this server still
        // owns it, with the token it owns it by: a server that lost it writes nothing.
        if (shared_) store.SetRunFence(env, owned_[env]);
      }
      // An approved run first: it was queued before anything still in the queue.
      Result<std::optional<state::Run>> started = ResumeApproved(store, env);
      const bool resumed = started.ok() && started->has_value();
      if (started.ok() && !resumed) started = store.StartNextRun(env, "planning");
      if (!started.ok()) {
        Error("starting a run failed", {{"environment", Value::String(env)},
                                        {"error", Value::String(started.error().message)}});
        // Again in a second (a connection that broke connects again at its next statement);
        // while the state is away the loop ends above, and the lease thread wakes the
        // environment once it is back.
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait_for(lock, std::chrono::seconds(1), [&] { return stopping_; });
        continue;
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
      Execute(store, **started, resumed);
      ReturnFreeMemory();  // a run's plan and evaluation are gone: give their pages back
    }
    store.SetRunFence("", 0);
    {
      std::lock_guard<std::mutex> lock(mu_);
      busy_.erase(env);
    }
    cv_.notify_all();
  }
}

void Controller::Execute(state::StateStore& store, state::Run run, bool resumed) {
  auto control = std::make_shared<RunControl>();
  control->environment = run.environment;
  {
    std::lock_guard<std::mutex> lock(mu_);
    running_[run.id] = control;
    if (stopping_) control->stop.Stop();
  }
  if (shared_) {
    // A cancel asked through another server before this run was registered here.
    Result<std::vector<int64_t>> cancels = store.CancelRequests(run.environment);
    if (cancels.ok() && std::count(cancels->begin(), cancels->end(), run.id) > 0) {
      std::lock_guard<std::mutex> lock(mu_);
      control->canceled = true;
      control->stop.Stop();
    }
  }
  engine::Workspace ws(RunOptions(run.commit));
  Status selected = ws.Select(run.environment);
  // A remediation reverts to the commit applied now: when another was applied since it was
  // queued, that apply converged the environment (the watch reports what drifts still).
  Result<std::string> applied =
      run.action == "remediation" ? ws.AppliedCommit(run.environment) : run.commit;
  if (applied.ok() && *applied != run.commit) {
    state::RunUpdate u;
    u.message = "commit " + applied->substr(0, 12) +
                " was applied since this remediation was queued; its apply converged the "
                "environment";
    Transition(store, run, "planning", "no_changes", u);
  } else if (!selected.ok()) {
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
    ExecuteApply(store, run, ws, *control, resumed);
  } else if (run.action == "remediation") {
    ExecuteRemediation(store, run, ws, *control, resumed);
  } else {
    state::RunUpdate u;
    u.message = "unknown action " + run.action;
    Transition(store, run, "planning", "errored", u);
  }
  std::lock_guard<std::mutex> lock(mu_);
  running_.erase(run.id);
  if (run.action == "destroy") destroy_queued_.erase(run.environment);
}

void Controller::ExecuteRemediation(state::StateStore& store, const state::Run& run,
                                    engine::Workspace& ws, RunControl& control, bool resumed) {
  // What to revert: the drift open now of the resources whose policy enforces it.
  Diagnostics diags;
  Result<config::Environment*> env = ws.Evaluate(run.environment, false, true, diags);
  Result<std::vector<state::DriftRecord>> open = store.ListDrift(run.environment, false, 100000);
  if (!env.ok() || !open.ok()) {
    state::RunUpdate u;
    u.message =
        !env.ok() ? (diags.empty() ? env.error().message : diags.ToString()) : open.error().message;
    Transition(store, run, "planning", "errored", u);
    return;
  }
  std::set<std::string, std::less<>> addresses;
  for (const state::DriftRecord& d : *open) {
    const int i = (*env)->IndexOf(d.address);
    if (i < 0) continue;
    const config::Resource& r = *(*env)->resources()[static_cast<size_t>(i)].decl;
    if (r.policy.drift == config::Policy::Drift::kEnforce && !r.policy.paused)
      addresses.insert(d.address);
  }
  if (addresses.empty()) {
    state::RunUpdate u;
    u.message = "no enforced drift is open any more";
    Transition(store, run, "planning", "no_changes", u);
    return;
  }
  ExecuteApply(store, run, ws, control, resumed, &addresses);
}

void Controller::ExecuteApply(state::StateStore& store, const state::Run& run,
                              engine::Workspace& ws, RunControl& control, bool resumed,
                              const std::set<std::string, std::less<>>* only) {
  // The watch compares live objects with state: during an apply they differ for a moment, and
  // an enforcing watch must not revert what the apply just wrote. It starts again afterwards,
  // on the commit applied.
  StopWatch(run.environment);
  RunObserver observer(*this, store, ws, run, control, resumed);
  engine::ApplyRequest request;
  request.destroy = run.action == "destroy";
  request.stop = &control.stop;
  request.only = only;
  if (only != nullptr) request.kind = "remediation";
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
      // Canceled through the API (the run is canceled already), stopped before any change, or
      // left waiting for approval (or superseded by a new plan): only a stop is recorded here.
      if (control.stop.stop_requested() && from == "planned") {
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
  bool owned;
  {
    std::lock_guard<std::mutex> lock(mu_);
    owned = OwnsLocked(run.environment);
  }
  if (run.action != "destroy" && owned) StartWatch(run.environment);
}

void Controller::StartWatch(const std::string& env) {
  if (!options_.watch) return;
  // Runners and the lease loop start watches: the watcher is put in place with its thread in
  // one step under mu_, so a StopWatch never finds one whose thread is not yet there, and a
  // watcher that another start put in place meanwhile is stopped first (replacing it would
  // destroy a running thread).
  for (;;) {
    StopWatch(env);
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    if (watchers_.count(env) != 0) continue;
    auto w = std::make_unique<Watcher>();
    Watcher* raw = w.get();
    raw->thread = SpawnWatch(env, raw);
    watchers_[env] = std::move(w);
    return;
  }
}

std::thread Controller::SpawnWatch(const std::string& env, Watcher* raw) {
  return std::thread([this, env, raw] {
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
    if (applied.empty()) return;  // nothing applied (a run waits for approval): nothing drifts
    engine::Workspace ws(RunOptions(applied));
    Status selected = ws.Select(env);
    if (!selected.ok()) {
      Error("watch", {{"environment", Value::String(env)},
                      {"error", Value::String(selected.error().message)}});
      return;
    }
    if (shared_) {
      // Its remediation runs and drift records are fenced like runs: written only while this
      // server still owns the environment with the token it owned it by when the watch started.
      int64_t token = 0;
      {
        std::lock_guard<std::mutex> lock(mu_);
        auto it = owned_.find(env);
        if (it != owned_.end()) token = it->second;
      }
      Result<state::StateStore*> store = ws.State();
      if (token == 0 || !store.ok()) return;  // no longer ours (or no state): not watched here
      (*store)->SetRunFence(env, token);
    }
    engine::WatchOptions wo;
    wo.env = env;
    wo.interval = options_.watch_interval;
    // Every run of this environment stops the watch and waits for it (StopWatch): the stop
    // wakes the watch's wait (StopAndWake), so an idle watch sleeps until its next scan; a
    // watch of several targets (or one that cannot be woken) looks every 50 ms, not the CLI's
    // 500, so a webhook's commit is not held up by the pause.
    wo.stop_wakes = true;
    wo.stop_check_ms = 50;
    // Hundreds of watches start together: their first scans a few at a time, so that the heap
    // does not grow to hold all their evaluations at once.
    wo.gate = &watch_gate_;
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
  w->stop.StopAndWake();
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
      {
        std::lock_guard<std::mutex> l(mu_);
        auto it = running_.find(id);
        if (it != running_.end()) {
          it->second->canceled = true;
          it->second->stop.Stop();
          return r;
        }
      }
      if (shared_) {
        // Run by another server (or about to be by this one): the request is recorded in the
        // state and announced on `runs`; its runner stops it and ends it canceled.
        Result<bool> asked = api_store_->RequestCancel(id);
        if (!asked.ok()) return asked.error();
        if (*asked) {
          Info("cancel asked",
               {{"environment", Value::String(r.environment)}, {"run_id", Value::Int(id)}});
          return r;
        }
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

void Controller::CheckDrift(const std::string& env, bool full,
                            const std::function<void(const engine::DriftReport&)>& use) {
  engine::Workspace ws(RunOptions(""));
  Status selected = ws.Select(env);
  if (!selected.ok()) {
    engine::DriftReport failed;
    failed.failure.message = selected.error().message;
    use(failed);
    return;
  }
  use(engine::CheckDrift(ws, env, full));
}

void Controller::InspectResource(
    const std::string& env, const std::string& address,
    const std::function<void(const Result<std::optional<plan::Change>>&, const std::string&)>&
        use) {
  std::string applied;
  {
    engine::Workspace probe(RunOptions(""));
    Result<std::string> a = probe.AppliedCommit(env);
    if (!a.ok()) {
      use(a.error(), "");
      return;
    }
    applied = *a;
  }
  engine::Workspace ws(RunOptions(applied));
  Status selected = ws.Select(env);
  if (!selected.ok()) {
    use(selected.error(), applied);
    return;
  }
  use(engine::InspectResource(ws, env, address), applied);
}

int Controller::RequiredApprovals(const state::Run& run,
                                  const config::EnvironmentMatch* at_commit) const {
  std::optional<EnvironmentView> v = FindEnvironment(run.environment);
  int required = v.has_value() ? v->approvals : 0;
  bool unapproved = !v.has_value() || v->remediates_unapproved;
  // The rule of the run's own commit counts too (the stricter wins).
  if (at_commit != nullptr) {
    required = std::max(required, at_commit->required_approvals());
    unapproved = unapproved && at_commit->remediates_unapproved();
  }
  if (run.action == "remediation" && unapproved) return 0;
  return required;
}

Result<std::optional<state::Run>> Controller::ResumeApproved(state::StateStore& store,
                                                             const std::string& env) {
  state::RunFilter f;
  f.environment = env;
  f.statuses = {"awaiting_approval"};
  Result<state::Page<state::Run>> waiting = store.ListRuns(f, 0, 100);
  if (!waiting.ok()) return waiting.error();
  for (auto it = waiting->items.rbegin(); it != waiting->items.rend(); ++it) {
    Result<std::vector<state::Approval>> given = store.ListApprovals(it->id);
    if (!given.ok()) return given.error();
    if (CountApprovals(*given, *it, it->plan_hash) < RequiredApprovals(*it)) continue;
    Result<bool> moved = store.TransitionRun(it->id, "awaiting_approval", "planning");
    if (!moved.ok()) return moved.error();
    if (!*moved) continue;
    state::Run run = *it;
    run.status = "planning";
    return std::optional<state::Run>(std::move(run));
  }
  return std::optional<state::Run>();
}

void Controller::QueueRemediation(state::StateStore& store, const std::string& env,
                                  const plan::Plan& drift) {
  state::RunFilter f;
  f.environment = env;
  f.statuses = {"queued", "planning", "planned", "awaiting_approval"};
  Result<state::Page<state::Run>> open = store.ListRuns(f, 0, 100);
  if (!open.ok()) {
    Error("listing runs failed",
          {{"environment", Value::String(env)}, {"error", Value::String(open.error().message)}});
    return;
  }
  for (const state::Run& r : open->items) {
    if (r.action != "remediation") continue;
    // Queued or being planned: its plan reads the drift open then, this one included.
    if (r.status != "awaiting_approval") return;
    if (PlanCovers(r.plan_json, drift)) return;  // still waiting for approval of just this
    Discard(nullptr, store, r, "awaiting_approval",
            "the drift changed while the remediation waited for approval");
    return;  // Discard queued the remediation that replaces it
  }
  state::Run run;
  run.environment = env;
  run.action = "remediation";
  run.author = "controller";
  run.commit = drift.revision;
  (void)Enqueue(store, run, false);
}

void Controller::Discard(engine::Workspace* ws, state::StateStore& store, const state::Run& run,
                         const std::string& from, const std::string& why) {
  state::RunUpdate u;
  u.message = why + "; its approvals count for nothing, and a new run plans it again";
  if (!Transition(store, run, from, "superseded", u)) return;  // canceled meanwhile
  state::Run again;
  again.environment = run.environment;
  again.action = run.action;
  again.commit = run.commit;
  again.author = run.author;
  Result<state::Run> queued = Enqueue(store, again, false);
  std::vector<std::pair<std::string, Value>> fields = {{"run_id", Value::Int(run.id)},
                                                       {"action", Value::String(run.action)},
                                                       {"commit", Value::String(run.commit)},
                                                       {"plan_hash", Value::String(run.plan_hash)},
                                                       {"reason", Value::String(why)}};
  if (queued.ok()) fields.emplace_back("superseded_by", Value::Int(queued->id));
  Notify(ws, store, run, "run.discarded", std::move(fields));
}

void Controller::Notify(engine::Workspace* ws, state::StateStore& store, const state::Run& run,
                        const std::string& type,
                        std::vector<std::pair<std::string, Value>> fields) {
  std::unique_ptr<engine::Workspace> own;
  Diagnostics diags;
  std::string problem;
  if (ws == nullptr) {
    own = std::make_unique<engine::Workspace>(RunOptions(run.commit));
    Status selected = own->Select(run.environment);
    if (!selected.ok()) problem = selected.error().message;
    ws = own.get();
  }
  Result<std::unique_ptr<notify::Dispatcher>> d =
      problem.empty() ? engine::MakeDispatcher(*ws, diags)
                      : Result<std::unique_ptr<notify::Dispatcher>>(MakeError(problem));
  if (d.ok()) {
    Status published = (*d)->Publish(notify::MakeEvent(type, run.environment, "", fields));
    if (published.ok()) return;
    problem = published.error().message;
  } else {
    problem = d.error().message;
  }
  // The sinks cannot be reached: the event log still says it.
  Error("notifying failed; the event is in the event log only",
        {{"environment", Value::String(run.environment)},
         {"type", Value::String(type)},
         {"error", Value::String(problem)}});
  Publish(store, type, run.environment, fields);
}

Result<RunDecision> Controller::DecideRun(int64_t id, const std::string& who,
                                          const std::string& decision, const std::string& comment) {
  std::lock_guard<std::mutex> lock(api_mu_);
  RunDecision out;
  const std::string run_name = "run " + std::to_string(id);
  Result<std::optional<state::Run>> got = api_store_->GetRun(id);
  if (!got.ok()) return got.error();
  if (!*got) {
    out.outcome = RunDecision::Outcome::kNotFound;
    out.message = "there is no " + run_name;
    return out;
  }
  out.run = **got;
  const state::Run& run = out.run;
  out.required = RequiredApprovals(run);
  auto finish = [&](RunDecision::Outcome outcome, std::string message) -> Result<RunDecision> {
    out.outcome = outcome;
    out.message = std::move(message);
    Result<std::optional<state::Run>> now = api_store_->GetRun(id);
    if (!now.ok()) return now.error();
    if (*now) out.run = **now;
    Result<std::vector<state::Approval>> all = api_store_->ListApprovals(id);
    if (!all.ok()) return all.error();
    out.approvals = std::move(*all);
    return out;
  };
  if (run.status != "awaiting_approval") {
    return finish(RunDecision::Outcome::kNotAwaiting,
                  run_name + " is " + run.status + ", not awaiting approval");
  }
  if (who == run.author) {
    return finish(RunDecision::Outcome::kAuthor,
                  who + " queued " + run_name +
                      ": its author cannot approve or reject it; another editor or admin must");
  }
  state::Approval a;
  a.run_id = id;
  a.plan_hash = run.plan_hash;
  a.who = who;
  a.decision = decision;
  a.comment = comment;
  a.created_at = NowUnix();
  Result<bool> added = api_store_->AddApproval(a);
  if (!added.ok()) return added.error();
  if (!*added) {
    return finish(RunDecision::Outcome::kAlreadyDecided,
                  who + " decided on " + run_name + " already");
  }
  Result<std::vector<state::Approval>> given = api_store_->ListApprovals(id);
  if (!given.ok()) return given.error();
  const int have = CountApprovals(*given, run, run.plan_hash);
  const bool approved = decision == "approved";
  Notify(nullptr, *api_store_, run, approved ? "approval.granted" : "approval.rejected",
         {{"run_id", Value::Int(id)},
          {"action", Value::String(run.action)},
          {"commit", Value::String(run.commit)},
          {"plan_hash", Value::String(run.plan_hash)},
          {"actor", Value::String(who)},
          {"comment", Value::String(comment)},
          {"approvals", Value::Int(have)},
          {"required", Value::Int(out.required)}});
  if (!approved) {
    state::RunUpdate u;
    u.message = "rejected by " + who + (comment.empty() ? "" : ": " + comment);
    Transition(*api_store_, run, "awaiting_approval", "canceled", u);
  } else if (have >= out.required) {
    Wake(run.environment);
    // Another server may own the environment: tell it on `runs` (its runner resumes the run).
    if (shared_) (void)api_store_->Notify(state::kRunsChannel, run.environment);
  }
  return finish(RunDecision::Outcome::kRecorded, "");
}

}  // namespace driftless::server::controller
