// `driftless watch`: event-driven drift detection with a periodic full scan as the safety net.
//
// Each target that can watch (Target::Watch) reports which managed objects may have changed; a
// burst of events is debounced into one check of just those resources (a plan with
// PlanOptions::only against fresh state). Drift is recorded in the timeline, printed as one
// JSON event per line on standard output, and handled by the resource's policy: `enforce`
// reverts at once (an apply of just that resource, kind "remediation" in history), `report`
// leaves it for the next apply, `paused` resources are reported and never touched. A resource
// that is reverted and changed again over and over is backed off (reported as flapping) instead
// of fought forever.

#include "engine/watch.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <map>
#include <mutex>
#include <set>

#include "apply/applier.h"
#include "base/memory.h"
#include "base/strings.h"
#include "engine/drift_record.h"
#include "engine/notifications.h"
#include "plan/stored.h"
#include "value/render.h"

namespace driftless::engine {

using value::Value;

namespace {

using Clock = std::chrono::steady_clock;
using AddressSet = std::set<std::string, std::less<>>;

class WatchLoop {
 public:
  WatchLoop(Workspace& ws, const WatchOptions& flags, Observer& observer, const StopToken& stop)
      : ws_(ws), flags_(flags), env_(flags.env), observer_(observer), stop_(stop) {}

  Result<WatchReport> Run() {
    const Clock::time_point deadline =
        flags_.run_for > 0 ? Clock::now() + Seconds(flags_.run_for) : Clock::time_point::max();
    // The declarations are evaluated once for the whole watch (for every check, when lean).
    // The watchers start before the first scan: a change made while the scan runs is then seen
    // by both or by the watchers, never by neither (a scan first would miss what changed before
    // the watchers were set). watch.started follows the first scan.
    // A stop wakes the wait (StopAndWake), until the watch returns.
    struct Waker {
      const StopToken& stop;
      ~Waker() { stop.SetWaker({}); }
    } waker{stop_};
    struct Slot {
      WatchLoop& loop;
      ~Slot() { loop.Idle(); }
    } slot{*this};
    if (flags_.stop_wakes) stop_.SetWaker([this] { Wake(); });
    if (!Work()) return report_;
    Status s = EvaluateOnce();
    if (!s.ok()) return s.error();
    lean_ =
        flags_.release_below > 0 && ws_.environment()->resources().size() < flags_.release_below;
    s = StartNotifications();
    if (!s.ok()) return s.error();
    s = StartWatchers();
    if (!s.ok()) return s.error();
    s = Check(nullptr);
    if (!s.ok()) return s.error();
    EmitStarted();
    Rest();
    Clock::time_point next_scan = Clock::now() + Seconds(flags_.interval);
    while (!stop_.stop_requested() && Clock::now() < deadline) {
      s = Status::Ok();  // this round's check, if any (a failure is told once, not every round)
      std::vector<provider::WatchHint> changed;
      bool lost = false;
      Status w = WaitAll(WaitMs(std::min(next_scan, deadline)), &changed, &lost);
      if (!w.ok()) return w.error();
      if (!changed.empty() && !lost) {
        // Debounce: a burst of writes (an editor's save, a deploy script) is one check.
        // A writer that never stops is checked at least every ten debounce periods.
        const Clock::time_point latest = Clock::now() + Millis(10 * flags_.debounce_ms);
        Clock::time_point quiet_until = Clock::now() + Millis(flags_.debounce_ms);
        while (Clock::now() < quiet_until && !stop_.stop_requested()) {
          size_t before = changed.size();
          w = WaitAll(static_cast<int>(Ms(quiet_until - Clock::now())), &changed, &lost);
          if (!w.ok()) return w.error();
          if (changed.size() != before)
            quiet_until = std::min(latest, Clock::now() + Millis(flags_.debounce_ms));
        }
      }
      // Who made the change, per address, when a target told (the latest hint that names one).
      std::map<std::string, std::string, std::less<>> actors;
      for (const provider::WatchHint& h : changed) {
        if (!h.actor.empty()) actors[h.address] = h.actor;
      }
      const bool checked = lost || Clock::now() >= next_scan || !changed.empty();
      if (checked && !Work()) break;
      if (lost || Clock::now() >= next_scan) {
        // Watchers that lost events start again before the scan that covers what they missed.
        if (lost) s = EvaluateOnce();
        if (s.ok() && lost) s = StartWatchers();
        if (s.ok()) s = Check(nullptr, &actors);
        if (s.ok() && lost) EmitStarted();
        next_scan = Clock::now() + Seconds(flags_.interval);
      } else if (!changed.empty()) {
        AddressSet only;
        for (const provider::WatchHint& h : changed) only.insert(h.address);
        s = Check(&only, &actors);
      }
      if (!s.ok()) {
        // A failed check (a target down, state busy) is reported; the watch goes on.
        Emit("watch.error", env_, "", {{"error", Value::String(s.error().message)}});
      }
      if (checked) Rest();
      Remind();
    }
    delivery_.reset();  // one last round of deliveries
    return report_;
  }

