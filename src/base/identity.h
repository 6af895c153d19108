#pragma once

#include <cstdint>
#include <string>

namespace driftless {

/// Who is acting: recorded in locks and history.
struct Identity {
  std::string user;  ///< OS user name (or DRIFTLESS_ACTOR when set)
  std::string host;  ///< host name
  int64_t pid = 0;

  /// "user@host".
  std::string UserAtHost() const { return user + "@" + host; }
};

/// The identity of this process.
Identity CurrentIdentity();

/// True when a process with this pid exists on this host.
bool ProcessAlive(int64_t pid);

/// Seconds since the Unix epoch, UTC.
int64_t NowUnix();
/// Milliseconds since the Unix epoch.
int64_t NowUnixMillis();
/// RFC 3339 UTC timestamp ("2026-11-22T03:28:56Z").
std::string FormatTime(int64_t unix_seconds);

}  // namespace driftless
