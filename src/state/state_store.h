#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/identity.h"
#include "base/result.h"
#include "state/control_store.h"
#include "state/row_hash.h"

namespace driftless::state {

/// One environment's row.
struct Environment {
  std::string name;
  int64_t serial = 0;      ///< bumped by every write to the environment's resources
  std::string salt;        ///< random, per environment: salts the hashes of secrets
  int64_t created_at = 0;  ///< unix seconds
};

/// What was last applied for one resource. Attributes are stored as canonical JSON (secrets
/// already replaced by salted hashes) and parsed only when someone needs them.
struct ResourceState {
  std::string address;                  ///< "file.file/motd" (kind/name)
  std::string kind;                     ///< "file.file"
  std::string name;                     ///< "motd"
  std::string target;                   ///< the target's name in driftless.yaml
  std::string attrs_json;               ///< applied attributes (normalised spec + computed fields)
  std::string spec_hash;                ///< hash of the declared spec it was applied from
  std::string live_digest;              ///< hash of the live attributes right after apply
  std::vector<std::string> depends_on;  ///< addresses, for reverse-order deletion
  std::string commit;                   ///< revision the declarations came from ("" for a folder)
  int64_t serial = 0;                   ///< environment serial of the write
  int64_t updated_at = 0;               ///< unix seconds
};

/// The part of a resource's row that tells whether it changed: a plan compares these two hashes
/// for every resource and reads whole rows only for the few that differ.
struct ResourceDigest {
  std::string address;  ///< "file.file/motd"
  /// As in ResourceState, held as 16 bytes (RowHash): a plan holds one row per resource.
  RowHash spec_hash;
  RowHash live_digest;  ///< as in ResourceState, the same way
  /// The provider's stamp of the live object (provider::Target::ReadIfChanged) when it was last
  /// read and found to have `live_digest`; "" when none is known. Reset by every write of the
  /// row.
  std::string live_stamp;
};

/// A live object that a plan read in full and found to have the digest in state, with the stamp
/// it has now (RecordLiveStamps).
struct LiveStamp {
  std::string address;
  RowHash live_digest;  ///< what the object's live attributes hash to, as read
  std::string stamp;
};

/// A held lock (a lease): the token fences writers whose lease was lost.
struct Lock {
  std::string environment;
  int64_t token = 0;  ///< strictly increasing per environment
  Identity holder;
  std::string operation;    ///< "apply", "destroy", "state rm", ...
  int64_t acquired_at = 0;  ///< unix seconds
  int64_t expires_at = 0;   ///< unix seconds; renewed by RenewLock
};

/// One planned change inside an apply, and what became of it.
struct ChangeRecord {
  std::string address;
  std::string action;  ///< "create", "update", "replace", "delete", "heal", "import"
  std::string status;  ///< "pending", "done", "failed", "skipped"
  std::string error;   ///< when failed or skipped: why
  std::string diff;    ///< the redacted line diff shown in the plan
};

/// One apply (or destroy, or remediation) in the history.
struct ApplyRecord {
  int64_t id = 0;
  std::string environment;
  std::string kind = "apply";  ///< "apply", "destroy", "remediation", "import", "state rm"
  std::string user;            ///< OS user (or DRIFTLESS_ACTOR)
  std::string host;
  int64_t pid = 0;
  std::string commit;  ///< revision applied ("" for a folder)
  std::string commit_subject;
  std::string commit_author;
  std::string decl_hash;  ///< hash of the declarations applied
  int64_t started_at = 0;
  int64_t finished_at = 0;            ///< 0 while running
  std::string status;                 ///< "running", "succeeded", "failed", "interrupted"
  std::string summary;                ///< "3 created, 1 updated, 0 deleted, 1 failed"
  std::string plan_json;              ///< plan::PlanRecordText of what was applied
  std::vector<ChangeRecord> changes;  ///< filled by GetApply only
};

/// The outcome of one change, written as soon as the change is done.
struct ChangeResult {
  std::string address;
  std::string status;  ///< "done", "failed", "skipped"
  std::string error;
  /// done create/update/replace/heal/import: the new state of the resource; done delete:
  /// std::nullopt (the resource is removed from state). failed: the most recent known state
  /// when the provider could tell (else the resource keeps its prior state).
  std::optional<ResourceState> new_state;
  bool remove = false;  ///< true for a done delete: remove the resource from state
};

/// One drift of one resource: from the first check that saw live differ from applied to the
/// check or apply that saw it gone.
struct DriftRecord {
  int64_t id = 0;
  std::string environment;
  std::string address;
  int64_t onset = 0;        ///< unix seconds
  int64_t last_seen = 0;    ///< unix seconds
  int64_t resolved_at = 0;  ///< 0 while open
  /// "apply" (an apply reverted it), "enforcement" (reverted at once by policy), "undone" (live
  /// went back to applied by itself), "declaration" (the declaration caught up with live),
  /// "forgotten" (the resource left state); "" while open.
  std::string resolution;
  std::string actor;         ///< who changed it, when the target can tell ("" for files)
  std::string diff;          ///< applied -> live, redacted, as last seen
  int64_t remediations = 0;  ///< how often enforcement reverted it while open
};

/// What one check saw of one drifted resource.
struct DriftObservation {
  std::string address;
  std::string diff;
  std::string actor;
};

/// One delivery of one event to one notification sink (the outbox). Holds the event as JSON and
/// the sink's name, never the sink's resolved URL or secret.
struct OutboxEntry {
  int64_t id = 0;
  std::string sink;         ///< the sink's `name` in driftless.yaml
  std::string environment;  ///< the event's environment
  std::string event_type;   ///< "apply.succeeded", ...
  std::string event_id;     ///< the event's id (the same for every sink it goes to)
  std::string subject;      ///< what the event is about, for reminders ("drift:ENV:ADDRESS"), or ""
  std::string event_json;   ///< the event, redacted, as sent
  int64_t attempts = 0;     ///< failed attempts so far
  int64_t created_at = 0;   ///< unix seconds
  int64_t next_attempt_at = 0;  ///< unix seconds; due when <= now
  int64_t delivered_at = 0;     ///< 0 while undelivered
  std::string last_error;       ///< why the last attempt failed ("" when none failed)
};

/// Delivery counts of one sink, for `notify status`.
struct SinkStatus {
  std::string sink;
  int64_t delivered = 0;          ///< delivered and not pruned yet (PruneOutbox)
  int64_t pending = 0;            ///< undelivered, never attempted or not failed yet
  int64_t failing = 0;            ///< undelivered after at least one failed attempt
  std::string last_error;         ///< of the most recent failed attempt still undelivered
  int64_t next_attempt_at = 0;    ///< earliest next attempt of an undelivered entry; 0: none
  int64_t last_delivered_at = 0;  ///< 0: never
};

/// What AcquireLock calls when it finds the lock held by a live holder and is about to wait for
/// it: `holder` as read, `timeout_seconds` as given to AcquireLock.
using LockWaitObserver = std::function<void(const Lock& holder, double timeout_seconds)>;

/// Durable, versioned state. Implementations must be safe for use by many processes at once
/// (SQLite in WAL mode; PostgreSQL). One StateStore object is used by one thread at a time
/// unless documented otherwise. The controller's records (runs, tokens, audit, events) are the
/// ControlStore part (control_store.h).
class StateStore : public ControlStore {
 public:
  virtual ~StateStore() = default;

