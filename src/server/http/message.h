#pragma once

// Requests, responses and the error envelope of the HTTP layer. Nothing here knows about sockets
// or Boost.Beast: the router, the handlers and the fuzz target share these types.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.h"
#include "value/value.h"

namespace driftless::server::http {

/// One request as a handler sees it. Header names are lowercased.
struct Request {
  std::string method;  ///< "GET", "POST", ...
  std::string target;  ///< as sent: path and query
  std::string path;    ///< the target before '?', not decoded
  std::string query;   ///< the target after '?', not decoded ("" when none)
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  /// The matched route's pattern ("/api/v1/runs/{id}"), "" when no route matched.
  std::string route;
  /// Path parameters of the route, decoded and validated, in pattern order.
  std::vector<std::pair<std::string, std::string>> params;
  /// The X-Request-Id sent by the client when it is acceptable, otherwise a generated one.
  std::string request_id;
  /// Who the authenticator says is asking ("" on routes that need no right).
  std::string principal;
  /// What the authenticator says the principal may see (AuthDecision::scope; the API: the
  /// token's environment glob), so that handlers need not look the principal up again.
  std::string principal_scope;

  /// The first value of header `name` (any case), or "" when absent.
  std::string_view Header(std::string_view name) const;
  /// The path parameter `name`, or "" when the route has none of that name.
  std::string_view Param(std::string_view name) const;
  /// The first query parameter `name`, percent- and '+'-decoded; nullopt when absent or when
  /// its encoding is invalid.
  std::optional<std::string> QueryParam(std::string_view name) const;
  /// The body parsed as JSON; an error (for a 400 "malformed_json") names line and column.
  Result<value::Value> JsonBody() const;
};

/// One response. Content-Length, Connection and X-Request-Id are set by the server.
struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;  ///< extra headers
  std::string body;

  /// A JSON response with a body already serialised.
  static Response Json(int status, std::string json);
  /// A JSON response of a value (canonical JSON: sorted keys).
  static Response Json(int status, const value::Value& v);
  /// A text/plain response.
  static Response Text(int status, std::string text);
  /// The error envelope {"error": {"code", "message", "request_id"}}; the server fills the
  /// request id when it is left empty. A handler's 4xx or 5xx response that is not an envelope
  /// is wrapped in one by the server (its body becomes the message).
  static Response Error(int status, std::string_view code, std::string_view message,
                        std::string_view request_id = "");
};

/// The envelope's JSON text.
std::string ErrorEnvelope(std::string_view code, std::string_view message,
                          std::string_view request_id);
/// Makes `response` (status >= 400) an envelope carrying `request_id`: fills an envelope's empty
/// request id, or wraps any other body (as the message) with a code named after the status.
void EnsureEnvelope(Response& response, std::string_view request_id);
/// The envelope code of a status when the handler gave none: "not_found", "internal", ...
std::string_view DefaultErrorCode(int status);
/// `s` made safe to quote in a message: non-printable bytes as '?', cut at `max` bytes.
std::string Printable(std::string_view s, size_t max = 200);

/// The reason phrase of a status code ("Not Found"); "Unknown" for codes it does not know.
std::string_view StatusText(int status);

/// True when a client's X-Request-Id may be echoed: 1 to 128 characters of [A-Za-z0-9._:-].
bool AcceptableRequestId(std::string_view id);
/// A new request id: 32 hexadecimal characters from a random source.
std::string NewRequestId();

/// Decodes %XX escapes (and '+' as a space when `plus_is_space`); nullopt when an escape is
/// malformed.
std::optional<std::string> PercentDecode(std::string_view s, bool plus_is_space);

/// What the access log hook receives once per request (for an event stream: when it ends).
struct AccessRecord {
  std::string method;
  std::string route;  ///< the pattern, "" when no route matched
  int status = 0;
  double duration_ms = 0;  ///< from the complete header to the last byte written
  std::string request_id;
  std::string principal;
  uint64_t bytes_out = 0;  ///< body bytes written
};

/// One JSON object on one line (no newline), keys sorted:
/// {"bytes_out":..,"duration_ms":..,"method":..,"principal":..,"request_id":..,"route":..,
///  "status":..}.
std::string AccessLogLine(const AccessRecord& record);

}  // namespace driftless::server::http
