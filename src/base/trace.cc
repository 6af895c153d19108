#include "base/trace.h"

#include <cstdio>
#include <cstdlib>

namespace driftless {

bool TraceSpan::Enabled() {
  static const bool enabled = std::getenv("DRIFTLESS_TRACE") != nullptr;
  return enabled;
}

TraceSpan::TraceSpan(std::string name) : name_(std::move(name)) {
  if (Enabled()) start_ = std::chrono::steady_clock::now();
}

TraceSpan::~TraceSpan() {
  if (!Enabled()) return;
  double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start_).count();
  std::fprintf(stderr, "trace: %s %.1f ms\n", name_.c_str(), ms);
}

}  // namespace driftless