  /// The environment's row, created (with a fresh salt) when it does not exist yet.
  virtual Result<Environment> GetOrCreateEnvironment(const std::string& name) = 0;
  /// The environment's row, or std::nullopt.
  virtual Result<std::optional<Environment>> GetEnvironment(const std::string& name) = 0;
  /// All environments, sorted by name.
  virtual Result<std::vector<Environment>> ListEnvironments() = 0;

  /// All resources of an environment, sorted by address.
  virtual Result<std::vector<ResourceState>> ListResources(const std::string& env) = 0;
  /// One resource, or std::nullopt.
  virtual Result<std::optional<ResourceState>> GetResource(const std::string& env,
                                                           const std::string& address) = 0;
  /// The digests of all resources of an environment, sorted by address: what a plan compares.
  /// Much smaller than ListResources (no attributes), which matters at 100,000 resources.
  virtual Result<std::vector<ResourceDigest>> ListResourceDigests(const std::string& env) = 0;
  /// The resources at `addresses` (any order, repeats allowed) that are in state, sorted by
  /// address, read in one consistent snapshot; addresses not in state are left out.
  virtual Result<std::vector<ResourceState>> GetResources(
      const std::string& env, const std::vector<std::string>& addresses) = 0;
  /// The digests of the resources at `addresses` (any order, repeats allowed) that are in state,
  /// sorted by address, in one snapshot: what a check of a few resources compares (a watch's
  /// check after a change), without reading every row.
  virtual Result<std::vector<ResourceDigest>> GetResourceDigests(
      const std::string& env, const std::vector<std::string>& addresses) = 0;
  /// Records the stamps of live objects that a plan read and found unchanged, each only while
  /// its row still has that live digest (a row written meanwhile keeps "", its own). No lock:
  /// a stamp is a hint to skip a read, never a state. Does not bump the serial.
  virtual Status RecordLiveStamps(const std::string& env, const std::vector<LiveStamp>& stamps) = 0;

