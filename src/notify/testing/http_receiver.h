#pragma once

// A loopback HTTP/1.1 receiver for the notification tests and the drift benchmark: a blocking
// socket server on 127.0.0.1 in a thread of its own, one request per connection, answering 200.
// It records each request with the moment its body had fully arrived.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace driftless::notify::testing {

/// One request the receiver got.
struct Request {
  std::string method, path, body;
  std::vector<std::pair<std::string, std::string>> headers;  ///< names lowercased
  std::chrono::steady_clock::time_point arrived;             ///< when the body was complete

  /// The value of header `name` (lowercase), or "".
  std::string Header(const std::string& name) const;
};

class Receiver {
 public:
  Receiver() = default;
  ~Receiver() { Stop(); }
  Receiver(const Receiver&) = delete;
  Receiver& operator=(const Receiver&) = delete;

  /// Listens on 127.0.0.1:`port` (0: any free port); false when it cannot.
  bool Start(int port = 0);
  /// Stops listening (connections are refused from then on); Start may be called again.
  void Stop();

  int port() const { return port_; }
  std::string Url(const std::string& path) const;
  /// Every request so far, in arrival order.
  std::vector<Request> Requests();
  /// Waits up to `timeout` for a request for which `match` holds.
  bool WaitFor(const std::function<bool(const Request&)>& match, Request* out,
               std::chrono::milliseconds timeout);
  /// Waits (up to two minutes: a failure detector on a loaded machine) for a request whose
  /// X-Driftless-Event (or, for Slack, body) has `type`.
  bool WaitFor(const std::string& type, Request* out = nullptr);

 private:
  void Serve();

  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::vector<Request> requests_;
  std::condition_variable arrived_;
};

}  // namespace driftless::notify::testing
