#include "state/postgres/pg_listener.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <random>
#include <utility>

#include "state/postgres/pg_conn.h"

namespace driftless::state::pg_detail {

namespace {

constexpr std::string_view kPrefix = "driftless_";

// A channel name is checked ([a-z0-9_]), so it is a valid identifier as is.
std::string ListenSql(const std::vector<std::string>& channels) {
  std::string sql;
  for (const std::string& c : channels) sql += "LISTEN " + PgChannel(c) + ";";
  return sql;
}

std::chrono::milliseconds Jitter(std::chrono::milliseconds d) {
  thread_local std::minstd_rand rng(std::random_device{}());
  std::uniform_int_distribution<int64_t> pick(d.count() * 3 / 4, d.count() * 5 / 4);
  return std::chrono::milliseconds(pick(rng));
}

}  // namespace

std::string PgChannel(const std::string& channel) { return std::string(kPrefix) + channel; }

PgListener::PgListener(std::string location, std::string shown, std::vector<std::string> channels,
                       int wake_fd)
    : location_(std::move(location)),
      shown_(std::move(shown)),
      channels_(std::move(channels)),
      wake_fd_(wake_fd) {}

PgListener::~PgListener() { close(wake_fd_); }

Result<std::unique_ptr<PgListener>> PgListener::Open(const std::string& location,
                                                     const std::string& shown,
                                                     const std::vector<std::string>& channels) {
  int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0) return MakeError("cannot listen for changes in state " + shown + ": no eventfd");
  std::unique_ptr<PgListener> l(new PgListener(location, shown, channels, fd));
  if (Status s = l->Connect(); !s.ok()) return s.error();
  return l;
}

Status PgListener::Connect() {
  Result<std::unique_ptr<Connection>> c =
      Connection::Open(location_, shown_, kListenerApplicationName, /*keepalive=*/true);
  if (!c.ok()) return c.error();
  if (Status s = (*c)->Listen(ListenSql(channels_), "listen for changes"); !s.ok()) return s;
  conn_ = std::move(*c);
  return Status::Ok();
}

void PgListener::Lose(std::string reason) {
  conn_.reset();
  missed_ = true;
  lost_reason_ = std::move(reason);
  next_attempt_ = std::chrono::steady_clock::now();  // the first attempt at once
}

bool PgListener::Drain(Wakeup& w) {
  PGconn* pg = conn_->handle();
  if (PQconsumeInput(pg) == 0 || PQstatus(pg) != CONNECTION_OK) {
    Lose(OneLineMessage(PQerrorMessage(pg)));
    return false;
  }
  while (PGnotify* n = PQnotifies(pg)) {
    std::string_view name = n->relname;
    if (name.substr(0, kPrefix.size()) == kPrefix) {
      w.notifications.push_back(
          Notification{std::string(name.substr(kPrefix.size())), n->extra ? n->extra : ""});
    }
    PQfreemem(n);
  }
  return true;
}

bool PgListener::PollUntil(int socket, std::chrono::steady_clock::time_point until) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      until - std::chrono::steady_clock::now());
  pollfd fds[2] = {{wake_fd_, POLLIN, 0}, {socket, POLLIN, 0}};
  int ready = poll(fds, socket >= 0 ? 2 : 1, static_cast<int>(std::max<int64_t>(left.count(), 0)));
  if (ready > 0 && (fds[0].revents & POLLIN) != 0) {
    eventfd_t value = 0;
    (void)eventfd_read(wake_fd_, &value);
    return true;
  }
  return false;
}

void PgListener::Interrupt() { (void)eventfd_write(wake_fd_, 1); }

Result<Wakeup> PgListener::Wait(int timeout_ms) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + std::chrono::milliseconds(std::max(timeout_ms, 0));
  Wakeup w;
  for (;;) {
    if (conn_ == nullptr) {
      if (Clock::now() < next_attempt_) {
        // Pausing after a failed attempt: only an interrupt ends the pause early.
        if (PollUntil(-1, std::min(next_attempt_, deadline))) {
          w.interrupted = true;
          return w;
        }
        if (Clock::now() < next_attempt_) {
          return MakeError("lost the notification connection to state " + shown_ + " (" +
                           lost_reason_ + "); connecting again");
        }
      }
      if (Status s = Connect(); !s.ok()) {
        backoff_ = std::clamp(backoff_ * 2, kFirstBackoff, kMaxBackoff);
        next_attempt_ = Clock::now() + Jitter(backoff_);
        lost_reason_ = s.error().message;
        return MakeError("lost the notification connection to state " + shown_ + ": " +
                         s.error().message + "; connecting again within " +
                         std::to_string((backoff_.count() * 5 / 4 + 999) / 1000) + "s");
      }
      backoff_ = std::chrono::milliseconds(0);
    }
    if (!Drain(w)) continue;  // lost: connect again at once
    if (missed_) {
      w.missed = true;
      missed_ = false;
    }
    if (!w.empty() || Clock::now() >= deadline) return w;
    if (PollUntil(PQsocket(conn_->handle()), deadline)) w.interrupted = true;
  }
}

}  // namespace driftless::state::pg_detail
