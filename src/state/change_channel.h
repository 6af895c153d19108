#pragma once

// Change notifications: a store announces on a named channel that a row it wrote has committed
// (an event appended, a run queued, a fetch asked for), and any number of listeners, in this
// process or in other servers on the same state, wake up to read it. A notification is a hint,
// never the data: the listener reads the rows it announces from the store. On PostgreSQL the
// channels are LISTEN/NOTIFY channels on a connection of the listener's own, and a row's
// notification is sent in the transaction that writes the row; on SQLite (one server) they live
// in the process (ControlStore::Listen, ControlStore::Notify).

#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace driftless::state {

/// An event was appended to the event log; the payload is its id.
inline constexpr char kEventsChannel[] = "events";
/// A run was queued; the payload is its environment.
inline constexpr char kRunsChannel[] = "runs";
/// A fetch of the repository was asked for (a webhook arrived); the payload says by what
/// ("github push", or "").
inline constexpr char kFetchChannel[] = "fetch";

/// The longest payload a notification carries (PostgreSQL's limit is 8000 bytes).
inline constexpr size_t kMaxNotificationPayload = 4000;

/// One notification as received.
struct Notification {
  std::string channel;  ///< "events", "runs", "fetch", ...
  std::string payload;
};

/// What one ChangeListener::Wait saw.
struct Wakeup {
  /// In the order their transactions committed. Identical notifications of one transaction may
  /// arrive once.
  std::vector<Notification> notifications;
  /// Notifications may have been lost since the previous Wait (the listener's connection was
  /// lost and is back, or another process on the same SQLite file wrote): read again everything
  /// the channels announce. Never false after a loss: a loss is reported at least once.
  bool missed = false;
  /// ChangeListener::Interrupt was called.
  bool interrupted = false;

  /// True when the wait ended without anything to act on (the deadline passed).
  bool empty() const { return notifications.empty() && !missed && !interrupted; }
  /// True when a notification on `channel` arrived, or some may have been missed.
  bool Touches(std::string_view channel) const;
};

/// A subscription to some channels, made by ControlStore::Listen. Every notification committed
/// after Listen returned is delivered by a later Wait (or covered by a Wakeup::missed), so the
/// usual loop is: Listen, read the current rows, then Wait and read again what was announced.
/// One thread waits at a time; Interrupt may be called from any thread. Destroying it ends the
/// subscription.
class ChangeListener {
 public:
  virtual ~ChangeListener() = default;

  /// Waits up to `timeout_ms` (0: only what already arrived) for notifications, a loss, or an
  /// Interrupt; returns as soon as there is one. When the connection is lost, Wait tries to
  /// connect again (at once, then after pauses growing to 5 s, never past the deadline) and
  /// answers `missed` once it is back; while it cannot, Wait fails with the reason, and the
  /// first Wait that succeeds afterwards answers `missed`.
  [[nodiscard]] virtual Result<Wakeup> Wait(int timeout_ms) = 0;
  /// Makes the current Wait, or the next one, return at once with `interrupted`. Thread-safe.
  virtual void Interrupt() = 0;
};

/// Fails unless `channel` is 1 to 40 characters of [a-z0-9_], starting with a letter.
Status CheckChannelName(std::string_view channel);
/// Fails unless `payload` is at most kMaxNotificationPayload bytes with no NUL byte.
Status CheckNotificationPayload(std::string_view channel, std::string_view payload);

}  // namespace driftless::state
