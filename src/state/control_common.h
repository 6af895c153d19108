#pragma once

// What both backends check before they write the controller's records (control_store.h), so
// that a caller reads the same words whichever backend holds the state.

#include <cstdint>
#include <string>

#include "base/result.h"
#include "state/control_store.h"

namespace driftless::state {

/// The default and the largest page of a list.
inline constexpr int kDefaultPage = 100;
inline constexpr int kMaxPage = 1000;
/// The default and the largest batch of EventsAfter.
inline constexpr int kDefaultEventBatch = 1000;

/// `limit` bounded to [1, max], `fallback` when it is <= 0.
int PageLimit(int limit, int fallback = kDefaultPage, int max = kMaxPage);

/// An error unless the run's environment is set and its action is plan, apply, destroy or
/// remediation.
Status CheckNewRun(const Run& run);
/// The run as EnqueueRun stores it: status queued, created at `now` unless created_at is set,
/// no start, finish, message or apply yet (id still 0).
Run QueuedRun(const Run& run, int64_t now);
/// An error naming the run unless the lifecycle allows `from` → `to`.
Status CheckRunTransition(int64_t id, const std::string& from, const std::string& to);
/// An error unless `to` is a status a queued run may start in (planning, applying).
Status CheckStartStatus(const std::string& env, const std::string& to);
/// An error unless the approval names a run, a person and a decision (approved, rejected).
Status CheckApproval(const Approval& approval);
/// An error unless the token has a name, a role (viewer, editor, admin), a glob and a hash.
Status CheckToken(const Token& token);
/// An error unless the session has a hash, a token's hash (both SHA-256), a CSRF secret and an
/// expiry after its creation.
Status CheckSession(const Session& session);
/// An error unless the entry has an action and a result (allowed, refused).
Status CheckAudit(const AuditEntry& entry);
/// "a token named NAME exists already; revoke it first or choose another --name".
std::string TokenExistsMessage(const std::string& name);

}  // namespace driftless::state
