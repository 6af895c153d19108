#include "server/metrics/metrics.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "support/shell.h"

namespace driftless::server::metrics {
namespace {

TEST(MetricsTest, RendersFamiliesInNameOrderWithHelpTypeAndSortedSeries) {
  Registry r;
  Counter& runs = r.AddCounter("driftless_runs_total", "Runs by environment and result.",
                               {"environment", "result"});
  runs.Add({"staging", "applied"});
  runs.Add({"dev", "errored"}, 2);
  runs.Add({"staging", "applied"});
  runs.Add({"dev", "errored"}, -5);  // ignored: a counter never goes down
  Gauge& streams = r.AddGauge("driftless_event_streams", "Event streams open.");
  streams.Add({}, 3);
  streams.Add({}, -1);
  r.AddGaugeCallback("driftless_drift_open", "Open drift.", {"environment"}, [] {
    return std::vector<Sample>{{{"b"}, 1}, {{"a"}, 0}};
  });
  EXPECT_EQ(r.Render(),
            "# HELP driftless_drift_open Open drift.\n"
            "# TYPE driftless_drift_open gauge\n"
            "driftless_drift_open{environment=\"a\"} 0\n"
            "driftless_drift_open{environment=\"b\"} 1\n"
            "# HELP driftless_event_streams Event streams open.\n"
            "# TYPE driftless_event_streams gauge\n"
            "driftless_event_streams 2\n"
            "# HELP driftless_metrics_series_dropped_total Samples not recorded because their "
            "metric had too many label sets.\n"
            "# TYPE driftless_metrics_series_dropped_total counter\n"
            "# HELP driftless_runs_total Runs by environment and result.\n"
            "# TYPE driftless_runs_total counter\n"
            "driftless_runs_total{environment=\"dev\",result=\"errored\"} 2\n"
            "driftless_runs_total{environment=\"staging\",result=\"applied\"} 2\n");
}

TEST(MetricsTest, HistogramBucketsAreCumulativeWithInfSumAndCount) {
  Registry r;
  Histogram& h =
      r.AddHistogram("driftless_run_duration_seconds", "Run duration.", {"action"}, {0.1, 1});
  h.Observe({"apply"}, 0.05);
  h.Observe({"apply"}, 0.1);  // on a bound: counted in it (le is "less or equal")
  h.Observe({"apply"}, 0.5);
  h.Observe({"apply"}, 7);
  std::string out = r.Render();
  EXPECT_NE(out.find("# TYPE driftless_run_duration_seconds histogram\n"
                     "driftless_run_duration_seconds_bucket{action=\"apply\",le=\"0.1\"} 2\n"
                     "driftless_run_duration_seconds_bucket{action=\"apply\",le=\"1\"} 3\n"
                     "driftless_run_duration_seconds_bucket{action=\"apply\",le=\"+Inf\"} 4\n"
                     "driftless_run_duration_seconds_sum{action=\"apply\"} 7.65\n"
                     "driftless_run_duration_seconds_count{action=\"apply\"} 4\n"),
            std::string::npos)
      << out;
}

TEST(MetricsTest, LabelValuesAndHelpAreEscapedAndInvalidUtf8Replaced) {
  Registry r;
  Counter& c = r.AddCounter("driftless_x_total", "a \\ help\nline", {"route"});
  c.Add({"say \"hi\"\\\n\xff\xc3\xa9"});
  std::string out = r.Render();
  EXPECT_NE(out.find("# HELP driftless_x_total a \\\\ help\\nline\n"), std::string::npos) << out;
  EXPECT_NE(out.find("driftless_x_total{route=\"say \\\"hi\\\"\\\\\\n\xEF\xBF\xBD\xc3\xa9\"} 1\n"),
            std::string::npos)
      << out;
}

TEST(MetricsTest, ASeriesPastTheCapIsDroppedAndCounted) {
  Registry r;
  Counter& c = r.AddCounter("driftless_requests_total", "Requests.", {"path"});
  for (size_t i = 0; i < kMaxSeriesPerFamily + 5; ++i) c.Add({"/p" + std::to_string(i)});
  c.Add({"/p0"});  // an existing series still counts
  std::string out = r.Render();
  EXPECT_NE(out.find("driftless_metrics_series_dropped_total{metric=\"driftless_requests_total\"} "
                     "5\n"),
            std::string::npos);
  EXPECT_NE(out.find("driftless_requests_total{path=\"/p0\"} 2\n"), std::string::npos);
  EXPECT_EQ(out.find("path=\"/p" + std::to_string(kMaxSeriesPerFamily) + "\""), std::string::npos);
}

TEST(MetricsDeathTest, MisuseAbortsWithTheName) {
  EXPECT_DEATH(
      {
        Registry r;
        r.AddCounter("driftless_a_total", "x", {"env"}).Add({"one", "two"});
      },
      "driftless_a_total takes 1 label values, got 2");
  EXPECT_DEATH(
      {
        Registry r;
        r.AddHistogram("driftless_d", "x", {}, {1});
        r.AddGauge("driftless_d_count", "x");
      },
      "driftless_d_count is declared twice");
  EXPECT_DEATH({ Registry().AddGauge("driftless-bad", "x"); }, "invalid metric name");
  EXPECT_DEATH({ Registry().AddGauge("driftless_g", "x", {"le"}); }, "invalid label name");
  EXPECT_DEATH({ Registry().AddHistogram("driftless_h", "x", {}, {2, 1}); }, "not finite");
}

TEST(MetricsTest, ConcurrentUpdatesAndScrapesLoseNothing) {
  Registry r;
  Counter& c = r.AddCounter("driftless_c_total", "c", {"worker"});
  Histogram& h = r.AddHistogram("driftless_h_seconds", "h", {}, DurationBuckets());
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 2000; ++i) {
        c.Add({std::to_string(t % 2)});
        h.Observe({}, 0.001 * i);
        if (i % 500 == 0) (void)r.Render();
      }
    });
  }
  for (auto& t : threads) t.join();
  std::string out = r.Render();
  EXPECT_NE(out.find("driftless_c_total{worker=\"0\"} 4000\n"), std::string::npos) << out;
  EXPECT_NE(out.find("driftless_c_total{worker=\"1\"} 4000\n"), std::string::npos) << out;
  EXPECT_NE(out.find("driftless_h_seconds_count 8000\n"), std::string::npos) << out;
}

