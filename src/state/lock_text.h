#pragma once

// The texts every state backend uses about locks, so that a user reads the same words whichever
// backend holds the state, and the shared contract tests can check them.

#include <string>

#include "base/identity.h"
#include "base/strings.h"
#include "state/state_store.h"

namespace driftless::state {

/// "USER@HOST (pid N) for OP since TIME".
inline std::string DescribeHolder(const Lock& lock) {
  return lock.holder.UserAtHost() + " (pid " + std::to_string(lock.holder.pid) + ") for " +
         lock.operation + " since " + FormatTime(lock.acquired_at);
}

/// The fencing error of a writer whose lock is no longer current: "lost the lock of environment
/// X: taken over by USER@HOST (pid N) for OP since T (token N)", or, when nobody holds it now,
/// "lost the lock of environment X: it was released or taken over since (token N was ours)".
inline std::string LostLockMessage(const Lock& ours, const Lock* current) {
  std::string message = "lost the lock of environment " + ours.environment + ": ";
  if (current != nullptr) {
    message += "taken over by " + DescribeHolder(*current) + " (token " +
               std::to_string(current->token) + ")";
  } else {
    message +=
        "it was released or taken over since (token " + std::to_string(ours.token) + " was ours)";
  }
  return message;
}

/// The refusal of AcquireLock: "environment X is locked by USER@HOST (pid N) for OP since T
/// (use --lock-timeout to wait)", or with "(waited 5.0s; ...)" when it waited.
inline std::string LockedMessage(const Lock& holder, double waited_seconds, bool did_wait) {
  std::string message =
      "environment " + holder.environment + " is locked by " + DescribeHolder(holder);
  if (did_wait) {
    message +=
        " (waited " + HumanSeconds(waited_seconds) + "; use a longer --lock-timeout to wait more)";
  } else {
    message += " (use --lock-timeout to wait)";
  }
  return message;
}

}  // namespace driftless::state
