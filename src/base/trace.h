#pragma once

#include <chrono>
#include <string>

namespace driftless {

/// Times a phase and prints "trace: NAME 12.3 ms" to stderr when DRIFTLESS_TRACE is set.
/// Costs one getenv per process when tracing is off.
class TraceSpan {
 public:
  explicit TraceSpan(std::string name);
  ~TraceSpan();
  TraceSpan(const TraceSpan&) = delete;
  TraceSpan& operator=(const TraceSpan&) = delete;

  /// True when DRIFTLESS_TRACE is set.
  static bool Enabled();

 private:
  std::string name_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace driftless
