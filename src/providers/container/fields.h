#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

// The text forms of the container provider's fields: published ports, durations, names, image
// references, restart policies. Pure functions, shared by Normalize (declared values) and the
// readers of the engine's answers (live values), so that both come out in one canonical form.

namespace driftless::providers::container {

/// A published port in canonical form: "8080:80/tcp", "127.0.0.1:5432:5432/tcp",
/// "[::1]:8080:80/udp". Accepts "HOST:CONTAINER[/PROTO]" and "IP:HOST:CONTAINER[/PROTO]" (an IPv6
/// address in brackets); "0.0.0.0" (any address) is left out. On error sets *error.
std::string CanonicalPort(std::string_view text, std::string* error);

/// The canonical port of an engine binding: container port "80/tcp", host ip ("" or "0.0.0.0"
/// for any), host port.
std::string PortFromBinding(std::string_view container_port, std::string_view host_ip,
                            std::string_view host_port);

/// The parts of a canonical port.
struct PortParts {
  std::string host_ip;         ///< "" for any
  std::string host_port;       ///< "8080"
  std::string container_port;  ///< "80/tcp"
};
/// Splits a canonical port (CanonicalPort's output).
PortParts SplitPort(std::string_view canonical);

/// "1m30s", "500ms", "2h", "10s" -> nanoseconds; std::nullopt when malformed or negative.
std::optional<int64_t> ParseDuration(std::string_view text);
/// Nanoseconds -> the shortest canonical text ("90s" -> "1m30s", "0.5s" -> "500ms").
std::string FormatDuration(int64_t ns);

/// Whether `name` is a valid container, network or volume name ([a-zA-Z0-9][a-zA-Z0-9_.-]*).
bool ValidObjectName(std::string_view name);

/// An image reference with ":latest" added when it has neither tag nor digest; image ids
/// ("sha256:<hex>") are kept. "" when it is not a reference.
std::string CanonicalImageRef(std::string_view ref);

/// "no", "always", "unless-stopped", "on-failure", "on-failure:N" -> canonical ("on-failure:0"
/// is "on-failure"); "" when not one of these.
std::string CanonicalRestart(std::string_view text);

/// A cleaned absolute path ("/a/./b/../c/" -> "/a/c"); "" when not absolute.
std::string CleanAbsolutePath(std::string_view path);

}  // namespace driftless::providers::container
