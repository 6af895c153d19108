#include "server/http/message.h"

#include <cctype>
#include <charconv>
#include <cstdio>

#include "base/hash.h"
#include "base/strings.h"

namespace driftless::server::http {
namespace {

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  }
  return true;
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string_view Request::Header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (EqualsIgnoreCase(key, name)) return value;
  }
  return {};
}

std::string_view Request::Param(std::string_view name) const {
  for (const auto& [key, value] : params) {
    if (key == name) return value;
  }
  return {};
}

std::optional<std::string> Request::QueryParam(std::string_view name) const {
  std::string_view rest = query;
  while (!rest.empty()) {
    size_t amp = rest.find('&');
    std::string_view pair = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
    size_t eq = pair.find('=');
    auto key = PercentDecode(pair.substr(0, eq), true);
    if (!key || *key != name) continue;
    if (eq == std::string_view::npos) return std::string();
    return PercentDecode(pair.substr(eq + 1), true);
  }
  return std::nullopt;
}

Result<value::Value> Request::JsonBody() const {
  if (body.empty()) return MakeError("the request body is empty; a JSON document was expected");
  auto parsed = value::ParseJson(body);
  if (!parsed.ok()) {
    // The parser says where as a byte offset; people and editors want line:column too.
    std::string message = parsed.error().message;
    constexpr std::string_view kAt = " at offset ";
    size_t at = message.rfind(kAt);
    if (at != std::string::npos) {
      size_t offset = 0;
      for (size_t i = at + kAt.size(); i < message.size() && message[i] >= '0' && message[i] <= '9';
           ++i) {
        offset = offset * 10 + static_cast<size_t>(message[i] - '0');
      }
      size_t line = 1, column = 1;
      for (size_t i = 0; i < offset && i < body.size(); ++i) {
        if (body[i] == '\n') {
          ++line;
          column = 1;
        } else {
          ++column;
        }
      }
      message += " (line " + std::to_string(line) + ", column " + std::to_string(column) +
                 ": body:" + std::to_string(line) + ":" + std::to_string(column) + ")";
    }
    return MakeError("the request body is not valid JSON: " + message);
  }
  return parsed;
}

Response Response::Json(int status, std::string json) {
  Response r;
  r.status = status;
  r.body = std::move(json);
  return r;
}

Response Response::Json(int status, const value::Value& v) {
  return Json(status, value::ToJson(v));
}

Response Response::Text(int status, std::string text) {
  Response r;
  r.status = status;
  r.content_type = "text/plain; charset=utf-8";
  r.body = std::move(text);
  return r;
}

Response Response::Error(int status, std::string_view code, std::string_view message,
                         std::string_view request_id) {
  Response r;
  r.status = status;
  r.body = ErrorEnvelope(code, message, request_id);
  return r;
}

std::string ErrorEnvelope(std::string_view code, std::string_view message,
                          std::string_view request_id) {
  std::string out = "{\"error\":{\"code\":";
  AppendQuoted(out, code);
  out += ",\"message\":";
  AppendQuoted(out, message);
  out += ",\"request_id\":";
  AppendQuoted(out, request_id);
  out += "}}";
  return out;
}

void EnsureEnvelope(Response& response, std::string_view request_id) {
  static constexpr std::string_view kHead = "{\"error\":{\"code\":";
  static constexpr std::string_view kEmptyId = ",\"request_id\":\"\"}}";
  if (StartsWith(response.body, kHead) && response.content_type == "application/json") {
    if (EndsWith(response.body, kEmptyId)) {
      response.body.resize(response.body.size() - kEmptyId.size());
      response.body += ",\"request_id\":";
      AppendQuoted(response.body, request_id);
      response.body += "}}";
    }
    return;
  }
  std::string message = response.body.empty() ? std::string(StatusText(response.status))
                                              : Printable(response.body, 1000);
  response.content_type = "application/json";
  response.body = ErrorEnvelope(DefaultErrorCode(response.status), message, request_id);
}

std::string_view DefaultErrorCode(int status) {
  switch (status) {
    case 400:
      return "bad_request";
    case 401:
      return "unauthorized";
    case 403:
      return "forbidden";
    case 404:
      return "not_found";
    case 405:
      return "method_not_allowed";
    case 408:
      return "request_timeout";
    case 409:
      return "conflict";
    case 413:
      return "payload_too_large";
    case 415:
      return "unsupported_media_type";
    case 422:
      return "unprocessable";
    case 429:
      return "too_many_requests";
    case 431:
      return "header_too_large";
    case 503:
      return "unavailable";
    default:
      return status >= 500 ? "internal" : "bad_request";
  }
}

std::string Printable(std::string_view s, size_t max) {
  std::string out;
  for (char c : s.substr(0, max)) {
    unsigned char u = static_cast<unsigned char>(c);
    out += (u >= 0x20 && u < 0x7f) || c == '\n' ? c : '?';
  }
  if (s.size() > max) out += "...";
  return out;
}

std::string_view StatusText(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 304:
      return "Not Modified";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 413:
      return "Payload Too Large";
    case 415:
      return "Unsupported Media Type";
    case 422:
      return "Unprocessable Entity";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 503:
      return "Service Unavailable";
    default:
      return "Unknown";
  }
}

bool AcceptableRequestId(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != ':' &&
        c != '-')
      return false;
  }
  return true;
}

std::string NewRequestId() { return RandomHex(16); }

std::optional<std::string> PercentDecode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%') {
      if (i + 2 >= s.size()) return std::nullopt;
      int hi = HexDigit(s[i + 1]), lo = HexDigit(s[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

std::string AccessLogLine(const AccessRecord& r) {
  char duration[32];
  std::snprintf(duration, sizeof duration, "%.3f", r.duration_ms);
  std::string out = "{\"bytes_out\":" + std::to_string(r.bytes_out);
  out += ",\"duration_ms\":";
  out += duration;
  out += ",\"method\":";
  AppendQuoted(out, r.method);
  out += ",\"principal\":";
  AppendQuoted(out, r.principal);
  out += ",\"request_id\":";
  AppendQuoted(out, r.request_id);
  out += ",\"route\":";
  AppendQuoted(out, r.route);
  out += ",\"status\":" + std::to_string(r.status);
  out += "}";
  return out;
}

}  // namespace driftless::server::http
