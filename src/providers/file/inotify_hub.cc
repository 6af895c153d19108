// The process's one inotify instance: a reading thread routes events by descriptor to the
// queues of the watchers that subscribed to it (see inotify_hub.h).

#include "providers/file/inotify_hub.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>

#include "base/file_util.h"

namespace driftless::providers::file {

namespace {

// One mask for every watch of the hub: a second inotify_add_watch of a folder replaces the
// mask of the first, so all subscribers must ask for the same events.
constexpr uint32_t kMask = IN_ATTRIB | IN_CLOSE_WRITE | IN_MODIFY | IN_CREATE | IN_DELETE |
                           IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF |
                           IN_DONT_FOLLOW | IN_ONLYDIR;

}  // namespace

bool InotifyHub::Queue::Take(int timeout_ms, std::vector<Event>* events) {
  std::unique_lock<std::mutex> lock(mu_);
  auto ready = [this] { return !events_.empty() || lost_ || interrupted_; };
  if (timeout_ms < 0) {
    cv_.wait(lock, ready);
  } else if (timeout_ms > 0) {
    cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms), ready);
  }
  if (events->empty()) {
    events->swap(events_);
  } else {
    events->insert(events->end(), std::make_move_iterator(events_.begin()),
                   std::make_move_iterator(events_.end()));
    events_.clear();
  }
  // A burst's buffer is not kept for the next one (333 idle watchers, one big burst each).
  if (events_.capacity() > 64) std::vector<Event>().swap(events_);
  const bool lost = lost_;
  lost_ = false;
  interrupted_ = false;
  return lost;
}

void InotifyHub::Queue::Interrupt() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    interrupted_ = true;
  }
  cv_.notify_all();
}

Result<std::shared_ptr<InotifyHub>> InotifyHub::Shared() {
  // Never destroyed: a watcher ended during the process's exit still finds them.
  static auto* mu = new std::mutex;
  static auto* shared = new std::weak_ptr<InotifyHub>;
  std::lock_guard<std::mutex> lock(*mu);
  if (std::shared_ptr<InotifyHub> hub = shared->lock()) return hub;
  int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) {
    if (errno == EMFILE) {
      return MakeError(
          "cannot start watching files: the inotify instance limit is reached (raise "
          "fs.inotify.max_user_instances)");
    }
    return MakeError("cannot start watching files: " + ErrnoMessage());
  }
  int wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake < 0) {
    std::string message = ErrnoMessage();
    close(fd);
    return MakeError("cannot start watching files: " + message);
  }
  std::shared_ptr<InotifyHub> hub(new InotifyHub(fd, wake));
  *shared = hub;
  return hub;
}

InotifyHub::InotifyHub(int fd, int wake_fd)
    : fd_(fd), wake_fd_(wake_fd), reader_([this] { Read(); }) {}

InotifyHub::~InotifyHub() {
  uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof one);
  reader_.join();
  close(wake_fd_);
  close(fd_);
}

Result<int> InotifyHub::Add(Queue* queue, const std::string& dir) {
  std::lock_guard<std::mutex> lock(mu_);
  int wd = inotify_add_watch(fd_, dir.c_str(), kMask);
  if (wd < 0) {
    if (errno == ENOENT || errno == ENOTDIR) return -1;  // gone: the scan sees it
    if (errno == ENOSPC) {
      return MakeError("cannot watch " + dir +
                       ": the inotify watch limit is reached (raise fs.inotify.max_user_watches)");
    }
    return MakeError("cannot watch " + dir + ": " + ErrnoMessage());
  }
  subscribers_[wd].push_back(queue);
  return wd;
}

void InotifyHub::Remove(Queue* queue, int wd) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = subscribers_.find(wd);
  if (it == subscribers_.end()) return;  // dropped by the kernel (IN_IGNORED) already
  std::vector<Queue*>& queues = it->second;
  auto mine = std::find(queues.begin(), queues.end(), queue);
  if (mine == queues.end()) return;
  queues.erase(mine);
  if (!queues.empty()) return;
  subscribers_.erase(it);
  // Its IN_IGNORED finds no subscriber. The kernel hands out descriptors cyclically, so a new
  // watch does not get this one while its IN_IGNORED may still be queued.
  inotify_rm_watch(fd_, wd);
}

void InotifyHub::Unsubscribe(Queue* queue) {
  std::vector<int> held;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [wd, queues] : subscribers_) {
      for (Queue* q : queues) {
        if (q == queue) held.push_back(wd);
      }
    }
  }
  for (int wd : held) Remove(queue, wd);
}

size_t InotifyHub::WatchCount() {
  std::lock_guard<std::mutex> lock(mu_);
  return subscribers_.size();
}

void InotifyHub::Read() {
  alignas(inotify_event) char buf[64 * 1024];
  while (true) {
    pollfd p[2] = {{fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    int n = poll(p, 2, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // cannot happen with valid descriptors; the watchers' scans still run
    }
    if (p[1].revents != 0) return;
    while (true) {
      ssize_t len = read(fd_, buf, sizeof buf);
      if (len <= 0) break;  // EAGAIN: all read
      Route(buf, static_cast<size_t>(len));
    }
  }
}

void InotifyHub::Route(const char* buf, size_t len) {
  std::vector<Queue*> woken;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const char* at = buf; at < buf + len;) {
      const auto* e = reinterpret_cast<const inotify_event*>(at);
      at += sizeof(inotify_event) + e->len;
      if (e->mask & IN_Q_OVERFLOW) {
        // The kernel's queue overflowed: every subscriber may have missed something.
        for (const auto& [wd, queues] : subscribers_) {
          for (Queue* q : queues) {
            std::lock_guard<std::mutex> l(q->mu_);
            q->lost_ = true;
            woken.push_back(q);
          }
        }
        continue;
      }
      auto it = subscribers_.find(e->wd);
      if (it == subscribers_.end()) continue;
      const std::vector<Queue*>& queues = it->second;
      for (size_t i = 0; i < queues.size(); ++i) {
        Queue* q = queues[i];
        // A queue subscribed twice to one descriptor (two paths of one folder) gets it once.
        if (std::find(queues.begin(), queues.begin() + static_cast<ptrdiff_t>(i), q) !=
            queues.begin() + static_cast<ptrdiff_t>(i))
          continue;
        std::lock_guard<std::mutex> l(q->mu_);
        if (q->events_.size() >= kQueueLimit) {
          q->lost_ = true;
        } else {
          q->events_.push_back({e->wd, e->mask, e->len > 0 ? std::string(e->name) : ""});
        }
        woken.push_back(q);
      }
      // The folder's watch is gone (deleted, or its file system unmounted): the subscribers
      // get IN_IGNORED above and forget the descriptor.
      if (e->mask & IN_IGNORED) subscribers_.erase(it);
    }
    std::sort(woken.begin(), woken.end());
    woken.erase(std::unique(woken.begin(), woken.end()), woken.end());
    // Woken under the hub's lock: an Unsubscribe (then the queue's end) cannot come between.
    for (Queue* q : woken) q->cv_.notify_all();
  }
}

}  // namespace driftless::providers::file
