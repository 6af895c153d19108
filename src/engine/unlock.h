#pragma once

#include <cstdint>
#include <string>

#include "base/result.h"
#include "state/state_store.h"

namespace driftless::engine {

/// Who breaks a lock, for the audit log.
struct UnlockRequest {
  std::string env;
  int64_t token = 0;       ///< the lock's id, as `env show` prints it (`lock 17`)
  std::string who;         ///< a token's name, or user@host on the command line
  std::string request_id;  ///< the HTTP request's, "" outside one
};

/// Releases the environment's lock when it is the one `request.token` names: for a holder that
/// is alive but stuck, or on a host whose processes cannot be checked (a dead holder's lock is
/// taken over by the next apply without this). The holder's running apply is marked
/// interrupted (history keeps what it did) and the holder is fenced: its next write to state
/// fails. An error, and nothing released, when the environment is not locked or its lock has
/// another id (taken again since it was looked at). Every attempt is appended to the audit log
/// as `lock.break`, allowed or refused. Returns the lock released.
Result<state::Lock> ForceUnlock(state::StateStore& store, const UnlockRequest& request);

}  // namespace driftless::engine
