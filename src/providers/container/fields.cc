#include "providers/container/fields.h"

#include <algorithm>
#include <cstdint>
#include <vector>

#include "base/strings.h"

namespace driftless::providers::container {

namespace {

bool IsDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool ValidPortNumber(std::string_view s) {
  if (!IsDigits(s) || s.size() > 5 || s[0] == '0') return false;
  int n = 0;
  for (char c : s) n = n * 10 + (c - '0');
  return n >= 1 && n <= 65535;
}

bool ValidIpv4(std::string_view s) {
  std::vector<std::string> parts = Split(s, '.');
  if (parts.size() != 4) return false;
  for (const auto& p : parts) {
    if (!IsDigits(p) || p.size() > 3 || (p.size() > 1 && p[0] == '0')) return false;
    if (std::stoi(p) > 255) return false;
  }
  return true;
}

bool ValidIpv6(std::string_view s) {
  if (s.size() < 2 || s.find(':') == std::string_view::npos) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':' ||
           c == '.';
  });
}

std::string HostIpText(std::string_view ip) {
  if (ip.empty() || ip == "0.0.0.0") return "";
  if (ip.find(':') != std::string_view::npos) return "[" + std::string(ip) + "]:";
  return std::string(ip) + ":";
}

bool IsHex(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
  });
}

}  // namespace

std::string CanonicalPort(std::string_view text, std::string* error) {
  std::string_view rest = Trim(text);
  std::string proto = "tcp";
  if (size_t slash = rest.rfind('/'); slash != std::string_view::npos) {
    proto = std::string(rest.substr(slash + 1));
    rest = rest.substr(0, slash);
    if (proto != "tcp" && proto != "udp" && proto != "sctp") {
      *error = "the protocol must be tcp, udp or sctp, not " + Quote(proto);
      return "";
    }
  }
  std::string ip;
  if (!rest.empty() && rest[0] == '[') {
    size_t close = rest.find(']');
    if (close == std::string_view::npos || close + 1 >= rest.size() || rest[close + 1] != ':') {
      *error = "an IPv6 address is written in brackets: \"[::1]:8080:80\"";
      return "";
    }
    ip = std::string(rest.substr(1, close - 1));
    if (!ValidIpv6(ip)) {
      *error = Quote(ip) + " is not an IPv6 address";
      return "";
    }
    rest = rest.substr(close + 2);
  }
  std::vector<std::string> parts = Split(rest, ':');
  if (ip.empty() && parts.size() == 3) {
    ip = parts[0];
    parts.erase(parts.begin());
    if (!ValidIpv4(ip)) {
      *error = Quote(ip) + " is not an IPv4 address (IPv6 addresses go in brackets)";
      return "";
    }
  }
  if (parts.size() != 2) {
    *error = "a published port is \"HOST_PORT:CONTAINER_PORT\" or \"IP:HOST_PORT:CONTAINER_PORT\"" +
             std::string(" (with /tcp or /udp); a host port is needed so that it can be compared");
    return "";
  }
  for (const auto& p : parts) {
    if (!ValidPortNumber(p)) {
      *error = Quote(p) + " is not a port number (1 to 65535; ranges are not supported)";
      return "";
    }
  }
  return HostIpText(ip) + parts[0] + ":" + parts[1] + "/" + proto;
}

std::string PortFromBinding(std::string_view container_port, std::string_view host_ip,
                            std::string_view host_port) {
  std::string cport(container_port);
  if (cport.find('/') == std::string::npos) cport += "/tcp";
  return HostIpText(host_ip) + std::string(host_port) + ":" + cport;
}

PortParts SplitPort(std::string_view canonical) {
  PortParts p;
  std::string_view rest = canonical;
  if (!rest.empty() && rest[0] == '[') {
    size_t close = rest.find(']');
    if (close != std::string_view::npos) {
      p.host_ip = std::string(rest.substr(1, close - 1));
      rest = rest.substr(std::min(rest.size(), close + 2));
    }
  }
  std::vector<std::string> parts = Split(rest, ':');
  if (parts.size() == 3) {
    p.host_ip = parts[0];
    parts.erase(parts.begin());
  }
  if (parts.size() == 2) {
    p.host_port = parts[0];
    p.container_port = parts[1];
  }
  return p;
}

