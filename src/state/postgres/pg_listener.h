#pragma once

// The PostgreSQL side of change notifications (../change_channel.h): a connection of its own
// that LISTENs to `driftless_<channel>` for each channel, read with PQconsumeInput and
// PQnotifies while poll() waits on its socket, and opened again (with a pause that grows after
// each failure) when it is lost.

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "base/result.h"
#include "state/change_channel.h"

namespace driftless::state::pg_detail {

class Connection;

/// What pg_stat_activity shows as the application_name of a listener's connection.
inline constexpr char kListenerApplicationName[] = "driftless listener";

/// The LISTEN/NOTIFY channel of a driftless channel: "driftless_" + channel.
std::string PgChannel(const std::string& channel);

/// A ChangeListener on a dedicated connection. See ChangeListener for the contract.
class PgListener final : public ChangeListener {
 public:
  /// The first pause after a failed attempt to connect again, and the longest one.
  static constexpr std::chrono::milliseconds kFirstBackoff{100};
  static constexpr std::chrono::milliseconds kMaxBackoff{5000};

  /// Connects to `location` and LISTENs to every channel (names already checked).
  static Result<std::unique_ptr<PgListener>> Open(const std::string& location,
                                                  const std::string& shown,
                                                  const std::vector<std::string>& channels);
  ~PgListener() override;
  PgListener(const PgListener&) = delete;
  PgListener& operator=(const PgListener&) = delete;

  Result<Wakeup> Wait(int timeout_ms) override;
  void Interrupt() override;

 private:
  PgListener(std::string location, std::string shown, std::vector<std::string> channels,
             int wake_fd);
  Status Connect();
  // Drops the connection, to be opened again at once; the next success reports `missed`.
  void Lose(std::string reason);
  // Moves what libpq has received into `w`; false when the connection is lost.
  bool Drain(Wakeup& w);
  // Waits on the socket (or, without a connection, only the interrupt) until `until`; true
  // when interrupted.
  bool PollUntil(int socket, std::chrono::steady_clock::time_point until);

  std::string location_;
  std::string shown_;
  std::vector<std::string> channels_;
  int wake_fd_;  // eventfd: Interrupt writes, Wait reads
  std::unique_ptr<Connection> conn_;
  bool missed_ = false;
  std::string lost_reason_;
  std::chrono::milliseconds backoff_{0};
  std::chrono::steady_clock::time_point next_attempt_{};
};

}  // namespace driftless::state::pg_detail