 private:
  // Tells the observer of an event and hands it to the notification sinks.
  void Emit(const std::string& type, const std::string& env, const std::string& resource,
            const std::vector<std::pair<std::string, Value>>& fields) {
    notify::Event e = notify::MakeEvent(type, env, resource, fields);
    observer_.OnEvent(e);
    if (type == "drift.detected") next_remind_ = {};  // its reminder: see when it is due
    if (dispatcher_) {
      Status s = dispatcher_->Publish(e);
      if (!s.ok()) observer_.OnWarning("notifications: " + s.error().message);
      if (delivery_) delivery_->Wake();
    }
  }

  // A lean watch frees its declarations and their evaluation after a check (the next one
  // evaluates again), and keeps the targets its watchers were made by.
  void Rest() {
    Idle();
    if (!lean_ || ws_.environment() == nullptr) return;
    std::unique_ptr<config::Environment> targets = ws_.ReleaseEvaluation();
    if (watchers_are_current_) watchers_targets_ = std::move(targets);
    watchers_are_current_ = false;
    evaluated_ = false;
    ReturnFreeMemory();
  }

  // Takes a slot of the gate for the work until the next Rest; false when stopped first.
  bool Work() {
    if (flags_.gate == nullptr || working_) return true;
    working_ = flags_.gate->Enter(stop_);
    return working_;
  }
  void Idle() {
    if (!working_) return;
    flags_.gate->Leave();
    working_ = false;
  }

  // Evaluates the declarations unless they are (Check's plans use them again).
  Status EvaluateOnce() {
    if (evaluated_ && ws_.environment() != nullptr) return Status::Ok();
    Diagnostics diags;
    Result<config::Environment*> evaluated = ws_.Evaluate(env_, true, true, diags);
    if (!evaluated.ok()) {
      return MakeError(diags.empty() ? evaluated.error().message
                                     : evaluated.error().message + "\n" + diags.ToString());
    }
    evaluated_ = true;
    return Status::Ok();
  }

  // Reads the sinks of the evaluated declarations. Before anything is emitted.
  Status StartNotifications() {
    Diagnostics diags;
    Result<std::unique_ptr<notify::Dispatcher>> d = MakeDispatcher(ws_, diags);
    if (!d.ok()) {
      return MakeError(diags.empty() ? d.error().message
                                     : d.error().message + "\n" + diags.ToString());
    }
    dispatcher_ = std::move(*d);
    if (dispatcher_ && dispatcher_->HasSinks()) {
      Result<std::unique_ptr<BackgroundDelivery>> b = BackgroundDelivery::Start(
          ws_, *dispatcher_, [this](const std::string& m) { observer_.OnWarning(m); });
      if (!b.ok()) return b.error();
      delivery_ = std::move(*b);
    }
    return Status::Ok();
  }

  // Reminders, read from the state only when one is due (Dispatcher::Remind says when), when
  // this watch opened a drift (Emit), and at least once a minute (a drift another process
  // recorded). Deliveries run on delivery_'s thread.
  void Remind() {
    if (!dispatcher_ || Clock::now() < next_remind_) return;
    const int64_t now = NowUnix();
    Result<int64_t> due = dispatcher_->Remind(env_, now);
    if (!due.ok()) observer_.OnWarning("notifications: " + due.error().message);
    const int64_t wait = due.ok() && *due > now  ? std::min<int64_t>(*due - now, 60)
                         : due.ok() && *due == 0 ? 60
                                                 : 1;
    next_remind_ = Clock::now() + Seconds(static_cast<double>(wait));
  }

  static std::chrono::milliseconds Millis(int64_t ms) { return std::chrono::milliseconds(ms); }
  static std::chrono::milliseconds Seconds(double s) {
    return std::chrono::milliseconds(static_cast<int64_t>(s * 1000));
  }
  static int64_t Ms(Clock::duration d) {
    return std::max<int64_t>(0, std::chrono::duration_cast<std::chrono::milliseconds>(d).count());
  }

