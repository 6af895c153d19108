#pragma once

#include <memory>
#include <string>

#include "base/result.h"

namespace driftless::state {

/// The mark that one `driftless serve` runs on a SQLite state file: an exclusive flock(2) on
/// the file `<state>-serve.lock` beside it, held for the server's life. SQLite state has no
/// leases shared between servers, so a second server on the same file would reconcile the same
/// environments at once; it is refused instead. The lock dies with the process (a server killed
/// with SIGKILL does not block the next start), and the file only says who holds it: its
/// content is never trusted alone. Other commands (plan, apply, drift, ...) never look at it.
class ServerLock {
 public:
  /// Takes the lock for the SQLite state at `state_path` and records this process (pid, user,
  /// host, start time) in the lock file. When another process holds it, an error naming the
  /// state file and that server (pid, host, listen address when it recorded one).
  static Result<std::unique_ptr<ServerLock>> Acquire(const std::string& state_path);

  /// Releases the lock (the file stays, empty of meaning once unlocked).
  ~ServerLock();
  ServerLock(const ServerLock&) = delete;
  ServerLock& operator=(const ServerLock&) = delete;

  /// Records the address the server listens on (HOST:PORT or unix:///PATH), for the message a
  /// second server prints.
  Status SetListen(const std::string& address);

  /// The lock file of the state at `state_path`.
  static std::string LockPath(const std::string& state_path);

 private:
  ServerLock(int fd, std::string path, std::string record);
  Status Write();

  int fd_;
  std::string path_;
  std::string record_;  ///< the lines written without the listen address
  std::string listen_;
};

}  // namespace driftless::state
