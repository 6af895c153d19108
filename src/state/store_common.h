#pragma once

// The parts of a state backend that do not depend on its database: argument checks and their
// messages, the bounds of leases and timeouts, address splitting, when a lock is stale, and the
// records built from what a caller passed in. The SQL and the calls into SQLite or libpq stay in
// each backend; these are called by both, so that a user reads the same words whichever backend
// holds the state.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "state/state_store.h"

namespace driftless::state {

/// The error of the pending changes an apply finished without attempting.
inline constexpr char kNotAttempted[] = "not attempted: the apply stopped before this change";

/// The longest lease of a lock (ten years): keeps time arithmetic far from overflow.
inline constexpr int64_t kMaxLeaseSeconds = int64_t{10} * 365 * 24 * 3600;
/// The longest wait for a lock, for the same reason.
inline constexpr double kMaxTimeoutSeconds = 1e9;

/// `lease_seconds` bounded to [1, kMaxLeaseSeconds].
int64_t ClampLease(int64_t lease_seconds);

/// Splits "kind/name" at the first slash; false when either part would be empty.
bool SplitAddress(const std::string& address, std::string* kind, std::string* name);

/// The addresses sorted, each once (views into `addresses`).
std::vector<std::string_view> SortedUnique(const std::vector<std::string>& addresses);

/// Fills an empty `kind` or `name` of a resource written at `address` from the address, when it
/// is one (KIND/NAME); leaves both alone otherwise.
void KindAndNameFromAddress(const std::string& address, std::string* kind, std::string* name);

/// True when the lock's holder is gone or its lease expired, as seen from host `host` at time
/// `now` (seconds since the epoch).
bool IsStale(const Lock& lock, const std::string& host, int64_t now);

/// The checks of AcquireLock's arguments: an error for an empty environment name; otherwise
/// bounds *timeout_seconds to [0, kMaxTimeoutSeconds] (NaN and negatives to 0) and
/// *lease_seconds with ClampLease.
Status CheckLockRequest(const std::string& env, double* timeout_seconds, int64_t* lease_seconds);

/// The check of BeginApply: an error when `apply` names another environment than the lock's.
Status CheckApplyEnvironment(const Lock& lock, const ApplyRecord& apply);

/// The check of RecordResults: an error naming the first result whose status is not done,
/// failed or skipped.
Status CheckResultStatuses(int64_t apply_id, const std::vector<ChangeResult>& results);

/// The check of FinishApply: an error unless `status` is succeeded, failed or interrupted.
Status CheckFinishStatus(const std::string& env, int64_t apply_id, const std::string& status);

/// The verdict on apply `apply_id` as read from state (its environment and status) for a writer
/// of environment `env`: an error when it belongs to another environment or has finished.
Status CheckApplyState(int64_t apply_id, const std::string& env, std::string_view apply_env,
                       std::string_view status);

/// The checks of MoveResource (`what` describes the move): an error when `to` is not a resource
/// address or is `from`; otherwise *kind and *name are those of `to`.
Status CheckMove(const std::string& what, const std::string& from, const std::string& to,
                 std::string* kind, std::string* name);

/// The record of drift opened at `now` by observation `o`, with the id the store gave it.
DriftRecord OpenedDrift(int64_t id, const std::string& env, const DriftObservation& o, int64_t now);

/// "list applies", or "list the applies of environment ENV".
std::string ListAppliesWhat(const std::string& env);
/// "list pending changes", or "list the pending changes of environment ENV".
std::string PendingChangesWhat(const std::string& env);
/// "list the drift of environment ENV", "(all)" for no environment.
std::string ListDriftWhat(const std::string& env);

}  // namespace driftless::state
