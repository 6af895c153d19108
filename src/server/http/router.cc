#include "server/http/router.h"

#include <algorithm>
#include <cctype>
#include <set>

#include "base/strings.h"
#include "server/http/server.h"

namespace driftless::server::http {
namespace {

bool IsParam(std::string_view segment) {
  return segment.size() >= 2 && segment.front() == '{' && segment.back() == '}';
}

bool ValidParamName(std::string_view name) {
  if (name.empty() || !(std::islower(static_cast<unsigned char>(name[0])) || name[0] == '_'))
    return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::islower(static_cast<unsigned char>(c)) ||
           std::isdigit(static_cast<unsigned char>(c)) || c == '_';
  });
}

bool ValidLiteral(std::string_view segment) {
  if (segment.empty()) return false;
  return std::all_of(segment.begin(), segment.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' ||
           c == '~';
  });
}

// Splits "/a/b" into {"a", "b"}; "/" is {""}.
std::vector<std::string_view> Segments(std::string_view path) {
  std::vector<std::string_view> out;
  path.remove_prefix(1);
  while (true) {
    size_t slash = path.find('/');
    out.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return out;
}

// Whether `a` is more specific than `b` (same length): the first segment where one is literal
// and the other a parameter decides.
bool MoreSpecific(const Route& a, const Route& b) {
  for (size_t i = 0; i < a.segments.size(); ++i) {
    bool la = !IsParam(a.segments[i]), lb = !IsParam(b.segments[i]);
    if (la != lb) return la;
  }
  return false;
}

}  // namespace

std::string ParamProblem(std::string_view value, size_t max_bytes) {
  if (value.empty()) return "is empty";
  if (value.size() > max_bytes) {
    return "is longer than " + std::to_string(max_bytes) + " bytes";
  }
  if (value == "." || value.find("..") != std::string_view::npos) return "must not contain \"..\"";
  for (char c : value) {
    unsigned char u = static_cast<unsigned char>(c);
    if (c == '\0') return "must not contain NUL";
    if (u < 0x20 || u == 0x7f) return "must not contain control characters";
    if (c == '/' || c == '\\') return "must not contain a slash or backslash";
    if (c == '"' || c == '\'' || c == '`') return "must not contain quotes";
  }
  return "";
}

Status Router::Add(std::string method, std::string pattern, Handler handler, RouteOptions options) {
  std::string where = "route " + method + " " + pattern + ": ";
  if (method.empty() ||
      !std::all_of(method.begin(), method.end(), [](char c) { return c >= 'A' && c <= 'Z'; }))
    return MakeError(where + "the method must be upper-case letters");
  if (pattern.empty() || pattern[0] != '/')
    return MakeError(where + "the pattern must start with '/'");
  auto route = std::make_unique<Route>();
  std::set<std::string_view> names;
  for (std::string_view segment : Segments(pattern)) {
    if (segment.empty() && pattern != "/") return MakeError(where + "empty segment");
    if (IsParam(segment)) {
      std::string_view name = segment.substr(1, segment.size() - 2);
      if (!ValidParamName(name)) {
        return MakeError(where + "parameter names are [a-z_][a-z0-9_]*");
      }
      if (!names.insert(name).second) return MakeError(where + "duplicate parameter name");
    } else if (!segment.empty() && !ValidLiteral(segment)) {
      return MakeError(where + "a literal segment holds [A-Za-z0-9._~-] only");
    }
    route->segments.emplace_back(segment);
  }
  for (const auto& other : routes_) {
    if (other->method != method || other->segments.size() != route->segments.size()) continue;
    bool same = true;
    for (size_t i = 0; i < route->segments.size() && same; ++i) {
      const std::string &a = route->segments[i], &b = other->segments[i];
      same = IsParam(a) ? IsParam(b) : a == b;
    }
    if (same) return MakeError(where + "conflicts with " + other->pattern);
  }
  route->method = std::move(method);
  route->pattern = std::move(pattern);
  route->handler = std::move(handler);
  route->options = std::move(options);
  routes_.push_back(std::move(route));
  return Status::Ok();
}

Status Router::AddSync(std::string method, std::string pattern, SyncHandler handler,
                       RouteOptions options) {
  return Add(
      std::move(method), std::move(pattern),
      [handler = std::move(handler)](const Request& request, Responder responder) {
        responder.Send(handler(request));
      },
      std::move(options));
}

void Router::SetGetFallback(Handler handler, RouteOptions options) {
  get_fallback_ = std::make_unique<Route>();
  get_fallback_->method = "GET";
  get_fallback_->pattern = "/*";
  get_fallback_->handler = std::move(handler);
  get_fallback_->options = std::move(options);
}

RouteMatch Router::Match(std::string_view method, std::string_view path) const {
  RouteMatch match;
  if (path.empty() || path[0] != '/') {
    match.kind = RouteMatch::Kind::kBadRequest;
    match.message = "the request target must be an absolute path";
    return match;
  }
  std::vector<std::string> decoded;
  for (std::string_view segment : Segments(path)) {
    auto d = PercentDecode(segment, false);
    if (!d) {
      match.kind = RouteMatch::Kind::kBadRequest;
      match.message = "malformed percent-encoding in the path";
      return match;
    }
    decoded.push_back(std::move(*d));
  }
  const Route* best = nullptr;
  std::set<std::string> allowed;
  for (const auto& route : routes_) {
    if (route->segments.size() != decoded.size()) continue;
    bool fits = true;
    for (size_t i = 0; i < decoded.size() && fits; ++i) {
      fits = IsParam(route->segments[i]) ? !decoded[i].empty() : route->segments[i] == decoded[i];
    }
    if (!fits) continue;
    if (route->method != method) {
      allowed.insert(route->method);
      continue;
    }
    if (best == nullptr || MoreSpecific(*route, *best)) best = route.get();
  }
  if (best == nullptr) {
    if (allowed.empty() && get_fallback_ != nullptr && method == "GET") {
      match.kind = RouteMatch::Kind::kFound;
      match.route = get_fallback_.get();
      return match;
    }
    if (!allowed.empty()) {
      match.kind = RouteMatch::Kind::kMethodNotAllowed;
      match.allow = Join(std::vector<std::string>(allowed.begin(), allowed.end()), ", ");
    }
    return match;
  }
  match.route = best;
  for (size_t i = 0; i < decoded.size(); ++i) {
    const std::string& segment = best->segments[i];
    if (!IsParam(segment)) continue;
    std::string name = segment.substr(1, segment.size() - 2);
    std::string problem = ParamProblem(decoded[i], max_param_bytes_);
    if (!problem.empty()) {
      match.kind = RouteMatch::Kind::kBadRequest;
      match.message = "route " + best->method + " " + best->pattern + ": path parameter " + name +
                      " " + problem;
      match.params.clear();
      return match;
    }
    match.params.emplace_back(std::move(name), std::move(decoded[i]));
  }
  match.kind = RouteMatch::Kind::kFound;
  return match;
}

}  // namespace driftless::server::http
