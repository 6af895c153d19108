#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "base/result.h"
#include "notify/deliver.h"
#include "notify/event.h"
#include "notify/sink.h"
#include "state/state_store.h"

namespace driftless::notify {

/// Delivers events to sinks at least once through the state store's outbox: Publish enqueues one
/// entry per matching sink (one transaction), DeliverDue sends what is due and records the
/// outcome. A failed delivery is retried after 1 s, 2 s, 4 s ... (at most 1 h), and never
/// dropped: what a run cannot deliver stays for the next one (`watch`, `apply`, another host).
class Dispatcher {
 public:
  /// What a delivery does; the default is Deliver (tests substitute their own).
  using Transport = std::function<Status(const ResolvedSink&, const std::string& event_json,
                                         const DeliveryLimits& limits)>;

  /// Needs `store` for its lifetime. `secret` resolves `${secret.NAME}` at delivery time.
  Dispatcher(state::StateStore& store, std::vector<SinkConfig> sinks, std::string project,
             SecretLookup secret, Transport transport = {});

  /// True when at least one sink is configured.
  bool HasSinks() const { return !sinks_.empty(); }
  const std::vector<SinkConfig>& sinks() const { return sinks_; }
  /// The project's name (for `${project}`).
  const std::string& project() const { return project_; }

  /// Enqueues `event` for every sink that wants it (nothing when none does).
  Status Publish(const Event& event);

  /// For each open drift of `env` and each sink with `remind` that wants drift.detected:
  /// enqueues a drift.reminder when nothing about that drift was enqueued for the sink for
  /// `remind` (counted from the onset when nothing was).
  Status Remind(const std::string& env, int64_t now);

  /// What one DeliverDue did.
  struct Report {
    int delivered = 0;
    int failed = 0;
  };
  /// Delivers due entries, oldest first, until none is due or `budget_seconds` passed (a
  /// delivery's timeouts are cut to fit the budget). After a sink fails once, its other entries
  /// wait for the next call. `cancel`, when it becomes true, abandons the delivery in flight.
  Result<Report> DeliverDue(double budget_seconds, const std::atomic<bool>* cancel = nullptr);

  /// Delivered entries older than `seconds` are removed from the outbox (PruneOutbox) by
  /// DeliverDue, at its first call and then at most once an hour; 0 keeps them.
  void set_retention(int64_t seconds) { retention_ = seconds; }
  int64_t retention() const { return retention_; }

  /// Seconds to wait after the `attempts`-th failure (1-based): 1, 2, 4, ... capped at 3600.
  static int64_t Backoff(int64_t attempts);

 private:
  const SinkConfig* Find(const std::string& name) const;

  state::StateStore& store_;
  std::vector<SinkConfig> sinks_;
  std::string project_;
  SecretLookup secret_;
  Transport transport_;
  int64_t retention_ = 0;
  std::chrono::steady_clock::time_point next_prune_{};
};

}  // namespace driftless::notify
