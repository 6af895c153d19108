#include "server/api/server_metrics.h"

#include <optional>
#include <string_view>
#include <utility>
#include <vector>

namespace driftless::server::api {

namespace {

// Buckets for API requests: 0.5 ms to 10 s.
std::vector<double> RequestBuckets() {
  return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

double Seconds(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

}  // namespace

ServerMetrics::ServerMetrics(metrics::Registry& registry)
    : registry_(registry),
      runs_(registry.AddCounter("driftless_runs_total",
                                "Runs that reached a final status, by environment and result.",
                                {"environment", "result"})),
      run_seconds_(
          registry.AddHistogram("driftless_run_duration_seconds",
                                "Time from a run leaving the queue to its final status, by action.",
                                {"action"}, metrics::DurationBuckets())),
      lag_seconds_(registry.AddHistogram(
          "driftless_reconcile_lag_seconds",
          "Time from a commit's run being queued to the commit applied (applied or no changes), "
          "by environment.",
          {"environment"}, metrics::DurationBuckets())),
      requests_(registry.AddCounter("driftless_api_requests_total",
                                    "HTTP requests by route pattern and status code.",
                                    {"route", "code"})),
      request_seconds_(registry.AddHistogram("driftless_api_request_duration_seconds",
                                             "HTTP request durations by route pattern.", {"route"},
                                             RequestBuckets())) {}

void ServerMetrics::OnRunStatus(const state::Run& run, const std::string& status) {
  const Clock::time_point now = Clock::now();
  std::optional<Started> done;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (status == "queued") {
      runs_in_flight_[run.id].queued = now;
    } else if (!state::IsFinalRunStatus(status)) {
      auto [it, fresh] = runs_in_flight_.try_emplace(run.id);
      if (fresh) it->second.queued = now;  // queued by an earlier server
      if (state::IsActiveRunStatus(status) && !it->second.has_active) {
        it->second.active = now;
        it->second.has_active = true;
      }
    } else {
      auto it = runs_in_flight_.find(run.id);
      if (it != runs_in_flight_.end()) {
        done = it->second;
        runs_in_flight_.erase(it);
      }
    }
  }
  if (!state::IsFinalRunStatus(status)) return;
  runs_.Add({run.environment, status});
  if (!done.has_value()) return;
  if (done->has_active) run_seconds_.Observe({run.action}, Seconds(now - done->active));
  if (run.action == "apply" && (status == "applied" || status == "no_changes")) {
    lag_seconds_.Observe({run.environment}, Seconds(now - done->queued));
  }
}

void ServerMetrics::OnRequest(const http::AccessRecord& record) {
  // Unmatched paths share one label, so that scanning clients cannot grow the series.
  const std::string route = record.route.empty() ? "(unmatched)" : record.route;
  requests_.Add({route, std::to_string(record.status)});
  request_seconds_.Observe({route}, record.duration_ms / 1000.0);
}

void ServerMetrics::AddScrapeGauges(const ApiContext& context) {
  controller::Controller* controller = context.controller;
  StorePool* stores = context.stores;
  registry_.AddGaugeCallback(
      "driftless_drift_open", "Open drifts (resources whose live state differs), by environment.",
      {"environment"}, [stores]() {
        std::vector<metrics::Sample> out;
        Result<StorePool::Lease> store = stores->Acquire();
        if (!store.ok()) return out;
        Result<std::vector<state::DriftRecord>> open = (*store)->ListDrift("", false, 100000);
        if (!open.ok()) return out;
        std::map<std::string, double> by_env;
        for (const state::DriftRecord& d : *open) by_env[d.environment] += 1;
        for (const auto& [env, n] : by_env) out.push_back({{env}, n});
        return out;
      });
  registry_.AddGaugeCallback(
      "driftless_environments", "Environments that branches map to, by sync mode.", {"sync"},
      [controller]() {
        std::map<std::string, double> by_sync = {{"auto", 0}, {"manual", 0}};
        if (controller != nullptr) {
          for (const controller::EnvironmentView& v : controller->Environments()) {
            by_sync[v.sync] += 1;
          }
        }
        std::vector<metrics::Sample> out;
        for (const auto& [sync, n] : by_sync) out.push_back({{sync}, n});
        return out;
      });
  registry_.AddGaugeCallback("driftless_fetches", "Fetches of the repository finished.", {},
                             [controller]() {
                               double n = controller == nullptr ? 0 : controller->fetches();
                               return std::vector<metrics::Sample>{{{}, n}};
                             });
  registry_.AddGaugeCallback("driftless_ready", "1 once the first fetch has finished.", {},
                             [controller]() {
                               double r = controller != nullptr && controller->ready() ? 1 : 0;
                               return std::vector<metrics::Sample>{{{}, r}};
                             });
}

Status AddMetricsRoutes(http::Router& router, const ApiContext& context) {
  metrics::Registry* registry = context.metrics;
  return router.AddSync("GET", "/metrics", [registry](const http::Request&) {
    http::Response r;
    r.status = 200;
    r.content_type = metrics::kContentType;
    r.body = registry == nullptr ? std::string() : registry->Render();
    return r;
  });
}

}  // namespace driftless::server::api
