#pragma once

// The metrics of `driftless serve` and the /metrics route: runs by environment and result, run
// durations, reconcile lag (a commit queued → applied), API requests by route and code and their
// durations, open drift and the environments followed (computed from the state and the
// controller at every scrape). Webhook and event-stream metrics are counted by their areas.

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include "base/result.h"
#include "server/api/api.h"
#include "server/http/message.h"
#include "server/metrics/metrics.h"
#include "state/control_store.h"

namespace driftless::server::api {

/// Counts what the controller and the HTTP layer report. Thread-safe.
class ServerMetrics {
 public:
  /// Declares the families in `registry`, which outlives this object.
  explicit ServerMetrics(metrics::Registry& registry);

  /// For ControllerOptions::on_run_status.
  void OnRunStatus(const state::Run& run, const std::string& status);
  /// For ServerOptions::access_log.
  void OnRequest(const http::AccessRecord& record);
  /// Declares the families computed at each scrape from `context` (its controller and state),
  /// which outlives the registry's scrapes. Call once.
  void AddScrapeGauges(const ApiContext& context);

 private:
  using Clock = std::chrono::steady_clock;
  struct Started {
    Clock::time_point queued;  ///< when the run was queued (or first seen)
    Clock::time_point active;  ///< when it left queued; epoch before
    bool has_active = false;
  };
  metrics::Registry& registry_;
  metrics::Counter& runs_;
  metrics::Histogram& run_seconds_;
  metrics::Histogram& lag_seconds_;
  metrics::Counter& requests_;
  metrics::Histogram& request_seconds_;
  std::mutex mu_;
  std::map<int64_t, Started> runs_in_flight_;  ///< by run id, until final
};

/// Registers GET /metrics (public, like Prometheus exporters usually are: it names
/// environments and counts, never a secret) rendering `context.metrics`.
Status AddMetricsRoutes(http::Router& router, const ApiContext& context);

}  // namespace driftless::server::api
