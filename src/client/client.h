#pragma once

// The HTTP API of `driftless serve` (src/server/api) as the command line calls it: a server URL
// (http://HOST:PORT, https://..., or unix:///PATH for a unix socket), a bearer token that is
// sent and never shown, and errors that name the route, the HTTP status and the server's own
// message.

#include <atomic>
#include <string>
#include <string_view>

#include "base/result.h"
#include "value/value.h"

namespace driftless::client {

/// Where a server listens, parsed from --server or DRIFTLESS_SERVER.
struct ServerUrl {
  std::string base;  ///< what a route is appended to: "http://127.0.0.1:8080", "http://localhost"
  std::string unix_path;  ///< the socket of a unix:// URL, else ""
  std::string text;       ///< the URL as given, for messages
};

/// Parses "http://HOST:PORT", "https://HOST[:PORT]" (a trailing "/" is dropped) or
/// "unix:///absolute/path.sock". An error says what is wrong with `text` and what is accepted.
Result<ServerUrl> ParseServerUrl(std::string_view text);

/// The token from `token_file` (its first line; the file must not be empty) or else from the
/// value of DRIFTLESS_TOKEN (`env_token`, may be null). The error never holds a token.
Result<std::string> LoadToken(const std::string& token_file, const char* env_token);

/// An answer of the server, or why there is none.
struct Reply {
  int status = 0;    ///< HTTP status
  std::string body;  ///< as received
};

/// The message for an answer that is not 2xx: "GET /api/v1/runs/7: HTTP 404 not_found: there
/// is no run 7" from the server's error envelope ({"error":{"code","message"}}), or the start
/// of the body when it is not one. 401 adds what to check (the token).
std::string DescribeError(std::string_view method, std::string_view route, const Reply& reply);

/// One server and one token. Every call is one request; the calls are not thread-safe.
class Client {
 public:
  Client(ServerUrl url, std::string token);

  const ServerUrl& url() const { return url_; }

  /// When set and true, a request under way is abandoned (its error says "interrupted").
  void set_cancel(const std::atomic<bool>* cancel) { cancel_ = cancel; }

  /// Sends `method` `route` (a path with its query; body "" sends none) and returns the answer,
  /// whatever its status; an error only when the server could not be reached or talked to.
  Result<Reply> Send(const std::string& method, const std::string& route,
                     const std::string& body = "");
  /// GET `route`: its JSON when 2xx, else DescribeError's message.
  Result<value::Value> Get(const std::string& route);
  /// POST `route` with `body` as JSON: its JSON when 2xx, else DescribeError's message.
  Result<value::Value> Post(const std::string& route, const value::Value& body);

 private:
  Result<value::Value> Json(const std::string& method, const std::string& route,
                            const std::string& body);

  ServerUrl url_;
  std::string token_;
  const std::atomic<bool>* cancel_ = nullptr;
};

/// `text` percent-encoded for a path segment or a query value (unreserved characters kept).
std::string Escape(std::string_view text);

}  // namespace driftless::client
