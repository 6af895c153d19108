#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

namespace driftless::server::metrics {

/// One label value per label name of its family, in the family's order.
using LabelValues = std::vector<std::string>;

/// A family's series are capped: label values come from environments, routes and results, and
/// an unbounded label (a raw request path, a user's input) must not grow the server's memory
/// with every request. Past the cap a new series is not made; the registry counts it in
/// `driftless_metrics_series_dropped_total`.
inline constexpr size_t kMaxSeriesPerFamily = 10000;

class Registry;
struct FamilyBase;  // metrics.cc

/// A value that only grows (requests, runs): `_total` by convention.
class Counter {
 public:
  /// Adds `by` (>= 0; a negative or non-finite amount is ignored) to the series of `labels`.
  void Add(const LabelValues& labels, double by = 1);

 private:
  friend class Registry;
  struct Family;
  explicit Counter(Family* f) : family_(f) {}
  Family* family_;
};

/// A value that goes up and down (open drift, streams held open).
class Gauge {
 public:
  /// Sets the series of `labels` to `value`.
  void Set(const LabelValues& labels, double value);
  /// Adds `by` (may be negative) to the series of `labels` (0 when new).
  void Add(const LabelValues& labels, double by);

 private:
  friend class Registry;
  struct Family;
  explicit Gauge(Family* f) : family_(f) {}
  Family* family_;
};

/// Observations counted in cumulative buckets, with their sum and count (durations).
class Histogram {
 public:
  /// Counts `value` in the series of `labels` (NaN is ignored).
  void Observe(const LabelValues& labels, double value);

 private:
  friend class Registry;
  struct Family;
  explicit Histogram(Family* f) : family_(f) {}
  Family* family_;
};

/// One sample of a gauge computed when scraped.
struct Sample {
  LabelValues labels;
  double value = 0;
};

/// The metrics of a process, rendered in the Prometheus text exposition format (version 0.0.4).
/// Every member may be called from any thread. Names and label names are fixed by the code; an
/// invalid one, a name declared twice, or label values that do not match their family's label
/// names are programming errors and abort with a message.
class Registry {
 public:
  Registry();
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  /// Declares a counter family; the reference lives as long as the registry.
  Counter& AddCounter(const std::string& name, const std::string& help,
                      std::vector<std::string> label_names = {});
  /// Declares a gauge family.
  Gauge& AddGauge(const std::string& name, const std::string& help,
                  std::vector<std::string> label_names = {});
  /// Declares a histogram family with these upper bounds (sorted, finite; `+Inf` is added).
  Histogram& AddHistogram(const std::string& name, const std::string& help,
                          std::vector<std::string> label_names, std::vector<double> bounds);
  /// Declares a gauge family whose samples `collect` computes at every scrape (open drift from
  /// the state, the lag of each environment). `collect` runs on the scraping thread, without
  /// any lock of the registry held.
  void AddGaugeCallback(const std::string& name, const std::string& help,
                        std::vector<std::string> label_names,
                        std::function<std::vector<Sample>()> collect);

  /// Every family in name order, its series in label order: `# HELP`, `# TYPE`, then samples.
  std::string Render() const;

 private:
  void Declare(const std::string& name, const std::vector<std::string>& label_names,
               bool histogram);
  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<FamilyBase>> families_;
  std::set<std::string> taken_;  ///< sample names in use (a histogram takes four)
  Counter* dropped_ = nullptr;
};

/// The content type of Render()'s output.
inline constexpr const char* kContentType = "text/plain; version=0.0.4; charset=utf-8";

/// Buckets for durations in seconds, from 5 ms to 10 minutes.
std::vector<double> DurationBuckets();

}  // namespace driftless::server::metrics