  // How long the next wait for events may last: until `until` (the next scan or the end), and
  // the next reminder when sinks may want one; and, unless a stop wakes it, stop_check_ms.
  int WaitMs(Clock::time_point until) const {
    if (dispatcher_ && dispatcher_->HasSinks()) until = std::min(until, next_remind_);
    const bool woken =
        flags_.stop_wakes &&
        (watchers_.empty() || (watchers_.size() == 1 && watchers_[0]->Interruptible()));
    constexpr int64_t kLongest = 3600 * 1000;  // an hour: a watch with a huge --interval
    const int64_t cap = woken ? kLongest
                              : std::max(1, watchers_.empty() ? std::min(200, flags_.stop_check_ms)
                                                              : flags_.stop_check_ms);
    return static_cast<int>(std::min<int64_t>(Ms(until - Clock::now()), cap));
  }

  // Called by StopAndWake on the stopping thread: ends the wait in progress (or the next).
  void Wake() {
    {
      std::lock_guard<std::mutex> lock(watchers_mu_);
      for (const auto& w : watchers_) w->Interrupt();
    }
    idle_.notify_all();
    if (flags_.gate != nullptr) flags_.gate->Wake();
  }

  Status WaitAll(int timeout_ms, std::vector<provider::WatchHint>* changed, bool* lost) {
    if (watchers_.empty()) {
      // Nothing to watch: wait for the next scan or a stop.
      std::unique_lock<std::mutex> lock(watchers_mu_);
      idle_.wait_for(lock, Millis(timeout_ms), [this] { return stop_.stop_requested(); });
      return Status::Ok();
    }
    // One watcher waits for the whole timeout, the others are polled.
    for (size_t i = 0; i < watchers_.size(); ++i) {
      Status s = watchers_[i]->Wait(i == 0 ? timeout_ms : 0, changed, lost);
      if (!s.ok()) return s;
    }
    return Status::Ok();
  }

  // Watches every resource in state, per target.
  Status StartWatchers() {
    {
      std::lock_guard<std::mutex> lock(watchers_mu_);
      watchers_.clear();
    }
    Result<state::StateStore*> store = ws_.State();
    if (!store.ok()) return store.error();
    Result<std::vector<state::ResourceState>> rows = (*store)->ListResources(env_);
    if (!rows.ok()) return rows.error();
    std::map<std::string, std::vector<provider::WatchItem>> by_target;
    for (const auto& row : *rows) {
      Result<plan::StoredAttrs> attrs = plan::DecodeStored(row.attrs_json);
      if (!attrs.ok()) continue;
      by_target[row.target].push_back({row.address, row.kind, std::move(attrs->attrs)});
    }
    size_t watches = 0;
    std::vector<std::unique_ptr<provider::Watcher>> made;
    for (auto& [target, items] : by_target) {
      provider::Target* t = ws_.environment()->TargetNamed(target);
      if (t == nullptr) continue;
      Result<std::unique_ptr<provider::Watcher>> w = t->Watch(items);
      if (!w.ok()) return MakeError("target " + target + ": " + w.error().message);
      if (*w) {
        watches += (*w)->WatchCount();
        made.push_back(std::move(*w));
      }
    }
    {
      std::lock_guard<std::mutex> lock(watchers_mu_);
      watchers_ = std::move(made);
      // A stop that came while they were made woke the old ones only.
      if (stop_.stop_requested()) {
        for (const auto& w : watchers_) w->Interrupt();
      }
    }
    watchers_are_current_ = true;  // made by the targets of the environment evaluated now
    watched_resources_ = rows->size();
    watches_ = watches;
    return Status::Ok();
  }

  // Tells that the watchers are set and the scan after them is done.
  void EmitStarted() {
    Emit("watch.started", env_, "",
         {{"resources", Value::Int(static_cast<int64_t>(watched_resources_))},
          {"watches", Value::Int(static_cast<int64_t>(watches_))},
          {"scan_interval_seconds", Value::Double(flags_.interval)}});
  }

