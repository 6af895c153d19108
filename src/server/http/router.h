#pragma once

// The router: method + path patterns with {name} segments, matched segment by segment (literal
// segments win over parameters), with every parameter decoded and validated before a handler
// sees it.

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.h"
#include "server/http/message.h"

namespace driftless::server::http {

class Responder;

/// A handler answers through its Responder, now or later from any thread. The Request is valid
/// only during the call: copy what an asynchronous handler keeps.
using Handler = std::function<void(const Request&, Responder)>;
/// A handler that answers before it returns.
using SyncHandler = std::function<Response(const Request&)>;

/// How a route is served.
struct RouteOptions {
  /// The right the authenticator must grant ("runs:write"); "" for a public route, for which
  /// the authenticator is not called.
  std::string required_right;
  /// Runs the authenticator and the handler on the worker pool instead of the I/O thread: set
  /// it for anything that may block (state, Git). Handlers on the I/O thread must never block.
  bool blocking = true;
};

/// A registered route.
struct Route {
  std::string method;
  std::string pattern;
  std::vector<std::string> segments;  ///< the pattern split on '/': "{id}" or a literal
  Handler handler;
  RouteOptions options;
};

/// What the router found for a method and a path.
struct RouteMatch {
  enum class Kind { kFound, kNotFound, kMethodNotAllowed, kBadRequest };
  Kind kind = Kind::kNotFound;
  const Route* route = nullptr;  ///< kFound (and kBadRequest when a parameter was refused)
  std::vector<std::pair<std::string, std::string>> params;  ///< kFound
  std::string allow;    ///< kMethodNotAllowed: the methods the path has, "GET, POST"
  std::string message;  ///< kBadRequest: what was wrong, naming the route and the parameter
};

/// Why a path parameter is refused, or "" when it is acceptable: empty, longer than
/// `max_bytes`, "." or containing "..", a slash or backslash, a quote or backtick, NUL or
/// another control character.
std::string ParamProblem(std::string_view value, size_t max_bytes);

/// Routes of one server. Fill it before the server starts; matching is then read-only and
/// thread-safe.
class Router {
 public:
  /// `max_param_bytes`: the longest path parameter accepted (decoded).
  explicit Router(size_t max_param_bytes = 256) : max_param_bytes_(max_param_bytes) {}

  /// Adds a route. The pattern starts with '/'; a segment is a literal or "{name}". An error for
  /// a malformed pattern or a duplicate (method, shape).
  Status Add(std::string method, std::string pattern, Handler handler, RouteOptions options = {});
  /// Adds a route whose handler answers before it returns.
  Status AddSync(std::string method, std::string pattern, SyncHandler handler,
                 RouteOptions options = {});

  /// Sets the route of every GET that no pattern matches (not one whose path has routes of other
  /// methods: that stays a 405): the web UI's client routes. Its pattern in the Request and the
  /// access log is "/*"; it gets no parameters and sees the path in `Request::path`.
  void SetGetFallback(Handler handler, RouteOptions options = {});

  /// Matches a method and a raw (undecoded) path, without its query.
  RouteMatch Match(std::string_view method, std::string_view path) const;

  const std::vector<std::unique_ptr<Route>>& routes() const { return routes_; }

 private:
  size_t max_param_bytes_;
  std::vector<std::unique_ptr<Route>> routes_;
  std::unique_ptr<Route> get_fallback_;
};

}  // namespace driftless::server::http
