#include "state/store_common.h"

#include <algorithm>

#include "base/identity.h"

namespace driftless::state {

int64_t ClampLease(int64_t lease_seconds) {
  return std::clamp<int64_t>(lease_seconds, 1, kMaxLeaseSeconds);
}

bool SplitAddress(const std::string& address, std::string* kind, std::string* name) {
  size_t slash = address.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 == address.size()) return false;
  *kind = address.substr(0, slash);
  *name = address.substr(slash + 1);
  return true;
}

std::vector<std::string_view> SortedUnique(const std::vector<std::string>& addresses) {
  std::vector<std::string_view> sorted(addresses.begin(), addresses.end());
  std::sort(sorted.begin(), sorted.end());
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
  return sorted;
}

void KindAndNameFromAddress(const std::string& address, std::string* kind, std::string* name) {
  if (!kind->empty() && !name->empty()) return;
  std::string k, n;
  if (!SplitAddress(address, &k, &n)) return;
  if (kind->empty()) *kind = std::move(k);
  if (name->empty()) *name = std::move(n);
}

bool IsStale(const Lock& lock, const std::string& host, int64_t now) {
  if (lock.expires_at < now) return true;
  return lock.holder.host == host && !ProcessAlive(lock.holder.pid);
}

Status CheckLockRequest(const std::string& env, double* timeout_seconds, int64_t* lease_seconds) {
  if (env.empty()) return MakeError("cannot lock an environment with an empty name");
  if (!(*timeout_seconds > 0)) *timeout_seconds = 0;  // also catches NaN
  *timeout_seconds = std::min(*timeout_seconds, kMaxTimeoutSeconds);
  *lease_seconds = ClampLease(*lease_seconds);
  return Status::Ok();
}

Status CheckApplyEnvironment(const Lock& lock, const ApplyRecord& apply) {
  if (!apply.environment.empty() && apply.environment != lock.environment) {
    return MakeError("cannot record an apply of environment " + apply.environment +
                     " under the lock of environment " + lock.environment);
  }
  return Status::Ok();
}

Status CheckResultStatuses(int64_t apply_id, const std::vector<ChangeResult>& results) {
  for (const ChangeResult& r : results) {
    if (r.status != "done" && r.status != "failed" && r.status != "skipped") {
      return MakeError("cannot record the result of " + r.address + " in apply " +
                       std::to_string(apply_id) + ": unknown status \"" + r.status +
                       "\" (expected done, failed or skipped)");
    }
  }
  return Status::Ok();
}

Status CheckFinishStatus(const std::string& env, int64_t apply_id, const std::string& status) {
  if (status != "succeeded" && status != "failed" && status != "interrupted") {
    return MakeError("cannot finish apply " + std::to_string(apply_id) + " of environment " + env +
                     ": unknown status \"" + status +
                     "\" (expected succeeded, failed or interrupted)");
  }
  return Status::Ok();
}

Status CheckApplyState(int64_t apply_id, const std::string& env, std::string_view apply_env,
                       std::string_view status) {
  const std::string name = "apply " + std::to_string(apply_id);
  if (apply_env != env) {
    return MakeError(name + " belongs to environment " + std::string(apply_env) + ", not " + env);
  }
  if (status != "running") {
    return MakeError(name + " of environment " + env + " is already finished (" +
                     std::string(status) + ")");
  }
  return Status::Ok();
}

Status CheckMove(const std::string& what, const std::string& from, const std::string& to,
                 std::string* kind, std::string* name) {
  if (!SplitAddress(to, kind, name)) {
    return MakeError("cannot " + what + ": \"" + to + "\" is not a resource address (KIND/NAME)");
  }
  if (from == to) return MakeError("cannot " + what + ": the addresses are the same");
  return Status::Ok();
}

DriftRecord OpenedDrift(int64_t id, const std::string& env, const DriftObservation& o,
                        int64_t now) {
  DriftRecord d;
  d.id = id;
  d.environment = env;
  d.address = o.address;
  d.onset = d.last_seen = now;
  d.actor = o.actor;
  d.diff = o.diff;
  return d;
}

std::string ListAppliesWhat(const std::string& env) {
  return env.empty() ? std::string("list applies") : "list the applies of environment " + env;
}

std::string PendingChangesWhat(const std::string& env) {
  return env.empty() ? std::string("list pending changes")
                     : "list the pending changes of environment " + env;
}

std::string ListDriftWhat(const std::string& env) {
  return "list the drift of environment " + (env.empty() ? "(all)" : env);
}

}  // namespace driftless::state
