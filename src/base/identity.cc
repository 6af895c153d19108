#include "base/identity.h"

#include <pwd.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <vector>

namespace driftless {

Identity CurrentIdentity() {
  Identity id;
  if (const char* actor = std::getenv("DRIFTLESS_ACTOR"); actor != nullptr && *actor) {
    id.user = actor;
  } else {
    // getpwuid_r: the server opens state connections from several threads at once, and
    // getpwuid's static result would be shared by them (ThreadSanitizer found it).
    struct passwd pw;
    struct passwd* found = nullptr;
    std::vector<char> buffer(16384);
    if (getpwuid_r(geteuid(), &pw, buffer.data(), buffer.size(), &found) == 0 && found != nullptr &&
        found->pw_name != nullptr) {
      id.user = found->pw_name;
    } else {
      id.user = "uid" + std::to_string(geteuid());
    }
  }
  char host[256] = {0};
  if (gethostname(host, sizeof host - 1) == 0) id.host = host;
  if (id.host.empty()) id.host = "localhost";
  id.pid = getpid();
  return id;
}

bool ProcessAlive(int64_t pid) {
  if (pid <= 0) return false;
  if (kill(static_cast<pid_t>(pid), 0) == 0) return true;
  return errno == EPERM;
}

int64_t NowUnix() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int64_t NowUnixMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string FormatTime(int64_t unix_seconds) {
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace driftless
