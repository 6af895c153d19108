#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "value/value.h"

// The HTTP client of the container provider: the Docker Engine API (and Podman's libpod API
// beside it) over a unix socket or TCP, with TLS when client files are given. libcurl does the
// HTTP; connections are kept alive and shared by the threads of a plan.

namespace driftless::providers::container {

/// Where the engine listens.
struct Endpoint {
  std::string text;         ///< as declared: "unix:///run/podman/podman.sock", "tcp://h:2376"
  std::string socket_path;  ///< for unix://
  std::string host;         ///< for tcp://
  int port = 0;
  std::string tls_ca;    ///< CA bundle that signs the engine's certificate (tcp only)
  std::string tls_cert;  ///< client certificate (tcp only)
  std::string tls_key;   ///< its key (tcp only)
  /// TLS is used when any TLS file is given.
  bool tls() const { return !tls_ca.empty() || !tls_cert.empty() || !tls_key.empty(); }
};

/// Parses "unix:///path" or "tcp://host:port" (IPv6 hosts in brackets). TLS files are checked
/// to be given together (cert and key) and only for tcp.
Result<Endpoint> ParseEndpoint(const std::string& text, const std::string& tls_ca,
                               const std::string& tls_cert, const std::string& tls_key);

/// One answer of the engine.
struct HttpResponse {
  long status = 0;
  std::string body;
};

/// Percent-encodes a query parameter value.
std::string UrlEncode(std::string_view s);

/// The engine's message in an error body ({"message": "..."}), else the body itself (shortened).
std::string EngineMessage(const std::string& body);

/// A streaming GET (the event stream): lines as they arrive, read without threads.
class LineStream {
 public:
  virtual ~LineStream() = default;
  /// Waits up to `timeout_ms` for data and appends the complete lines received. Returns false
  /// when the stream ended or failed (`*error` says why); lines received before stay appended.
  virtual bool Poll(int timeout_ms, std::vector<std::string>* lines, std::string* error) = 0;
};

/// A client for one endpoint. Thread-safe: each call takes a connection of its own from a pool.
class EngineClient {
 public:
  explicit EngineClient(Endpoint endpoint);
  ~EngineClient();
  EngineClient(const EngineClient&) = delete;
  EngineClient& operator=(const EngineClient&) = delete;

  const Endpoint& endpoint() const { return endpoint_; }

  /// One request. `path` starts with "/" and holds the query ("/v1.41/containers/x/json").
  /// A transport failure is an error; any HTTP status is a response.
  Result<HttpResponse> Call(std::string_view method, const std::string& path,
                            std::string_view body = {},
                            std::string_view content_type = "application/json",
                            long timeout_ms = 120000) const;

  /// Call, then: 2xx -> the body parsed as JSON (null for an empty body); 404 -> null when
  /// `missing_ok`; anything else -> an error naming the route and the engine's message.
  Result<value::Value> Json(std::string_view method, const std::string& path,
                            std::string_view body = {}, bool missing_ok = false,
                            std::string_view content_type = "application/json",
                            long timeout_ms = 120000) const;

  /// Starts a streaming GET of `path`.
  Result<std::unique_ptr<LineStream>> Stream(const std::string& path) const;

  /// "engine unix:///run/podman/podman.sock" for messages.
  std::string Describe() const;

 private:
  void* Take() const;        // a CURL* from the pool, or a new one
  void Give(void* h) const;  // back to the pool
  void Configure(void* h, const std::string& path) const;

  Endpoint endpoint_;
  std::string base_url_;
  mutable std::mutex mu_;
  mutable std::vector<void*> idle_;
};

}  // namespace driftless::providers::container
