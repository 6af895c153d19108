#include "server/metrics/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace driftless::server::metrics {

namespace {

[[noreturn]] void Misuse(const std::string& what) {
  std::fprintf(stderr, "driftless: metrics: %s\n", what.c_str());
  std::abort();
}

bool ValidName(const std::string& name, bool colons) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    const bool digit = c >= '0' && c <= '9';
    if (!(letter || (colons && c == ':') || (i > 0 && digit))) return false;
  }
  return true;
}

// The length of the UTF-8 sequence at s[i], or 0 when it is not a valid one.
size_t Utf8Length(const std::string& s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  if (c < 0x80) return 1;
  size_t n = c >= 0xC2 && c <= 0xDF   ? 2
             : c >= 0xE0 && c <= 0xEF ? 3
             : c >= 0xF0 && c <= 0xF4 ? 4
                                      : 0;
  if (n == 0 || i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((b(i + k) & 0xC0) != 0x80) return 0;
  }
  // Overlong forms, surrogates and code points past U+10FFFF.
  if (c == 0xE0 && b(i + 1) < 0xA0) return 0;
  if (c == 0xED && b(i + 1) > 0x9F) return 0;
  if (c == 0xF0 && b(i + 1) < 0x90) return 0;
  if (c == 0xF4 && b(i + 1) > 0x8F) return 0;
  return n;
}

// Backslash and line feed escaped (HELP text); also the double quote in label values. Invalid
// UTF-8 becomes U+FFFD: scrapers reject the whole page otherwise.
void AppendEscaped(std::string& out, const std::string& s, bool quote) {
  for (size_t i = 0; i < s.size();) {
    const size_t n = Utf8Length(s, i);
    if (n == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
      continue;
    }
    const char c = s[i];
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (quote && c == '"') {
      out += "\\\"";
    } else {
      out.append(s, i, n);
    }
    i += n;
  }
}

void AppendNumber(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
  } else if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
  } else {
    char buf[32];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, ec == std::errc() ? end : buf);
  }
}

// name{a="x",b="y"} value\n; `extra` is one more label (a histogram's le) or empty.
void AppendSample(std::string& out, const std::string& name, const std::vector<std::string>& names,
                  const LabelValues& values, const std::string& extra_name,
                  const std::string& extra_value, double v) {
  out += name;
  if (!names.empty() || !extra_name.empty()) {
    out += '{';
    for (size_t i = 0; i < names.size(); ++i) {
      if (i > 0) out += ',';
      out += names[i];
      out += "=\"";
      AppendEscaped(out, values[i], true);
      out += '"';
    }
    if (!extra_name.empty()) {
      if (!names.empty()) out += ',';
      out += extra_name + "=\"" + extra_value + "\"";
    }
    out += '}';
  }
  out += ' ';
  AppendNumber(out, v);
  out += '\n';
}

}  // namespace

// What every family has: its name, help, type and label names, and a lock over its series.
struct FamilyBase {
  std::string name;
  std::string help;
  std::string type;
  std::vector<std::string> label_names;
  Counter* dropped = nullptr;  ///< the registry's count of series not made (null for itself)
  mutable std::mutex mu;
  virtual ~FamilyBase() = default;
  /// Appends the samples; takes mu itself when it reads series.
  virtual void RenderSamples(std::string& out) const = 0;

  void CheckLabels(const LabelValues& labels) const {
    if (labels.size() != label_names.size()) {
      Misuse(name + " takes " + std::to_string(label_names.size()) + " label values, got " +
             std::to_string(labels.size()));
    }
  }
  // The series of `labels` in `series` (made when new and under the cap), or null. Under mu.
  template <typename Map>
  typename Map::mapped_type* Find(Map& series, const LabelValues& labels) {
    CheckLabels(labels);
    auto it = series.find(labels);
    if (it != series.end()) return &it->second;
    if (series.size() >= kMaxSeriesPerFamily) return nullptr;
    return &series.emplace(labels, typename Map::mapped_type{}).first->second;
  }
  void Dropped() const {
    if (dropped != nullptr) dropped->Add({name});
  }
};