// The page read back by a real Prometheus parser (Debian's python3-prometheus-client): every
// family, type and sample as this registry meant them.
TEST(MetricsTest, APrometheusParserReadsThePage) {
  Registry r;
  r.AddCounter("driftless_api_requests_total", "API requests by route and code.", {"route", "code"})
      .Add({"GET /api/v1/environments/{env}", "200"}, 3);
  r.AddCounter("driftless_api_requests_total_x", "a name that looks like a suffix", {"q"})
      .Add({"a \"quoted\" \\ value\nwith a line"});
  Histogram& h = r.AddHistogram("driftless_reconcile_seconds", "Reconcile lag.", {"environment"},
                                DurationBuckets());
  h.Observe({"staging"}, 0.2);
  h.Observe({"staging"}, 1e-9);
  r.AddGauge("driftless_up", "One.").Set({}, 1);
  r.AddGauge("driftless_nan", "Not a number.").Set({}, 0.0 / 0.0);

  const std::string dir =
      std::filesystem::temp_directory_path() / ("driftless-metrics-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  {
    std::ofstream(dir + "/page.txt") << r.Render();
    std::ofstream(dir + "/read.py")
        << "import math, sys\n"
           "from prometheus_client.parser import text_string_to_metric_families\n"
           "for f in text_string_to_metric_families(open(sys.argv[1]).read()):\n"
           "    for s in f.samples:\n"
           "        labels = ','.join(k + '=' + repr(v) for k, v in sorted(s.labels.items()))\n"
           "        v = 'nan' if math.isnan(s.value) else repr(float(s.value))\n"
           "        print(f.type, f.name, s.name, labels, v)\n";
  }
  std::string parsed = test::Sh("/usr/bin/python3 " + dir + "/read.py " + dir + "/page.txt");
  std::filesystem::remove_all(dir);
  EXPECT_NE(parsed.find("counter driftless_api_requests driftless_api_requests_total "
                        "code='200',route='GET /api/v1/environments/{env}' 3.0"),
            std::string::npos)
      << parsed;
  EXPECT_NE(parsed.find("q='a \"quoted\" \\\\ value\\nwith a line' 1.0"), std::string::npos)
      << parsed;
  EXPECT_NE(parsed.find("histogram driftless_reconcile_seconds driftless_reconcile_seconds_bucket "
                        "environment='staging',le='0.005' 1.0"),
            std::string::npos)
      << parsed;
  EXPECT_NE(parsed.find("driftless_reconcile_seconds_bucket environment='staging',le='+Inf' 2.0"),
            std::string::npos)
      << parsed;
  EXPECT_NE(parsed.find("driftless_reconcile_seconds_count environment='staging' 2.0"),
            std::string::npos)
      << parsed;
  EXPECT_NE(parsed.find("gauge driftless_up driftless_up  1.0"), std::string::npos) << parsed;
  EXPECT_NE(parsed.find("gauge driftless_nan driftless_nan  nan"), std::string::npos) << parsed;
}

}  // namespace
}  // namespace driftless::server::metrics
