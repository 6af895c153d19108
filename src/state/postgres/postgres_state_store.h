#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/identity.h"
#include "base/result.h"
#include "state/state_store.h"

namespace driftless::state {

namespace pg_detail {
class Connection;
class Transaction;
}  // namespace pg_detail

/// The shared state backend: every table in the schema `driftless` of one PostgreSQL database,
/// used by any number of driftless processes on any number of hosts (see README.md in this
/// folder for the schema, the migrations, leases and fencing).
///
/// Times of leases come from the server's clock, so that the clocks of the clients do not
/// matter. Every write made under a Lock checks, in its own transaction and with the lock's row
/// locked, that the lock's token is still current, and writes nothing otherwise.
///
/// Thread-safety: one PostgresStateStore object (one connection) must be used by one thread at a
/// time. Use one object per thread for concurrency.
class PostgresStateStore final : public StateStore {
 public:
  /// The longest pause between two looks at a lock held by someone else (a release wakes the
  /// waiters at once through LISTEN/NOTIFY; the pause only bounds how late an expired lease is
  /// noticed).
  static constexpr int kLockPollMaxMs = 250;

  /// Connects to `location` (postgres://..., postgresql://... or libpq key=value pairs) and
  /// brings the schema up to date. Errors name the location with its password masked.
  static Result<std::unique_ptr<PostgresStateStore>> Open(const std::string& location);

  ~PostgresStateStore() override;
  PostgresStateStore(const PostgresStateStore&) = delete;
  PostgresStateStore& operator=(const PostgresStateStore&) = delete;

  /// The location as messages show it (password masked).
  const std::string& location() const;

  Result<Environment> GetOrCreateEnvironment(const std::string& name) override;
  Result<std::optional<Environment>> GetEnvironment(const std::string& name) override;
  Result<std::vector<Environment>> ListEnvironments() override;

  Result<std::vector<ResourceState>> ListResources(const std::string& env) override;
  Result<std::optional<ResourceState>> GetResource(const std::string& env,
                                                   const std::string& address) override;
  Result<std::vector<ResourceDigest>> ListResourceDigests(const std::string& env) override;
  Result<std::vector<ResourceDigest>> GetResourceDigests(
      const std::string& env, const std::vector<std::string>& addresses) override;
  Status RecordLiveStamps(const std::string& env, const std::vector<LiveStamp>& stamps) override;
  /// See StateStore::GetResources: one statement (one snapshot) for all addresses.
  Result<std::vector<ResourceState>> GetResources(
      const std::string& env, const std::vector<std::string>& addresses) override;

  /// See StateStore::AcquireLock. Leases are kept between 1 second and 10 years. Every apply of
  /// the environment still marked "running" when the lock is taken is marked "interrupted": only
  /// the lock holder can run one. Not reentrant: a process that holds the lock and asks again is
  /// refused like anyone else.
  Result<Lock> AcquireLock(const std::string& env, const Identity& who,
                           const std::string& operation, double timeout_seconds,
                           int64_t lease_seconds = 60) override;
  Status RenewLock(Lock& lock, int64_t lease_seconds = 60) override;
  /// See StateStore::ReleaseLock. A lock that is no longer current is left alone (not an error).
  /// Applies of this lock still "running" are marked "interrupted".
  Status ReleaseLock(const Lock& lock) override;
  Result<std::optional<Lock>> GetLock(const std::string& env) override;

  /// See StateStore::BeginApply. The apply is stored as "running" (started now unless
  /// apply.started_at is set) and every intent as "pending", whatever their status fields say.
  Result<int64_t> BeginApply(const Lock& lock, const ApplyRecord& apply,
                             const std::vector<ChangeRecord>& intents) override;
  /// See StateStore::AddIntents.
  Status AddIntents(const Lock& lock, int64_t apply_id, size_t first,
                    const std::vector<ChangeRecord>& intents) override;
  /// See StateStore::RecordResults. A result for an address that was not among the intents is
  /// appended to the apply's changes with an empty action.
  Status RecordResults(const Lock& lock, int64_t apply_id,
                       const std::vector<ChangeResult>& results) override;
  /// See StateStore::FinishApply. `status` is "succeeded", "failed" or "interrupted". For the
  /// first two, changes still "pending" were never attempted and become "skipped".
  Status FinishApply(const Lock& lock, int64_t apply_id, const std::string& status,
                     const std::string& summary) override;