std::optional<int64_t> ParseDuration(std::string_view text) {
  std::string_view s = Trim(text);
  if (s == "0") return 0;
  if (s.empty()) return std::nullopt;
  // Exact integer arithmetic: a fraction is kept to the nanosecond and the total must fit.
  constexpr __int128 kMax = INT64_MAX;
  __int128 total = 0;
  while (!s.empty()) {
    size_t i = 0;
    __int128 whole = 0;
    bool digits = false;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      whole = whole * 10 + (s[i] - '0');
      if (whole > kMax) return std::nullopt;
      ++i;
      digits = true;
    }
    __int128 frac = 0, scale = 1;
    if (i < s.size() && s[i] == '.') {
      ++i;
      while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
        if (scale < 1000000000000000000LL) {  // 18 digits: beyond is below a nanosecond
          frac = frac * 10 + (s[i] - '0');
          scale *= 10;
        }
        ++i;
        digits = true;
      }
    }
    if (!digits) return std::nullopt;
    size_t u = i;
    while (u < s.size() && !(s[u] >= '0' && s[u] <= '9') && s[u] != '.') ++u;
    std::string_view unit = s.substr(i, u - i);
    int64_t ns;
    if (unit == "ns") {
      ns = 1;
    } else if (unit == "us" || unit == "\xc2\xb5s") {
      ns = 1000;
    } else if (unit == "ms") {
      ns = 1000000;
    } else if (unit == "s") {
      ns = 1000000000;
    } else if (unit == "m") {
      ns = 60LL * 1000000000;
    } else if (unit == "h") {
      ns = 3600LL * 1000000000;
    } else {
      return std::nullopt;
    }
    total += whole * ns + frac * ns / scale;
    if (total > kMax) return std::nullopt;
    s.remove_prefix(u);
  }
  return static_cast<int64_t>(total);
}

std::string FormatDuration(int64_t ns) {
  if (ns <= 0) return "0s";
  constexpr int64_t kSecond = 1000000000;
  if (ns % kSecond == 0) {
    int64_t s = ns / kSecond;
    std::string out;
    if (s >= 3600) out += std::to_string(s / 3600) + "h";
    if (s % 3600 >= 60) out += std::to_string(s % 3600 / 60) + "m";
    if (s % 60 != 0 || out.empty()) out += std::to_string(s % 60) + "s";
    return out;
  }
  if (ns % 1000000 == 0) return std::to_string(ns / 1000000) + "ms";
  if (ns % 1000 == 0) return std::to_string(ns / 1000) + "us";
  return std::to_string(ns) + "ns";
}

bool ValidObjectName(std::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  auto alnum = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  };
  if (!alnum(name[0])) return false;
  return std::all_of(name.begin(), name.end(),
                     [&](char c) { return alnum(c) || c == '_' || c == '.' || c == '-'; });
}

std::string CanonicalImageRef(std::string_view ref) {
  std::string_view r = Trim(ref);
  if (r.empty() || r.size() > 512) return "";
  if (StartsWith(r, "sha256:")) return IsHex(r.substr(7)) && r.size() == 71 ? std::string(r) : "";
  for (char c : r) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-' || c == '/' || c == ':' || c == '@';
    if (!ok) return "";
  }
  if (r.front() == '/' || r.back() == '/' || r.back() == ':' || r.find("//") != std::string::npos)
    return "";
  // "sha256" as a name would read as an id with another tag.
  if (r.substr(0, r.find_first_of(":@")) == "sha256") return "";
  if (r.find('@') != std::string_view::npos) return std::string(r);
  if (r.size() >= 12 && r.size() <= 64 && IsHex(r)) return std::string(r);  // an image id
  std::string_view last = r.substr(r.rfind('/') == std::string_view::npos ? 0 : r.rfind('/') + 1);
  if (last.find(':') != std::string_view::npos) return std::string(r);
  return std::string(r) + ":latest";
}

std::string CanonicalRestart(std::string_view text) {
  std::string_view t = Trim(text);
  if (t == "no" || t == "always" || t == "unless-stopped" || t == "on-failure")
    return std::string(t);
  if (StartsWith(t, "on-failure:")) {
    std::string_view n = t.substr(11);
    if (!IsDigits(n) || n.size() > 6) return "";
    int count = std::stoi(std::string(n));
    return count == 0 ? "on-failure" : "on-failure:" + std::to_string(count);
  }
  return "";
}

std::string CleanAbsolutePath(std::string_view path) {
  if (path.empty() || path[0] != '/') return "";
  std::vector<std::string> out;
  for (const auto& part : Split(path, '/')) {
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      if (!out.empty()) out.pop_back();
      continue;
    }
    out.push_back(part);
  }
  return "/" + Join(out, "/");
}

}  // namespace driftless::providers::container
