#include "state/change_channel.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>

#include "state/local_channels.h"

namespace driftless::state {

bool Wakeup::Touches(std::string_view channel) const {
  if (missed) return true;
  return std::any_of(notifications.begin(), notifications.end(),
                     [&](const Notification& n) { return n.channel == channel; });
}

Status CheckChannelName(std::string_view channel) {
  bool ok = !channel.empty() && channel.size() <= 40 && channel[0] >= 'a' && channel[0] <= 'z';
  for (char ch : channel) {
    ok = ok && ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_');
  }
  if (ok) return Status::Ok();
  return MakeError("notification channel '" + std::string(channel.substr(0, 60)) +
                   "' is not 1 to 40 characters of [a-z0-9_] starting with a letter");
}

Status CheckNotificationPayload(std::string_view channel, std::string_view payload) {
  if (payload.size() > kMaxNotificationPayload) {
    return MakeError("a notification on channel " + std::string(channel) + " has " +
                     std::to_string(payload.size()) + " bytes; at most " +
                     std::to_string(kMaxNotificationPayload) + " are allowed");
  }
  if (payload.find('\0') != std::string_view::npos) {
    return MakeError("a notification on channel " + std::string(channel) + " holds a NUL byte");
  }
  return Status::Ok();
}

// --- in-process channels ---

namespace {

constexpr size_t kMaxQueued = 10000;

struct Queue {
  std::vector<std::string> channels;  // fixed at creation
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Notification> pending;  // mu
  bool overflowed = false;           // mu
  bool interrupted = false;          // mu

  bool Ready() const { return !pending.empty() || overflowed || interrupted; }
};

struct Registry {
  std::mutex mu;
  std::multimap<std::string, std::weak_ptr<Queue>> queues;  // mu; by key
};

Registry& Channels() {
  static Registry* registry = new Registry();  // never destroyed: listeners may outlive main
  return *registry;
}

class LocalListener final : public ChangeListener {
 public:
  LocalListener(std::string key, std::shared_ptr<Queue> queue, ChangedElsewhere elsewhere,
                int poll_ms)
      : key_(std::move(key)),
        queue_(std::move(queue)),
        elsewhere_(std::move(elsewhere)),
        poll_(std::max(poll_ms, 1)) {}

  ~LocalListener() override {
    Registry& r = Channels();
    std::lock_guard<std::mutex> lock(r.mu);
    auto [begin, end] = r.queues.equal_range(key_);
    for (auto it = begin; it != end; ++it) {
      if (it->second.lock() == queue_) {
        r.queues.erase(it);
        break;
      }
    }
  }

  Result<Wakeup> Wait(int timeout_ms) override {
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(std::max(timeout_ms, 0));
    for (;;) {
      Wakeup w;
      {
        std::lock_guard<std::mutex> lock(queue_->mu);
        Take(w);
      }
      if (elsewhere_) {
        Result<bool> changed = elsewhere_();
        if (!changed.ok()) return changed.error();
        w.missed = w.missed || *changed;
      }
      if (!w.empty()) return w;
      const auto now = std::chrono::steady_clock::now();
      if (now >= deadline) return w;
      std::unique_lock<std::mutex> lock(queue_->mu);
      const auto until = elsewhere_ ? std::min(deadline, now + poll_) : deadline;
      queue_->cv.wait_until(lock, until, [this] { return queue_->Ready(); });
    }
  }

  void Interrupt() override {
    std::lock_guard<std::mutex> lock(queue_->mu);
    queue_->interrupted = true;
    queue_->cv.notify_all();
  }

 private:
  // queue_->mu held.
  void Take(Wakeup& w) {
    w.notifications.assign(std::make_move_iterator(queue_->pending.begin()),
                           std::make_move_iterator(queue_->pending.end()));
    queue_->pending.clear();
    w.missed = queue_->overflowed;
    w.interrupted = queue_->interrupted;
    queue_->overflowed = false;
    queue_->interrupted = false;
  }

  std::string key_;
  std::shared_ptr<Queue> queue_;
  ChangedElsewhere elsewhere_;
  std::chrono::milliseconds poll_;
};

}  // namespace

void PublishLocal(const std::string& key, std::string_view channel, std::string_view payload) {
  Registry& r = Channels();
  std::lock_guard<std::mutex> lock(r.mu);
  auto [begin, end] = r.queues.equal_range(key);
  for (auto it = begin; it != end; ++it) {
    std::shared_ptr<Queue> q = it->second.lock();
    if (!q || std::find(q->channels.begin(), q->channels.end(), channel) == q->channels.end()) {
      continue;
    }
    std::lock_guard<std::mutex> qlock(q->mu);
    if (q->pending.size() >= kMaxQueued) {
      q->pending.clear();
      q->overflowed = true;
    } else if (!q->overflowed) {
      q->pending.push_back(Notification{std::string(channel), std::string(payload)});
    }
    q->cv.notify_all();
  }
}

std::unique_ptr<ChangeListener> ListenLocal(const std::string& key,
                                            std::vector<std::string> channels,
                                            ChangedElsewhere elsewhere, int poll_ms) {
  auto queue = std::make_shared<Queue>();
  queue->channels = std::move(channels);
  {
    Registry& r = Channels();
    std::lock_guard<std::mutex> lock(r.mu);
    r.queues.emplace(key, queue);
  }
  return std::make_unique<LocalListener>(key, std::move(queue), std::move(elsewhere), poll_ms);
}

}  // namespace driftless::state