  /// Takes the environment's lock for `operation`. When it is held by a live holder, waits up to
  /// `timeout_seconds` (0: fail at once) and then fails with
  /// "environment X is locked by user@host (pid N) for OP since T". A lock whose holder process
  /// is gone (same host, pid not alive) or whose lease expired is released, its running apply
  /// marked "interrupted", and taken. `lease_seconds` sets expires_at.
  virtual Result<Lock> AcquireLock(const std::string& env, const Identity& who,
                                   const std::string& operation, double timeout_seconds,
                                   int64_t lease_seconds = 60) = 0;
  /// Extends the lease; fails when the lock was taken over (token no longer current).
  virtual Status RenewLock(Lock& lock, int64_t lease_seconds = 60) = 0;
  /// Releases the lock if `lock.token` is still current.
  virtual Status ReleaseLock(const Lock& lock) = 0;
  /// The current lock of an environment, if any (for messages and `env show`).
  virtual Result<std::optional<Lock>> GetLock(const std::string& env) = 0;
  /// Sets what AcquireLock calls, once per call, when it finds the lock held by a live holder and
  /// starts to wait for it (a timeout above 0); never when it takes the lock at once or fails at
  /// once. The CLI says on standard error that it waits, and for whom. Empty: nothing is called.
  void SetLockWaitObserver(LockWaitObserver observer) { lock_wait_observer_ = std::move(observer); }

  /// Records the start of an apply and every change it intends, all "pending", in one
  /// transaction. Returns the apply's id. Fails when `lock` is not current.
  virtual Result<int64_t> BeginApply(const Lock& lock, const ApplyRecord& apply,
                                     const std::vector<ChangeRecord>& intents) = 0;
  /// Records more intents of the running apply `apply_id` (begun by BeginApply under `lock`),
  /// all "pending", in one transaction; `first` is the place of the first of them among the
  /// apply's intents (the number recorded before). A large apply records its intents a batch at
  /// a time instead of holding all their diffs at once. Fails when `lock` is not current or the
  /// apply is not running, writing nothing.
  virtual Status AddIntents(const Lock& lock, int64_t apply_id, size_t first,
                            const std::vector<ChangeRecord>& intents) = 0;
  /// Records outcomes in one transaction: each change's status, and the resource's new state
  /// (upsert, or removal). Bumps the environment's serial once. Fails when `lock` is not current,
  /// writing nothing.
  virtual Status RecordResults(const Lock& lock, int64_t apply_id,
                               const std::vector<ChangeResult>& results) = 0;
  /// Marks the apply finished with its final status and summary.
  virtual Status FinishApply(const Lock& lock, int64_t apply_id, const std::string& status,
                             const std::string& summary) = 0;

