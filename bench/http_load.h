#pragma once

// What the HTTP benchmarks share: a load of keep-alive clients on one request, and a process's
// memory and threads from /proc.

#include <cstdint>
#include <functional>
#include <string>
#include <utility>

#include "server/http/testing/raw_client.h"

namespace driftless::bench {

/// Requests per second and latency percentiles of a load.
struct LoadResult {
  double rps = 0, p50_ms = 0, p99_ms = 0;
};

/// Why an answer is wrong, or "" when it is right.
using AnswerCheck = std::function<std::string(const server::http::testing::RawResponse&)>;

/// `clients` keep-alive connections to 127.0.0.1:`port`, connected and warmed one after the
/// other before the clock starts, then each sending `request` (the raw bytes) `requests` times
/// one after the other. Dies when a connection fails or `check` refuses an answer.
LoadResult Load(uint16_t port, const std::string& request, int clients, int requests,
                const AnswerCheck& check);

/// VmRSS in KiB and the thread count of process `pid` (-1 when unknown).
std::pair<long, long> RssAndThreads(int pid);
/// VmHWM (the peak resident set) in KiB of process `pid` (-1 when unknown).
long PeakRssKib(int pid);

}  // namespace driftless::bench
