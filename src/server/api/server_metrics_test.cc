#include "server/api/server_metrics.h"

#include <gtest/gtest.h>

#include <string>

namespace driftless::server::api {
namespace {

state::Run MakeRun(int64_t id, const std::string& env, const std::string& action) {
  state::Run r;
  r.id = id;
  r.environment = env;
  r.action = action;
  return r;
}

bool Has(const std::string& page, const std::string& line) {
  return page.find(line + "\n") != std::string::npos;
}

TEST(ServerMetricsTest, CountsFinalRunsByEnvironmentAndResultAndTimesTheLifecycle) {
  metrics::Registry registry;
  ServerMetrics m(registry);
  state::Run a = MakeRun(1, "prod", "apply");
  for (const char* s : {"queued", "planning", "planned", "applying", "applied"}) {
    m.OnRunStatus(a, s);
  }
  state::Run b = MakeRun(2, "prod", "plan");
  m.OnRunStatus(b, "queued");
  m.OnRunStatus(b, "superseded");  // never started: counted, not timed
  state::Run c = MakeRun(3, "stage", "apply");
  m.OnRunStatus(c, "interrupted");  // left by an earlier server: counted, not timed
  const std::string page = registry.Render();
  EXPECT_TRUE(Has(page, "driftless_runs_total{environment=\"prod\",result=\"applied\"} 1")) << page;
  EXPECT_TRUE(Has(page, "driftless_runs_total{environment=\"prod\",result=\"superseded\"} 1"));
  EXPECT_TRUE(Has(page, "driftless_runs_total{environment=\"stage\",result=\"interrupted\"} 1"));
  EXPECT_TRUE(Has(page, "driftless_run_duration_seconds_count{action=\"apply\"} 1")) << page;
  EXPECT_EQ(page.find("driftless_run_duration_seconds_count{action=\"plan\"}"), std::string::npos);
  EXPECT_TRUE(Has(page, "driftless_reconcile_lag_seconds_count{environment=\"prod\"} 1"));
  EXPECT_EQ(page.find("driftless_reconcile_lag_seconds_count{environment=\"stage\"}"),
            std::string::npos);
}

TEST(ServerMetricsTest, RequestsByRouteAndCodeWithUnmatchedPathsInOneSeries) {
  metrics::Registry registry;
  ServerMetrics m(registry);
  http::AccessRecord r;
  r.route = "/api/v1/runs/{id}";
  r.status = 200;
  r.duration_ms = 2;
  m.OnRequest(r);
  m.OnRequest(r);
  for (int i = 0; i < 3; ++i) {
    http::AccessRecord u;
    u.method = "GET";
    u.route = "";
    u.status = 404;
    m.OnRequest(u);
  }
  const std::string page = registry.Render();
  EXPECT_TRUE(Has(page, "driftless_api_requests_total{route=\"/api/v1/runs/{id}\",code=\"200\"} 2"))
      << page;
  EXPECT_TRUE(Has(page, "driftless_api_requests_total{route=\"(unmatched)\",code=\"404\"} 3"));
  EXPECT_TRUE(Has(page,
                  "driftless_api_request_duration_seconds_bucket{route=\"/api/v1/runs/{id}\","
                  "le=\"0.0025\"} 2"))
      << page;
}

}  // namespace
}  // namespace driftless::server::api