  /// See StateStore::ListApplies. `limit` <= 0 means no limit.
  Result<std::vector<ApplyRecord>> ListApplies(const std::string& env, int limit) override;
  Result<std::map<std::string, std::string>> AppliedCommits() override;
  Result<std::optional<ApplyRecord>> GetApply(int64_t id) override;
  /// See StateStore::PendingChanges; all environments when env is "". A change stops being in
  /// doubt once a later apply of the environment records it "done" or "failed".
  Result<std::vector<ChangeRecord>> PendingChanges(const std::string& env) override;

  /// See StateStore::RemoveResource. Fails when the resource is not in state.
  Status RemoveResource(const Lock& lock, const std::string& address) override;
  /// See StateStore::MoveResource. `to` is "kind/name"; the resource's kind and name follow it,
  /// and other resources' depends_on entries naming `from` are rewritten. Fails when `from` is
  /// not in state or `to` already is.
  Status MoveResource(const Lock& lock, const std::string& from, const std::string& to) override;
  Result<std::vector<DriftRecord>> ObserveDrift(const std::string& env,
                                                const std::vector<DriftObservation>& drifted,
                                                const std::vector<std::string>& clean,
                                                const std::string& resolution,
                                                int64_t now) override;
  Result<int64_t> CountRemediation(const std::string& env, const std::string& address) override;
  Result<std::vector<DriftRecord>> ListDrift(const std::string& env, bool include_resolved,
                                             int limit) override;
  Status Enqueue(const std::vector<OutboxEntry>& entries) override;
  Result<std::vector<OutboxEntry>> DueDeliveries(int64_t now, int limit) override;
  Status MarkDelivered(int64_t id, int64_t now) override;
  Status MarkFailed(int64_t id, const std::string& error, int64_t next_attempt_at) override;
  Result<std::vector<SinkStatus>> OutboxStatus() override;
  Result<int64_t> LastEnqueuedAt(const std::string& sink, const std::string& subject) override;
  Result<int64_t> PruneOutbox(int64_t delivered_before) override;

  // --- ControlStore (control_store.h; sqlite_control_store.cc) ---
  Result<EnqueuedRun> EnqueueRun(const Run& run, bool supersede) override;
  /// Serialised per environment by a transaction-scoped advisory lock, so that servers that see
  /// one new head at once queue one run between them.
  Result<std::optional<EnqueuedRun>> EnqueueRunUnlessCovered(const Run& run) override;
  Result<std::optional<Run>> GetRun(int64_t id) override;
  Result<bool> TransitionRun(int64_t id, const std::string& from, const std::string& to,
                             const RunUpdate& update = {}) override;
  Result<std::optional<Run>> StartNextRun(const std::string& env, const std::string& to) override;
  Result<std::optional<Run>> StartRun(const Run& run, const std::string& to) override;
  Result<bool> RequestCancel(int64_t id) override;
  Result<std::vector<int64_t>> CancelRequests(const std::string& env) override;
  Result<Page<Run>> ListRuns(const RunFilter& filter, int64_t cursor, int limit) override;
  Result<bool> AddApproval(const Approval& approval) override;
  Result<std::vector<Approval>> ListApprovals(int64_t run_id) override;
  Status CreateToken(const Token& token) override;
  Result<std::optional<Token>> FindTokenByHash(const std::string& hash) override;
  Result<std::vector<Token>> ListTokens() override;
  Result<bool> RevokeToken(const std::string& name, int64_t now) override;
  Status CreateSession(const Session& session) override;
  Result<std::optional<Session>> FindSessionByHash(const std::string& hash) override;
  Result<bool> DeleteSession(const std::string& hash) override;
  Result<int64_t> PruneSessions(int64_t before) override;
  Result<int64_t> AppendAudit(const AuditEntry& entry) override;
  Result<Page<AuditEntry>> ListAudit(const AuditFilter& filter, int64_t cursor, int limit) override;
  Result<int64_t> AppendEvent(const EventRecord& event,
                              const std::vector<OutboxEntry>& deliveries) override;
  Result<std::vector<EventRecord>> EventsAfter(int64_t after_id, const EventFilter& filter,
                                               int limit) override;
  Result<int64_t> LatestEventId() override;
  Result<bool> WaitForEvents(int64_t after_id, int timeout_ms) override;
  Result<int64_t> PruneEvents(int64_t before) override;
  Result<bool> EventIdPastRetention(int64_t last_id) override;
  Result<bool> RememberDelivery(const std::string& source, const std::string& id,
                                int64_t now) override;
  Result<int64_t> PruneDeliveries(int64_t before) override;
  /// See ControlStore::Listen: a connection of its own (pg_listener.h), application_name
  /// "driftless listener".
  Result<std::unique_ptr<ChangeListener>> Listen(const std::vector<std::string>& channels) override;
  Status Notify(const std::string& channel, const std::string& payload) override;
  // Several servers (postgres_servers.cc).
  bool SharesServers() const override { return true; }
  Result<std::vector<ServerRecord>> Heartbeat(const ServerRecord& self, int64_t lease_ms) override;
  Status Deregister(const std::string& id) override;
  Result<Ownerships> ListOwnerships() override;
  Result<std::optional<Ownership>> TakeOwnership(const std::string& env, const std::string& server,
                                                 int64_t lease_ms) override;
  Result<std::vector<Ownership>> RenewOwnerships(const std::string& server,
                                                 int64_t lease_ms) override;
  Status ReleaseOwnership(const std::string& env, int64_t token) override;
  void SetRunFence(const std::string& env, int64_t token) override;
  // --- end of ControlStore ---

