#pragma once

// A blocking HTTP/1.1 client on a raw socket, for the HTTP layer's tests and benchmark: it sends
// exactly the bytes it is given (half a header, a lying Content-Length) and reads what comes.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.h"

namespace driftless::server::http::testing {

/// One response read off a connection.
struct RawResponse {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  ///< names lowercased
  std::string body;

  /// The first value of header `name` (lowercase), or "".
  std::string Header(std::string_view name) const;
};

/// One connection. Move-only; closes on destruction.
class RawClient {
 public:
  /// Connects to 127.0.0.1:`port`.
  static Result<RawClient> ConnectTcp(uint16_t port);
  /// Connects to a unix socket.
  static Result<RawClient> ConnectUnix(const std::string& path);

  RawClient(RawClient&& other) noexcept;
  RawClient& operator=(RawClient&& other) noexcept;
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;
  ~RawClient();

  /// Writes all of `data`; false on an error (the server closed, most likely).
  bool Send(std::string_view data);
  /// Reads until `needle` is among the bytes received and not yet consumed; false on EOF, an
  /// error or the timeout.
  bool ReadUntil(std::string_view needle, std::chrono::milliseconds timeout);
  /// Reads one response with a Content-Length body, consuming it; nullopt on EOF, an error or
  /// the timeout.
  std::optional<RawResponse> ReadResponse(std::chrono::milliseconds timeout);
  /// Reads (and discards) until the server closes; false if it did not within the timeout.
  bool WaitClosed(std::chrono::milliseconds timeout);
  /// Bytes received and not consumed by ReadResponse.
  const std::string& received() const { return received_; }
  /// Forgets the bytes received so far.
  void Consume() { received_.clear(); }
  int fd() const { return fd_; }

 private:
  explicit RawClient(int fd) : fd_(fd) {}
  // Waits for and reads what is available; 1 data, 0 EOF, -1 error or timeout.
  int ReadSome(std::chrono::steady_clock::time_point deadline);

  int fd_ = -1;
  std::string received_;
};

/// A GET of `target` with Connection: close on a new connection; nullopt on failure.
std::optional<RawResponse> Get(uint16_t port, const std::string& target,
                               std::chrono::milliseconds timeout = std::chrono::seconds(60));

}  // namespace driftless::server::http::testing