  /// Applies, newest first; all environments when env is "".
  virtual Result<std::vector<ApplyRecord>> ListApplies(const std::string& env, int limit) = 0;
  /// The commit of every environment's last successful apply (kind "apply", status
  /// "succeeded", a commit recorded), by environment; an environment without one is absent. One
  /// statement for all environments: what a server's fetch loop compares branch heads with.
  virtual Result<std::map<std::string, std::string>> AppliedCommits() = 0;
  /// One apply with its changes, or std::nullopt.
  virtual Result<std::optional<ApplyRecord>> GetApply(int64_t id) = 0;
  /// Changes still "pending" in applies that did not finish ("interrupted" or a dead "running"),
  /// newest first: the resources whose outcome is in doubt.
  virtual Result<std::vector<ChangeRecord>> PendingChanges(const std::string& env) = 0;

  /// Removes a resource from state without touching the object (`state rm`). Needs the lock.
  virtual Status RemoveResource(const Lock& lock, const std::string& address) = 0;
  /// Renames a resource's address (`moved_from`). Needs the lock.
  virtual Status MoveResource(const Lock& lock, const std::string& from, const std::string& to) = 0;

  /// Records one drift check at `now` (no lock: checks are reads; the open-drift index keeps
  /// concurrent checkers from opening a drift twice). Each of `drifted` opens a drift, or
  /// updates the open one (last_seen, diff, actor when given). Each of `clean` that has an open
  /// drift is resolved with `resolution`. Returns the drifts opened by this call.
  virtual Result<std::vector<DriftRecord>> ObserveDrift(
      const std::string& env, const std::vector<DriftObservation>& drifted,
      const std::vector<std::string>& clean, const std::string& resolution, int64_t now) = 0;
  /// Counts one enforcement of the open drift of `address`; returns the new count (0 when no
  /// drift is open).
  virtual Result<int64_t> CountRemediation(const std::string& env, const std::string& address) = 0;
  /// Drifts of an environment (all when env is ""), newest first; open ones only unless
  /// `include_resolved`.
  virtual Result<std::vector<DriftRecord>> ListDrift(const std::string& env, bool include_resolved,
                                                     int limit) = 0;

  /// Adds `entries` to the outbox in one transaction (all or none). `id`, `attempts`,
  /// `delivered_at` and `last_error` are ignored; an entry with next_attempt_at 0 is due at once.
  virtual Status Enqueue(const std::vector<OutboxEntry>& entries) = 0;
  /// Undelivered entries with next_attempt_at <= now, oldest first, at most `limit`.
  virtual Result<std::vector<OutboxEntry>> DueDeliveries(int64_t now, int limit) = 0;
  /// Marks an entry delivered at `now`. Delivering twice is harmless (at-least-once).
  virtual Status MarkDelivered(int64_t id, int64_t now) = 0;
  /// Records a failed attempt: attempts + 1, the error, and when to try again. Entries are never
  /// dropped.
  virtual Status MarkFailed(int64_t id, const std::string& error, int64_t next_attempt_at) = 0;
  /// Per sink: delivered, pending and failing counts, last error, next attempt; sorted by sink.
  virtual Result<std::vector<SinkStatus>> OutboxStatus() = 0;
  /// When an entry about `subject` was last enqueued for `sink` (unix seconds), 0 when never.
  virtual Result<int64_t> LastEnqueuedAt(const std::string& sink, const std::string& subject) = 0;
  /// Removes entries delivered before `delivered_before` (unix seconds), but per sink the ones
  /// delivered last (SinkStatus::last_delivered_at) and per sink and subject the newest one
  /// (LastEnqueuedAt, for reminders). Undelivered entries are never removed. Returns how many
  /// were removed.
  virtual Result<int64_t> PruneOutbox(int64_t delivered_before) = 0;

  /// Frees the memory the connection can give back (its page cache), without closing it: a
  /// long-lived caller that uses it now and then (a served watch between its checks). The next
  /// reads take what they need again. Nothing by default.
  virtual void ReleaseMemory() {}

 protected:
  /// For implementations of AcquireLock: tells the observer (SetLockWaitObserver), if any, that
  /// the call starts to wait for `holder`. Call it once per AcquireLock, before the first pause.
  void NotifyLockWait(const Lock& holder, double timeout_seconds) const {
    if (lock_wait_observer_) lock_wait_observer_(holder, timeout_seconds);
  }

 private:
  LockWaitObserver lock_wait_observer_;
};

}  // namespace driftless::state
