#pragma once

#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <string>

#include "engine/operation.h"
#include "engine/workspace.h"

namespace driftless::engine {

/// Limits how many watches of a process work at once (evaluate, scan, check). A server starts
/// hundreds of watches together: without it every first scan evaluates its declarations at
/// the same time, and the heap keeps the peak (pages pinned by the few long-lived allocations
/// made meanwhile). A watch waiting for its turn still stops at once (StopAndWake).
class WorkGate {
 public:
  explicit WorkGate(int slots) : free_(slots) {}
  /// Takes a slot, or returns false when `stop` is set first.
  bool Enter(const StopToken& stop);
  void Leave();
  /// Wakes the watches waiting in Enter (to see their stop).
  void Wake();

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int free_;
};

/// How to watch (the flags of `driftless watch`).
struct WatchOptions {
  std::string env;           ///< the environment (selected in the workspace)
  double interval = 300;     ///< seconds between full scans (the safety net), `--interval`
  int debounce_ms = 100;     ///< a burst of events within this is one check, `--debounce`
  double run_for = 0;        ///< stop after this many seconds (0: until stopped), `--for`
  int flap_limit = 3;        ///< reverts within flap_window that make a resource flapping
  double flap_window = 600;  ///< seconds
  /// The longest a wait for events lasts before the stop token is looked at again: how long a
  /// Stop takes to be seen. The server pauses a watch for every apply of its environment and
  /// waits for it, so it asks for a short one.
  int stop_check_ms = 500;
  /// The caller stops the watch with StopToken::StopAndWake (the server): a wait for events
  /// then lasts until the next scan (or reminder) instead of stop_check_ms, and the stop ends
  /// it, so an idle watch does not wake 20 times a second. Waits stay short with several
  /// watchers, or one that cannot be interrupted (Watcher::Interruptible).
  bool stop_wakes = false;
  /// Shared by the watches of a process (the server), or none: each watch's work between two
  /// waits (its start, its checks) holds a slot of it.
  WorkGate* gate = nullptr;
  /// Between checks, hold only the watchers (Workspace::ReleaseEvaluation) when the environment
  /// has fewer resources than this; each check then loads and evaluates the declarations again
  /// (about 10 µs a resource). 0: keep them (the CLI: one environment, checked fast). The
  /// server follows many environments and uses 10,000.
  size_t release_below = 0;
};

/// What a watch did before it stopped.
struct WatchReport {
  size_t checks = 0;        ///< drift checks (full scans and checks of changed resources)
  size_t remediations = 0;  ///< applies that reverted drift (kind "remediation" in history)
};

/// Watches the environment for drift until `stop` is set (or `run_for` passed): each event
/// (watch.started, drift.detected, drift.resolved, drift.flapping, apply.succeeded/failed of a
/// remediation, watch.error) goes to Observer::OnEvent and to the notification sinks;
/// enforcement per policy, each remediation told as a step (OnStepStarted, OnStepFinished).
/// A failed check is a watch.error event and the watch goes on; an error is returned only when
/// the watch cannot start or its watchers fail.
Result<WatchReport> Watch(Workspace& ws, const WatchOptions& options, Observer& observer,
                          const StopToken& stop);

}  // namespace driftless::engine
