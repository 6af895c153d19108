#pragma once

#include <atomic>
#include <functional>
#include <mutex>
#include <string>
#include <utility>

#include "apply/applier.h"
#include "base/diagnostics.h"
#include "notify/event.h"
#include "plan/plan.h"
#include "source/git.h"
#include "state/state_store.h"

namespace driftless::engine {

/// A request to stop an operation, set by its caller (a signal handler, a server's cancel) and
/// read by the operation between its steps and by the applier between changes. Setting it with
/// Stop is one lock-free atomic store, so a signal handler may call Stop.
class StopToken {
 public:
  /// Asks the operation to stop; returns true when it had been asked already. A wait of the
  /// operation sees it at its next look (a watch: within WatchOptions::stop_check_ms).
  bool Stop() { return stop_.exchange(true); }
  /// Stop, then ends the operation's wait at once (a served watch waits for events until its
  /// next scan, WatchOptions::stop_wakes). Takes a lock: not from a signal handler.
  bool StopAndWake() {
    bool was = Stop();
    std::lock_guard<std::mutex> lock(mu_);
    if (waker_) waker_();
    return was;
  }
  /// True once Stop was called.
  bool stop_requested() const { return stop_.load(); }
  /// The flag itself, as apply::ApplyOptions::cancel takes it.
  const std::atomic<bool>* flag() const { return &stop_; }
  /// What StopAndWake calls after the flag is set, from the stopping thread; set by the
  /// operation while it waits, {} to clear (once that returns, the old one is not running).
  void SetWaker(std::function<void()> wake) const {
    std::lock_guard<std::mutex> lock(mu_);
    waker_ = std::move(wake);
  }

 private:
  std::atomic<bool> stop_{false};
  mutable std::mutex mu_;
  mutable std::function<void()> waker_;
};

/// Why an operation ended before its end: declaration problems (file:line:col, shown first)
/// and a message. Either may be empty; both empty means no failure.
struct Failure {
  Diagnostics diagnostics;
  std::string message;
  /// True when there is something to report.
  bool any() const { return !diagnostics.empty() || !message.empty(); }
};

/// One apply of an operation: a step of a stepwise upgrade, or the selected commit's own.
struct StepInfo {
  size_t index = 0;                          ///< 0-based
  size_t count = 1;                          ///< applies planned in all, the final one included
  bool final = true;                         ///< the selected commit's own apply (the last)
  std::optional<source::CommitInfo> commit;  ///< none in a plain folder
  std::string note;                          ///< "" or "version step 1.28 of 1.29"
};

/// What one apply did.
struct StepResult {
  StepInfo step;
  /// The apply could not start (nothing recorded by it): the reason. Else "" and `result` holds
  /// what happened, as history records it.
  std::string error;
  apply::ApplyResult result;
  /// True when the apply ran and every change succeeded.
  bool succeeded() const { return error.empty() && result.status == "succeeded"; }
};

/// Callbacks through which an operation reports its progress, in the order things happen. The
/// CLI renders them as text; a server turns them into events and run updates. Every callback
/// has a default that does nothing. Called on the operation's thread unless said otherwise.
class Observer {
 public:
  virtual ~Observer() = default;
  /// The plan about to be applied (its steps included), before anything is changed.
  virtual void OnPlan(const plan::Plan& plan) { (void)plan; }
  /// The last word before the first change: false cancels (nothing is changed). Called right
  /// after OnPlan, when the plan has changes; by a watch before each remediation (without
  /// OnPlan), with the plan of just the drifted resources.
  virtual bool Approve(const plan::Plan& plan) {
    (void)plan;
    return true;
  }
  /// An apply starts (its plan is made and the lock held).
  virtual void OnStepStarted(const StepInfo& step) { (void)step; }
  /// One change of the running apply finished; called from the apply's threads (serialised).
  virtual void OnProgress(const apply::Progress& progress) { (void)progress; }
  /// An apply finished (or could not start: StepResult::error), its events published.
  virtual void OnStepFinished(const StepResult& step) { (void)step; }
  /// An event the operation made, as the notification sinks get it (whether or not any sink
  /// is configured).
  virtual void OnEvent(const notify::Event& event) { (void)event; }
  /// The environment's lock is held by a live holder and the operation starts to wait for it
  /// (up to `timeout_seconds`, the workspace's lock_timeout); told once per lock taken.
  virtual void OnLockWait(const state::Lock& holder, double timeout_seconds) {
    (void)holder, (void)timeout_seconds;
  }
  /// A problem that does not fail the operation ("notifications: ..."). May come from a
  /// background thread (the watch loop's deliveries).
  virtual void OnWarning(const std::string& message) { (void)message; }
};

class Workspace;

/// Takes the lock of `env` for `operation` with the workspace's lock timeout and lease, telling
/// `observer` when it starts to wait for a live holder.
Result<state::Lock> TakeLock(Workspace& ws, const std::string& env, const std::string& operation,
                             Observer& observer);

}  // namespace driftless::engine