struct Counter::Family : FamilyBase {
  Counter handle{this};
  std::map<LabelValues, double> series;
  void RenderSamples(std::string& out) const override {
    std::lock_guard<std::mutex> lock(mu);
    for (const auto& [labels, v] : series) AppendSample(out, name, label_names, labels, "", "", v);
  }
};

struct Gauge::Family : FamilyBase {
  Gauge handle{this};
  std::map<LabelValues, double> series;
  void RenderSamples(std::string& out) const override {
    std::lock_guard<std::mutex> lock(mu);
    for (const auto& [labels, v] : series) AppendSample(out, name, label_names, labels, "", "", v);
  }
};

struct Histogram::Family : FamilyBase {
  struct Data {
    std::vector<uint64_t> counts;  ///< per bound, not cumulative; the last is +Inf
    double sum = 0;
    uint64_t count = 0;
  };
  Histogram handle{this};
  std::vector<double> bounds;
  std::map<LabelValues, Data> series;
  void RenderSamples(std::string& out) const override {
    std::lock_guard<std::mutex> lock(mu);
    for (const auto& [labels, d] : series) {
      uint64_t cumulative = 0;
      for (size_t i = 0; i <= bounds.size(); ++i) {
        cumulative += d.counts[i];
        std::string le;
        if (i == bounds.size()) {
          le = "+Inf";
        } else {
          AppendNumber(le, bounds[i]);
        }
        AppendSample(out, name + "_bucket", label_names, labels, "le", le,
                     static_cast<double>(cumulative));
      }
      AppendSample(out, name + "_sum", label_names, labels, "", "", d.sum);
      AppendSample(out, name + "_count", label_names, labels, "", "", static_cast<double>(d.count));
    }
  }
};

namespace {

struct CallbackFamily : FamilyBase {
  std::function<std::vector<Sample>()> collect;
  // No lock: the callback reads state of its own, and may take its time.
  void RenderSamples(std::string& out) const override {
    std::vector<Sample> samples = collect();
    std::sort(samples.begin(), samples.end(),
              [](const Sample& a, const Sample& b) { return a.labels < b.labels; });
    for (const Sample& s : samples) {
      CheckLabels(s.labels);
      AppendSample(out, name, label_names, s.labels, "", "", s.value);
    }
  }
};

}  // namespace

namespace {

// Runs `change` on the series of `labels` under the family's lock; counts a series not made.
template <typename F, typename Change>
void Update(F* family, const LabelValues& labels, Change change) {
  bool made = false;
  {
    std::lock_guard<std::mutex> lock(family->mu);
    auto* v = family->Find(family->series, labels);
    made = v != nullptr;
    if (made) change(*v);
  }
  if (!made) family->Dropped();
}

}  // namespace

void Counter::Add(const LabelValues& labels, double by) {
  if (!(by >= 0) || std::isinf(by)) return;
  Update(family_, labels, [by](double& v) { v += by; });
}

void Gauge::Set(const LabelValues& labels, double value) {
  Update(family_, labels, [value](double& v) { v = value; });
}

void Gauge::Add(const LabelValues& labels, double by) {
  Update(family_, labels, [by](double& v) { v += by; });
}

void Histogram::Observe(const LabelValues& labels, double value) {
  if (std::isnan(value)) return;
  const std::vector<double>& bounds = family_->bounds;
  const size_t i =
      static_cast<size_t>(std::lower_bound(bounds.begin(), bounds.end(), value) - bounds.begin());
  Update(family_, labels, [&](Family::Data& d) {
    if (d.counts.empty()) d.counts.assign(bounds.size() + 1, 0);
    ++d.counts[i];
    d.sum += value;
    ++d.count;
  });
}

Registry::Registry() {
  dropped_ =
      &AddCounter("driftless_metrics_series_dropped_total",
                  "Samples not recorded because their metric had too many label sets.", {"metric"});
}