 private:
  PostgresStateStore(std::unique_ptr<pg_detail::Connection> c, std::string location,
                     std::string host);

  // Inside a write transaction: locks the environment's lock row and fails unless `lock` is its
  // current lock.
  Status CheckFence(const Lock& lock);
  // A write transaction in which `lock` is current and apply `apply_id` of its environment is
  // running (what every write to a running apply checks first).
  Result<pg_detail::Transaction> WriteToApply(const Lock& lock, int64_t apply_id,
                                              const std::string& what);
  // Inside a write transaction, when a run fence is set (SetRunFence) for `env`: locks the
  // environment's ownership row (FOR SHARE) and fails unless the fence's token is its owner's.
  Status CheckOwnerFence(const std::string& env, const std::string& what);
  // The environment of run `id` (nullopt when there is none): what a transition looks at,
  // without reading the run's plans.
  Result<std::optional<std::string>> RunEnvironment(int64_t id, const std::string& what);
  // When a run fence is set for `env`: opens a write transaction in `txn` and checks the fence
  // in it (CheckOwnerFence); otherwise leaves `txn` empty (the statement is its own).
  Status BeginFenced(const std::string& env, const std::string& what,
                     std::optional<pg_detail::Transaction>& txn);
  // EnqueueRun's writes, inside the write transaction the caller opened and commits.
  Result<EnqueuedRun> InsertQueuedRun(const Run& run, bool supersede, const std::string& what);
  // The environment's serial after bumping it by one, inside a write transaction.
  Result<int64_t> BumpSerial(const std::string& env, std::string_view what);
  Result<std::optional<Lock>> ReadLock(const std::string& env);
  // One attempt: the new lock (`taken`), or the live holder that keeps it (`holder`).
  struct Attempt {
    std::optional<Lock> taken;
    std::optional<Lock> holder;
    bool busy = false;  ///< the lock's rows stayed locked by another session (lock_timeout)
  };
  Result<Attempt> TryAcquire(const std::string& env, const Identity& who,
                             const std::string& operation, int64_t lease_seconds);

  std::unique_ptr<pg_detail::Connection> c_;
  std::string location_;  // as given (password included), for the listeners' connections
  std::string host_;      // this machine's host name, to judge stale locks
  bool listening_ = false;
  bool listening_events_ = false;  // LISTEN driftless_events issued (WaitForEvents)
  std::string fence_env_;          // SetRunFence: "" for none
  int64_t fence_token_ = 0;
};

}  // namespace driftless::state