  // Plans (all resources, or `only`), records the drift timeline (with the actors the watchers
  // named), emits events, enforces.
  Status Check(const AddressSet* only,
               const std::map<std::string, std::string, std::less<>>* actors = nullptr) {
    ++report_.checks;
    Diagnostics diags;
    Workspace::PlanRequest request;
    request.only = only;
    request.again = evaluated_;
    request.full = only == nullptr;  // the safety net reads everything, stamps or not
    Result<plan::Plan> plan = ws_.Plan(env_, request, diags);
    if (!plan.ok()) {
      return MakeError(diags.empty() ? plan.error().message
                                     : plan.error().message + "\n" + diags.ToString());
    }
    evaluated_ = true;
    Result<state::StateStore*> store = ws_.State();
    if (!store.ok()) return store.error();
    const config::Environment& env = *ws_.environment();
    std::map<std::string, const plan::Change*> changes;
    for (const auto& c : plan->changes) {
      if (c.drift) changes[c.address] = &c;
    }
    Result<DriftCheckRecord> recorded = RecordDriftCheck(**store, env_, env, *plan, only, actors);
    if (!recorded.ok()) return recorded.error();
    for (const auto& address : recorded->undone) {
      Emit("drift.resolved", env_, address, {{"resolution", Value::String("undone")}});
    }
    AddressSet enforce;
    for (const state::DriftRecord& d : recorded->opened) {
      const plan::Change* c = changes[d.address];
      int i = env.IndexOf(d.address);
      const config::Resource* r = i >= 0 ? env.resources()[static_cast<size_t>(i)].decl : nullptr;
      std::string policy = r == nullptr       ? "report"
                           : r->policy.paused ? "paused"
                                              : std::string(config::DriftName(r->policy.drift));
      Emit("drift.detected", env_, d.address,
           {{"diff", Value::String(d.diff)},
            {"reason", Value::String(c ? c->reason : "")},
            {"policy", Value::String(policy)},
            {"commit", Value::String(plan->revision)},
            {"actor", Value::String(d.actor)}});
      if (policy == "enforce") enforce.insert(d.address);
    }
    // Drift that was already open and is enforced (a failed or backed-off remediation) is
    // retried at each full scan and at each check of its resource: it changed again (a
    // remediation that failed because `podman run --replace` was half done is retried once
    // the replacement exists, not an interval later). A back-off still holds (Enforce).
    for (const auto& [address, c] : changes) {
      int i = env.IndexOf(address);
      if (i < 0) continue;
      const config::Resource& r = *env.resources()[static_cast<size_t>(i)].decl;
      if (r.policy.drift == config::Policy::Drift::kEnforce && !r.policy.paused)
        enforce.insert(address);
    }
    if (!enforce.empty()) return Enforce(enforce);
    return Status::Ok();
  }

  // True when `address` is backed off for flapping (and says so once per back-off).
  bool BackedOff(const std::string& address) {
    Flap& f = flaps_[address];
    const Clock::time_point now = Clock::now();
    while (!f.reverts.empty() && now - f.reverts.front() > Seconds(flags_.flap_window))
      f.reverts.pop_front();
    if (now < f.backoff_until) return true;
    if (static_cast<int>(f.reverts.size()) >= flags_.flap_limit) {
      f.backoff = f.backoff.count() == 0 ? Clock::duration(Seconds(60))
                                         : std::min<Clock::duration>(f.backoff * 2, Seconds(3600));
      f.backoff_until = now + f.backoff;
      f.reverts.clear();
      Emit("drift.flapping", env_, address,
           {{"reverts", Value::Int(flags_.flap_limit)},
            {"window_seconds", Value::Double(flags_.flap_window)},
            {"backoff_seconds",
             Value::Int(std::chrono::duration_cast<std::chrono::seconds>(f.backoff).count())}});
      return true;
    }
    return false;
  }

