#pragma once

// GET /api/v1/events: the state's event log as server-sent events (Accept: text/event-stream)
// or as JSON pages. One EventHub per server holds every open stream: a single dispatcher thread
// listens to the state's "events" channel (ControlStore::Listen: PostgreSQL LISTEN/NOTIFY, so an
// event appended by another server on the same database wakes it at once), reads the log only
// when an event is announced or one may have been missed, and fans each new event out to every
// stream that wants it, so a thousand idle streams cost a thousand buffers, not a thousand threads.
// A stream that does not read is closed by the HTTP layer's buffer cap.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/result.h"
#include "server/api/api.h"
#include "server/http/router.h"
#include "server/http/server.h"
#include "server/metrics/metrics.h"
#include "state/control_store.h"

namespace driftless::server::api {

/// Which events a reader gets: the environments its token may read, and its filters.
struct EventSelection {
  std::string token_envs = "**";          ///< the token's environment glob
  std::vector<std::string> environments;  ///< `?environment=` globs (empty: all)
  std::vector<std::string> types;         ///< `?type=` globs, "drift.*" (empty: all)
  /// The hash of the token the stream was opened with: the hub closes the stream once that
  /// token is revoked or expired. "" is never checked.
  std::string token_hash;

  /// True when `event` is for this reader. An event about no environment is shown only to
  /// tokens for every environment ("**").
  bool Matches(const state::EventRecord& event) const;
};

/// How the hub serves streams.
struct EventHubOptions {
  /// A comment line on a stream after this long without an event (at most 15 s).
  std::chrono::milliseconds heartbeat{15000};
  /// How long one wait of the dispatcher for an announced event lasts (also how soon it notices
  /// a new stream to replay to and closed streams; a stop interrupts the wait).
  int wait_ms = 250;
  /// A replay (a client catching up from its Last-Event-ID) writes more only while less than
  /// this is unsent on its stream; keep it well below the server's max_stream_buffer.
  size_t replay_unsent = 256 * 1024;
  /// Events older than this are pruned from the log (at the start, then hourly); 0: never.
  int64_t retention_seconds = 0;
  /// How often the tokens of open streams are checked again: a stream whose token was revoked
  /// (through the API or `driftless token revoke`) or expired is closed within this.
  std::chrono::milliseconds token_check{5000};
};

/// Every open event stream of a server, and the thread that feeds them. Thread-safe.
class EventHub {
 public:
  /// `stores` (and `metrics` when set) outlive the hub. With `metrics`, counts
  /// driftless_event_streams and driftless_event_deliveries_total.
  EventHub(StorePool* stores, metrics::Registry* metrics, EventHubOptions options = {});
  ~EventHub();
  EventHub(const EventHub&) = delete;
  EventHub& operator=(const EventHub&) = delete;

  /// Reads the newest event id and starts the dispatcher; an error when the state fails.
  Status Start();
  /// Stops the dispatcher and closes every stream. Idempotent.
  void Stop();

  /// Feeds `stream` every event after `after_id` that `selection` matches, in id order, with
  /// no gap and no duplicate: first the ones already in the log (a replay, paced by what the
  /// client reads: see EventStream::unsent), then each new one as it comes. Returns at once:
  /// the dispatcher does both. An error when the hub is stopped (the stream is then left to
  /// the caller).
  Status Subscribe(std::shared_ptr<http::EventStream> stream, EventSelection selection,
                   int64_t after_id);

  /// Streams subscribed and not yet seen closed.
  size_t streams() const;
  const EventHubOptions& options() const { return options_; }

 private:
  // The dispatcher thread alone changes a subscriber once it is in subscribers_.
  struct Subscriber {
    std::shared_ptr<http::EventStream> stream;
    EventSelection selection;
    int64_t cursor = 0;      // the id of the last event considered for it
    bool replaying = false;  // cursor is behind position_: fed by Replay, not the fan-out
  };

  void Run();
  // Sends `event` to `sub` if it wants it; advances its cursor.
  void Deliver(Subscriber& sub, const state::EventRecord& event);
  // Feeds a replaying `sub` from the log, up to `target`, while its client keeps up; true once
  // it has reached `target` (it then joins the fan-out).
  bool Replay(state::ControlStore& store, Subscriber& sub, int64_t target);
  // Removes closed subscribers (mu_ held).
  void DropClosed();
  // Closes the streams whose token is no longer live, every options_.token_check.
  void CheckTokens(state::ControlStore& store);
  void MaybePrune(state::ControlStore& store);

  StorePool* stores_;
  EventHubOptions options_;
  metrics::Gauge* streams_gauge_ = nullptr;
  metrics::Counter* deliveries_ = nullptr;

  mutable std::mutex mu_;
  std::vector<std::shared_ptr<Subscriber>> subscribers_;  // mu_
  int64_t position_ = 0;  // mu_: every event up to here was fanned out to subscribers_
  bool stopped_ = false;  // mu_
  bool started_ = false;  // mu_
  std::atomic<bool> stop_{false};
  // Set by Start before the dispatcher starts; Interrupt (Stop) is thread-safe.
  std::unique_ptr<state::ChangeListener> listener_;
  std::chrono::steady_clock::time_point next_prune_{};
  std::chrono::steady_clock::time_point next_token_check_{};
  std::thread thread_;
};

/// The `?type=` or `?environment=` value split on commas (empty parts dropped); an error naming
/// the parameter when a part is not a valid glob.
Result<std::vector<std::string>> ParseEventFilterList(std::string_view parameter,
                                                      std::string_view text);

/// Registers GET /api/v1/events (right "read"). Streams need context.events; without it the
/// route answers JSON pages only (a stream request gets 503).
Status AddEventRoutes(http::Router& router, const ApiContext& context);

}  // namespace driftless::server::api
