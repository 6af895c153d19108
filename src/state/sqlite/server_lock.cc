#include "state/sqlite/server_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <map>
#include <utility>

#include "base/file_util.h"
#include "base/identity.h"

namespace driftless::state {

namespace {

// The lock file's lines "key=value" (pid, user, host, since, listen) as a map.
std::map<std::string, std::string> ParseRecord(const std::string& text) {
  std::map<std::string, std::string> out;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    size_t eq = line.find('=');
    if (eq != std::string::npos) out[line.substr(0, eq)] = line.substr(eq + 1);
    start = end + 1;
  }
  return out;
}

// "pid 4242 on host ci-7, listening on 127.0.0.1:8080, since 2026-...": what the lock file says
// of its holder, as far as it says it.
std::string DescribeHolder(const std::string& text) {
  std::map<std::string, std::string> r = ParseRecord(text);
  if (r.count("pid") == 0) return "a server that is starting (it has not recorded itself yet)";
  std::string out = "pid " + r["pid"];
  if (!r["user"].empty() || !r["host"].empty()) out += " of " + r["user"] + "@" + r["host"];
  if (!r["listen"].empty()) out += ", listening on " + r["listen"];
  if (!r["since"].empty()) out += ", since " + r["since"];
  return out;
}

}  // namespace

std::string ServerLock::LockPath(const std::string& state_path) {
  return state_path + "-serve.lock";
}

Result<std::unique_ptr<ServerLock>> ServerLock::Acquire(const std::string& state_path) {
  if (state_path.empty() || state_path == ":memory:") {
    return MakeError("driftless serve needs a state file (got \"" + state_path + "\")");
  }
  size_t slash = state_path.rfind('/');
  if (slash != std::string::npos && slash > 0) {
    Status made = MakeDirs(state_path.substr(0, slash));
    if (!made.ok()) {
      return MakeError("cannot create the folder of state database " + state_path + ": " +
                       made.error().message);
    }
  }
  const std::string path = LockPath(state_path);
  // O_CLOEXEC: a program the server runs (an exec sink, git) must not inherit the lock and keep
  // it after the server is gone.
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    return MakeError("cannot open " + path + ", the lock that keeps one server on state " +
                     state_path + ": " + ErrnoMessage());
  }
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    if (err != EWOULDBLOCK) {
      std::string message = ErrnoMessage();
      close(fd);
      return MakeError("cannot lock " + path + ", the lock that keeps one server on state " +
                       state_path + ": " + message);
    }
    close(fd);
    Result<std::string> text = ReadFileToString(path);
    return MakeError("the SQLite state " + state_path + " is already served by driftless serve (" +
                     DescribeHolder(text.ok() ? *text : "") +
                     "); a SQLite state takes one server: stop that one first, or share a "
                     "PostgreSQL state (--state postgres://...) between several servers. "
                     "Commands such as plan, apply and drift work beside it.");
  }
  Identity me = CurrentIdentity();
  std::string record = "pid=" + std::to_string(me.pid) + "\nuser=" + me.user + "\nhost=" + me.host +
                       "\nsince=" + FormatTime(NowUnix()) + "\n";
  std::unique_ptr<ServerLock> lock(new ServerLock(fd, path, std::move(record)));
  Status written = lock->Write();
  if (!written.ok()) return written.error();
  return lock;
}

ServerLock::ServerLock(int fd, std::string path, std::string record)
    : fd_(fd), path_(std::move(path)), record_(std::move(record)) {}

ServerLock::~ServerLock() {
  // Emptied first, so that the file does not name a server that is gone; closing releases the
  // lock.
  if (ftruncate(fd_, 0) != 0) {
    // Nothing to do: the content is never trusted without the lock.
  }
  close(fd_);
}

Status ServerLock::SetListen(const std::string& address) {
  listen_ = address;
  return Write();
}

Status ServerLock::Write() {
  std::string text = record_;
  if (!listen_.empty()) text += "listen=" + listen_ + "\n";
  // Rewritten in place (a rename would make a new file that is not the locked one), and cut
  // after: a reader never sees the file empty once it was written.
  if (pwrite(fd_, text.data(), text.size(), 0) != static_cast<ssize_t>(text.size()) ||
      ftruncate(fd_, static_cast<off_t>(text.size())) != 0) {
    return MakeError("cannot write " + path_ + ": " + ErrnoMessage());
  }
  return Status::Ok();
}

}  // namespace driftless::state