  // Reverts `addresses` at once: an apply of just those resources, recorded as a remediation.
  Status Enforce(const AddressSet& addresses) {
    AddressSet todo;
    for (const auto& a : addresses) {
      if (!BackedOff(a)) todo.insert(a);
    }
    if (todo.empty()) return Status::Ok();
    Result<state::StateStore*> store_or = ws_.State();
    if (!store_or.ok()) return store_or.error();
    state::StateStore& store = **store_or;
    Result<state::Lock> lock = store.AcquireLock(env_, CurrentIdentity(), "remediation", 10);
    if (!lock.ok()) return lock.error();
    struct Unlock {
      state::StateStore& s;
      state::Lock& l;
      ~Unlock() { (void)s.ReleaseLock(l); }
    } unlock{store, *lock};
    Diagnostics diags;
    Workspace::PlanRequest request;
    request.only = &todo;
    request.again = true;
    Result<plan::Plan> plan = ws_.Plan(env_, request, diags);
    if (!plan.ok()) return plan.error();
    if (plan->problems.HasErrors()) return MakeError(plan->problems.ToString());
    if (!plan->HasChanges()) return Status::Ok();  // undone meanwhile
    apply::ApplyOptions options;
    options.kind = "remediation";
    options.parallelism = ws_.options().parallelism;
    if (ws_.selection().commit) {
      options.commit_subject = ws_.selection().commit->subject;
      options.commit_author = ws_.selection().commit->author;
    }
    // The observer may refuse (the server: another run of the environment is active, and it
    // converges what drifted); the drift stays open and reported.
    if (!observer_.Approve(*plan)) return Status::Ok();
    for (const auto& a : todo) (void)store.CountRemediation(env_, a);
    std::vector<std::string> planned;
    for (const auto& c : plan->changes) {
      if (c.action != plan::Action::kNoop) planned.push_back(c.address);
    }
    const StepInfo step{0, 1, true, ws_.selection().commit, "remediation"};
    observer_.OnStepStarted(step);
    options.on_progress = [this](const apply::Progress& pr) { observer_.OnProgress(pr); };
    Result<apply::ApplyResult> result =
        apply::Apply(*ws_.environment(), std::move(*plan), store, *lock, options);
    ++report_.remediations;
    StepResult told{step, result.ok() ? "" : result.error().message,
                    result.ok() ? *result : apply::ApplyResult()};
    observer_.OnStepFinished(told);
    if (!result.ok()) return result.error();
    const std::set<std::string, std::less<>> failed = FailedAddresses(*result);
    std::vector<std::string> fixed;
    for (const auto& address : planned) {
      if (failed.count(address)) continue;
      fixed.push_back(address);
      flaps_[address].reverts.push_back(Clock::now());
    }
    (void)store.ObserveDrift(env_, {}, fixed, "enforcement", NowUnix());
    for (const auto& a : fixed) {
      Emit("drift.resolved", env_, a,
           {{"resolution", Value::String("enforcement")}, {"apply", Value::Int(result->apply_id)}});
    }
    Emit(result->status == "succeeded" ? "apply.succeeded" : "apply.failed", env_, "",
         {{"apply", Value::Int(result->apply_id)},
          {"kind", Value::String("remediation")},
          {"summary", Value::String(result->summary)}});
    return Status::Ok();
  }

  struct Flap {
    std::deque<Clock::time_point> reverts;
    Clock::duration backoff{};
    Clock::time_point backoff_until{};
  };

  Workspace& ws_;
  WatchOptions flags_;
  std::string env_;
  Observer& observer_;
  const StopToken& stop_;
  WatchReport report_;
  bool evaluated_ = false;
  bool lean_ = false;     // WatchOptions::release_below: Rest() after every check
  bool working_ = false;  // holds a slot of flags_.gate (Work, until Idle)
  // A lean watch's environment reduced to the targets that made watchers_ (declared first: it
  // outlives them).
  std::unique_ptr<config::Environment> watchers_targets_;
  bool watchers_are_current_ = false;  // watchers_ were made by ws_.environment()'s targets
  size_t watched_resources_ = 0, watches_ = 0;  // what StartWatchers set, for watch.started
  // Replaced (StartWatchers) and used (WaitAll) on the watch's thread; Wake interrupts them
  // from the stopping thread under watchers_mu_, which also guards idle_'s wait.
  std::mutex watchers_mu_;
  std::condition_variable idle_;
  std::vector<std::unique_ptr<provider::Watcher>> watchers_;
  std::map<std::string, Flap> flaps_;
  std::unique_ptr<notify::Dispatcher> dispatcher_;  // enqueues, on this thread
  std::unique_ptr<BackgroundDelivery> delivery_;    // delivers, on a thread of its own
  Clock::time_point next_remind_{};
};

}  // namespace

bool WorkGate::Enter(const StopToken& stop) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return free_ > 0 || stop.stop_requested(); });
  if (stop.stop_requested()) return false;
  --free_;
  return true;
}

void WorkGate::Leave() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++free_;
  }
  cv_.notify_all();  // a waiter that sees its stop leaves without the slot
}

void WorkGate::Wake() {
  // Under the lock: a watch between its look at the stop and its wait cannot miss it.
  std::lock_guard<std::mutex> lock(mu_);
  cv_.notify_all();
}

Result<WatchReport> Watch(Workspace& ws, const WatchOptions& options, Observer& observer,
                          const StopToken& stop) {
  return WatchLoop(ws, options, observer, stop).Run();
}

}  // namespace driftless::engine
