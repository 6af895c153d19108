#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "base/diagnostics.h"
#include "engine/workspace.h"
#include "notify/dispatcher.h"

namespace driftless::engine {

/// The notification dispatcher for the declarations evaluated last (ws.environment()), else for
/// the declarations of the selected commit (loaded); also when `notify:` declares no sink, so that
/// every published event reaches the state's event log (HasSinks() tells whether anything is
/// delivered). Problems of `notify:` go to diags with driftless.yaml:line:col; the result is then
/// an error.
Result<std::unique_ptr<notify::Dispatcher>> MakeDispatcher(Workspace& ws, Diagnostics& diags);

/// Delivers due notifications on a thread of its own, with its own state connection, so that a
/// slow or hanging sink never delays `watch`'s checks. The secrets the sinks name are looked up
/// once, at Start, on the caller's thread.
class BackgroundDelivery {
 public:
  /// Starts delivering for the sinks of `d` every `period_ms`. `on_warning` (may be empty) gets
  /// a round's failure ("notifications: ..."), on the delivery thread.
  static Result<std::unique_ptr<BackgroundDelivery>> Start(
      Workspace& ws, const notify::Dispatcher& d,
      std::function<void(const std::string&)> on_warning, int period_ms = 250);
  /// Lets the delivery in flight finish for up to 2 seconds (then abandons it) and stops the
  /// thread after one last round of up to 3 seconds (what was enqueued just before).
  ~BackgroundDelivery();
  BackgroundDelivery(const BackgroundDelivery&) = delete;
  /// Starts the next round now instead of at the end of the period: an event was just enqueued.
  void Wake();
  BackgroundDelivery& operator=(const BackgroundDelivery&) = delete;

 private:
  BackgroundDelivery() = default;
  void Run();

  std::unique_ptr<state::StateStore> store_;
  std::unique_ptr<notify::Dispatcher> dispatcher_;
  std::function<void(const std::string&)> on_warning_;
  int period_ms_ = 250;
  double round_seconds_ = 30;  ///< a round's budget: 30 s, or the longest `timeout:` of a sink
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool woken_ = false;
  bool in_round_ = false;            ///< a round of deliveries is running (not the last one)
  std::atomic<bool> cancel_{false};  ///< abandons the delivery in flight when stopping
  std::thread thread_;
};

/// Checks the `notify:` list of `decls` (for `validate`); problems go to diags.
void CheckSinks(const config::Declarations& decls, Diagnostics& diags);

}  // namespace driftless::engine
