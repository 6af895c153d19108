// inotify watches for the file provider: one watch per folder that holds a managed object (and
// one on every managed folder), so that edits, deletes, renames, mode and owner changes of the
// objects inside are seen without a watch per file. 100,000 files in 1,000 folders are 1,000
// watches.

#include "providers/file/watcher.h"

#include <poll.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <unordered_map>

#include "base/file_util.h"

namespace driftless::providers::file {

namespace {

constexpr uint32_t kMask = IN_ATTRIB | IN_CLOSE_WRITE | IN_MODIFY | IN_CREATE | IN_DELETE |
                           IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF |
                           IN_DONT_FOLLOW | IN_ONLYDIR;

class InotifyWatcher final : public provider::Watcher {
 public:
  explicit InotifyWatcher(int fd) : fd_(fd) {}
  ~InotifyWatcher() override { close(fd_); }

  // Watches `dir`; events naming `name` ("" for any event in it) flag `address`.
  Status Add(const std::string& dir, const std::string& name, const std::string& address) {
    int wd = inotify_add_watch(fd_, dir.c_str(), kMask);
    if (wd < 0) {
      if (errno == ENOENT || errno == ENOTDIR) return Status::Ok();  // gone: the scan sees it
      if (errno == ENOSPC) {
        return MakeError("cannot watch " + dir +
                         ": the inotify watch limit is reached (raise "
                         "fs.inotify.max_user_watches)");
      }
      return MakeError("cannot watch " + dir + ": " + ErrnoMessage());
    }
    Dir& d = dirs_[wd];
    d.path = dir;
    if (name.empty()) {
      d.any.push_back(address);
    } else {
      d.by_name[name].push_back(address);
    }
    return Status::Ok();
  }

  Status Wait(int timeout_ms, std::vector<provider::WatchHint>* changed, bool* lost) override {
    pollfd p{fd_, POLLIN, 0};
    int n = poll(&p, 1, timeout_ms);
    if (n < 0) {
      if (errno == EINTR) return Status::Ok();
      return MakeError("waiting for file events: " + ErrnoMessage());
    }
    if (n == 0) return Status::Ok();
    alignas(inotify_event) char buf[64 * 1024];
    while (true) {
      ssize_t len = read(fd_, buf, sizeof buf);
      if (len < 0) {
        if (errno == EAGAIN || errno == EINTR) break;
        return MakeError("reading file events: " + ErrnoMessage());
      }
      if (len == 0) break;
      for (char* at = buf; at < buf + len;) {
        const auto* e = reinterpret_cast<const inotify_event*>(at);
        at += sizeof(inotify_event) + e->len;
        if (e->mask & IN_Q_OVERFLOW) {
          *lost = true;
          continue;
        }
        auto it = dirs_.find(e->wd);
        if (it == dirs_.end()) continue;
        Dir& d = it->second;
        Add(d.any, changed);
        if (e->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED)) {
          // The folder itself went away: everything in it changed, and its watch is gone.
          for (const auto& [name, addresses] : d.by_name) Add(addresses, changed);
          *lost = true;
          if (e->mask & IN_IGNORED) dirs_.erase(it);
          continue;
        }
        if (e->len > 0) {
          auto named = d.by_name.find(e->name);
          if (named != d.by_name.end()) Add(named->second, changed);
        }
      }
    }
    return Status::Ok();
  }

  size_t WatchCount() const override { return dirs_.size(); }

 private:
  // Files cannot tell who changed them: the hints carry no actor.
  static void Add(const std::vector<std::string>& addresses,
                  std::vector<provider::WatchHint>* changed) {
    for (const auto& a : addresses) changed->push_back({a, ""});
  }

  struct Dir {
    std::string path;
    std::map<std::string, std::vector<std::string>> by_name;
    std::vector<std::string> any;
  };
  int fd_;
  std::unordered_map<int, Dir> dirs_;
};

}  // namespace

Result<std::unique_ptr<provider::Watcher>> WatchFiles(const std::string& root,
                                                      const std::vector<WatchedPath>& paths) {
  int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) return MakeError("cannot start watching files: " + ErrnoMessage());
  auto w = std::make_unique<InotifyWatcher>(fd);
  for (const WatchedPath& p : paths) {
    std::string full = root + "/" + p.path;
    size_t slash = full.rfind('/');
    Status s = w->Add(full.substr(0, slash), full.substr(slash + 1), p.address);
    if (s.ok() && p.is_directory) s = w->Add(full, "", p.address);
    if (!s.ok()) return s.error();
  }
  return std::unique_ptr<provider::Watcher>(std::move(w));
}

}  // namespace driftless::providers::file
