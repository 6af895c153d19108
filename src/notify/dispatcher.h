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
///
/// Every published event also goes to the state's event log (StateStore::AppendEvent, in the
/// same transaction as its outbox entries), which `driftless serve`'s event stream replays; a
/// Dispatcher without sinks only records events. Events older than the event retention are
/// pruned by the first Publish of a Dispatcher and then at most once an hour.
class Dispatcher {
 public:
  /// How long the event log keeps an event by default: 7 days.
  static constexpr int64_t kDefaultEventRetentionSeconds = int64_t{7} * 86400;

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

  /// Records `event` in the event log and enqueues it for every sink that wants it, in one
  /// transaction; the sinks receive exactly its JSON.
  Status Publish(const Event& event);

  /// How long the event log keeps events (at least a minute).
  void set_event_retention(int64_t seconds) { event_retention_ = seconds < 60 ? 60 : seconds; }

  /// For each open drift of `env` and each sink with `remind` that wants drift.detected:
  /// enqueues a drift.reminder when nothing about that drift was enqueued for the sink for
  /// `remind` (counted from the onset when nothing was). Returns when the next reminder of the
  /// drift open now is due (unix seconds; 0 when none is: no open drift, or no sink reminds),
  /// so that a caller reads again only then (or when a drift opens).
  Result<int64_t> Remind(const std::string& env, int64_t now);

  /// What one DeliverDue did.
  struct Report {
    int delivered = 0;
    int failed = 0;
  };
  /// Delivers due entries, oldest first, until none is due or `budget_seconds` passed (a
  /// delivery's timeouts are cut to fit the budget). After a sink fails once, its other entries
  /// wait for the next call. `cancel`, when it becomes true, abandons the delivery in flight.
  /// Without sinks it does nothing (entries of sinks removed from driftless.yaml stay as they
  /// are).
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
  int64_t event_retention_ = kDefaultEventRetentionSeconds;
  int64_t next_prune_at_ = 0;  // unix seconds; 0: at the first Publish
};

}  // namespace driftless::notify
