#pragma once

#include <atomic>
#include <chrono>
#include <string>

#include "base/result.h"
#include "notify/sink.h"
#include "value/value.h"

namespace driftless::notify {

/// Limits of one delivery. A sink's `timeout:` replaces the three timeouts (Deliver).
struct DeliveryLimits {
  long connect_timeout_ms = 5000;  ///< HTTP connect
  long total_timeout_ms = 10000;   ///< HTTP request, whole
  int exec_timeout_ms = 30000;     ///< exec sinks are killed after this
  /// No delivery runs past this (the caller's budget); the timeouts above are cut to fit.
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
  /// When set and true, a delivery in flight is abandoned (a failure) as soon as possible.
  const std::atomic<bool>* cancel = nullptr;
};

/// "sha256=<hex HMAC-SHA256(secret, body)>": the X-Driftless-Signature header's value.
std::string Signature(const std::string& secret, const std::string& body);

/// The Slack incoming-webhook payload for an event: {"text": ...} with a one-line summary and
/// at most 20 lines of the diff in a code block.
std::string SlackPayload(const value::Value& event);

/// Sends one event (its canonical JSON in `event_json`) to a resolved sink. webhook: POST the
/// JSON with X-Driftless-Event, X-Driftless-Delivery and, with a secret, X-Driftless-Signature;
/// 2xx is delivered. slack: POST SlackPayload. exec: the JSON on standard input; exit 0 is
/// delivered. Errors never contain the URL or the secret.
Status Deliver(const ResolvedSink& sink, const std::string& event_json,
               const DeliveryLimits& limits = {});

}  // namespace driftless::notify