Registry::~Registry() = default;

void Registry::Declare(const std::string& name, const std::vector<std::string>& label_names,
                       bool histogram) {
  if (!ValidName(name, true)) Misuse("invalid metric name \"" + name + "\"");
  for (const std::string& l : label_names) {
    if (!ValidName(l, false) || l.rfind("__", 0) == 0 || l == "le") {
      Misuse("invalid label name \"" + l + "\" of " + name);
    }
  }
  std::vector<std::string> sorted = label_names;
  std::sort(sorted.begin(), sorted.end());
  if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end()) {
    Misuse("a label name repeats in " + name);
  }
  // A histogram's samples are named name_bucket, name_sum and name_count: those are taken too.
  std::vector<std::string> names = {name};
  if (histogram) {
    for (const char* suffix : {"_bucket", "_sum", "_count"}) names.push_back(name + suffix);
  }
  for (const std::string& n : names) {
    if (!taken_.insert(n).second) Misuse(n + " is declared twice");
  }
}

Counter& Registry::AddCounter(const std::string& name, const std::string& help,
                              std::vector<std::string> label_names) {
  std::lock_guard<std::mutex> lock(mu_);
  Declare(name, label_names, false);
  auto f = std::make_unique<Counter::Family>();
  f->name = name;
  f->help = help;
  f->type = "counter";
  f->label_names = std::move(label_names);
  f->dropped = dropped_;
  Counter& handle = f->handle;
  families_[name] = std::move(f);
  return handle;
}

Gauge& Registry::AddGauge(const std::string& name, const std::string& help,
                          std::vector<std::string> label_names) {
  std::lock_guard<std::mutex> lock(mu_);
  Declare(name, label_names, false);
  auto f = std::make_unique<Gauge::Family>();
  f->name = name;
  f->help = help;
  f->type = "gauge";
  f->label_names = std::move(label_names);
  f->dropped = dropped_;
  Gauge& handle = f->handle;
  families_[name] = std::move(f);
  return handle;
}

Histogram& Registry::AddHistogram(const std::string& name, const std::string& help,
                                  std::vector<std::string> label_names,
                                  std::vector<double> bounds) {
  std::lock_guard<std::mutex> lock(mu_);
  Declare(name, label_names, true);
  for (size_t i = 0; i < bounds.size(); ++i) {
    if (!std::isfinite(bounds[i]) || (i > 0 && bounds[i] <= bounds[i - 1])) {
      Misuse("the bucket bounds of " + name + " are not finite and increasing");
    }
  }
  auto f = std::make_unique<Histogram::Family>();
  f->name = name;
  f->help = help;
  f->type = "histogram";
  f->label_names = std::move(label_names);
  f->dropped = dropped_;
  f->bounds = std::move(bounds);
  Histogram& handle = f->handle;
  families_[name] = std::move(f);
  return handle;
}

void Registry::AddGaugeCallback(const std::string& name, const std::string& help,
                                std::vector<std::string> label_names,
                                std::function<std::vector<Sample>()> collect) {
  std::lock_guard<std::mutex> lock(mu_);
  Declare(name, label_names, false);
  auto f = std::make_unique<CallbackFamily>();
  f->name = name;
  f->help = help;
  f->type = "gauge";
  f->label_names = std::move(label_names);
  f->collect = std::move(collect);
  families_[name] = std::move(f);
}

std::string Registry::Render() const {
  std::vector<const FamilyBase*> families;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [name, f] : families_) families.push_back(f.get());
  }
  std::string out;
  for (const FamilyBase* f : families) {
    out += "# HELP " + f->name + " ";
    AppendEscaped(out, f->help, false);
    out += "\n# TYPE " + f->name + " " + f->type + "\n";
    f->RenderSamples(out);
  }
  return out;
}

std::vector<double> DurationBuckets() {
  return {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600};
}

}  // namespace driftless::server::metrics
