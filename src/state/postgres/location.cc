#include "state/postgres/location.h"

#include <cctype>

namespace driftless::state {

namespace {

constexpr std::string_view kMask = "***";

bool StartsWithNoCase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(s[i])) != prefix[i]) return false;
  }
  return true;
}

// A URI: the password of the user info, and a `password=` query parameter.
std::string MaskUri(std::string_view uri) {
  std::string out;
  size_t scheme_end = uri.find("://");
  size_t authority = scheme_end + 3;
  size_t authority_end = uri.find_first_of("/?", authority);
  if (authority_end == std::string_view::npos) authority_end = uri.size();
  size_t at = uri.rfind('@', authority_end);
  if (at != std::string_view::npos && at >= authority) {
    size_t colon = uri.find(':', authority);
    if (colon != std::string_view::npos && colon < at) {
      out.append(uri.substr(0, colon + 1)).append(kMask).append(uri.substr(at, authority_end - at));
    } else {
      out.append(uri.substr(0, authority_end));
    }
  } else {
    out.append(uri.substr(0, authority_end));
  }
  std::string_view rest = uri.substr(authority_end);
  size_t query = rest.find('?');
  if (query == std::string_view::npos) return out.append(rest);
  out.append(rest.substr(0, query + 1));
  std::string_view params = rest.substr(query + 1);
  bool first = true;
  while (true) {
    size_t amp = params.find('&');
    std::string_view param = params.substr(0, amp);
    if (!first) out += '&';
    first = false;
    if (StartsWithNoCase(param, "password=")) {
      out.append("password=").append(kMask);
    } else {
      out.append(param);
    }
    if (amp == std::string_view::npos) break;
    params = params.substr(amp + 1);
  }
  return out;
}

// key=value pairs: the value of `password`, quoted or not.
std::string MaskKeyValues(std::string_view s) {
  std::string out;
  size_t i = 0;
  while (i < s.size()) {
    if (std::isspace(static_cast<unsigned char>(s[i]))) {
      out += s[i++];
      continue;
    }
    size_t key_start = i;
    while (i < s.size() && s[i] != '=' && !std::isspace(static_cast<unsigned char>(s[i]))) ++i;
    std::string_view key = s.substr(key_start, i - key_start);
    out.append(key);
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) out += s[i++];
    if (i >= s.size() || s[i] != '=') continue;
    out += s[i++];
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) out += s[i++];
    size_t value_start = i;
    if (i < s.size() && s[i] == '\'') {
      ++i;
      while (i < s.size() && s[i] != '\'') {
        if (s[i] == '\\' && i + 1 < s.size()) ++i;
        ++i;
      }
      if (i < s.size()) ++i;
    } else {
      while (i < s.size() && !std::isspace(static_cast<unsigned char>(s[i]))) {
        if (s[i] == '\\' && i + 1 < s.size()) ++i;
        ++i;
      }
    }
    if (key == "password") {
      out.append(kMask);
    } else {
      out.append(s.substr(value_start, i - value_start));
    }
  }
  return out;
}

}  // namespace

bool IsPostgresUri(std::string_view location) {
  return StartsWithNoCase(location, "postgres://") || StartsWithNoCase(location, "postgresql://");
}

std::string MaskPassword(std::string_view location) {
  if (location.find("://") != std::string_view::npos) return MaskUri(location);
  return MaskKeyValues(location);
}

}  // namespace driftless::state
