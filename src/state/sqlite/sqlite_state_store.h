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

namespace sqlite_detail {
class Database;
class Transaction;
}  // namespace sqlite_detail

/// The embedded state backend: one SQLite file in WAL mode, shared by any number of driftless
/// processes on one host (see README.md in this folder for the schema and the semantics).
///
/// Durability: a committed write survives the process being killed. With synchronous=NORMAL a
/// power loss or OS crash may lose the last few committed transactions, never corrupt the file.
///
/// Thread-safety: one SqliteStateStore object must be used by one thread at a time. Use one
/// object per thread (each opens its own connection) for concurrency.
class SqliteStateStore final : public StateStore {
 public:
  /// How long a statement waits for another process's write to finish before failing.
  static constexpr int kBusyTimeoutMs = 10000;
  /// How long RecordLiveStamps waits for other writers before it gives up.
  static constexpr int kStampBusyTimeoutMs = 100;
  /// How often AcquireLock looks again while it waits for a live lock holder.
  static constexpr int kLockPollMs = 75;
  /// How often a listener (Listen) looks whether another connection wrote the file.
  static constexpr int kListenPollMs = 100;

  /// Opens the database at `path`, creating it (mode 0600) and its parent folders when missing,
  /// and brings its schema up to date. Fails when the file belongs to another program or was
  /// written by a newer driftless.
  static Result<std::unique_ptr<SqliteStateStore>> Open(const std::string& path);

  ~SqliteStateStore() override;
  SqliteStateStore(const SqliteStateStore&) = delete;
  SqliteStateStore& operator=(const SqliteStateStore&) = delete;

  /// The file this store reads and writes.
  const std::string& path() const;

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
  /// See StateStore::GetResources: one lookup by primary key per address.
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
  /// sqlite3_db_release_memory: the connection's page cache (up to its cache_size, 512 KiB);
  /// and its prepared statements (Database::ReleaseStatements).
  void ReleaseMemory() override;

  // --- ControlStore (control_store.h; sqlite_control_store.cc) ---
  Result<EnqueuedRun> EnqueueRun(const Run& run, bool supersede) override;
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
  /// See ControlStore::Listen: channels in this process (local_channels.h), keyed by the
  /// file's canonical path, plus PRAGMA data_version every kListenPollMs on a connection of the
  /// listener's own for writes by other processes (reported as missed).
  Result<std::unique_ptr<ChangeListener>> Listen(const std::vector<std::string>& channels) override;
  Status Notify(const std::string& channel, const std::string& payload) override;
  // --- end of ControlStore ---

 private:
  // Records `intents` as the changes numbered from `first` of apply `apply_id` (inside the
  // caller's transaction).
  Status InsertIntents(int64_t apply_id, size_t first, const std::vector<ChangeRecord>& intents,
                       const std::string& what);
  /// How many resources the environment has (to size a listing exactly).
  Result<size_t> CountResources(const std::string& env, const std::string& what);
  SqliteStateStore(std::unique_ptr<sqlite_detail::Database> db, std::string host);

  // Inside a write transaction: fails unless `lock` is the environment's current lock.
  Status CheckFence(const Lock& lock);
  // A write transaction in which `lock` is current and apply `apply_id` of its environment is
  // running (what every write to a running apply checks first).
  Result<sqlite_detail::Transaction> WriteToApply(const Lock& lock, int64_t apply_id,
                                                  const std::string& what);
  // The environment's serial after bumping it by one, inside a write transaction.
  Result<int64_t> BumpSerial(const std::string& env, std::string_view what);
  Result<std::optional<Lock>> ReadLock(const std::string& env);
  // Marks running applies interrupted: of the environment, or of one lock token when token > 0.
  Status InterruptApplies(const std::string& env, int64_t token, int64_t now);

  std::unique_ptr<sqlite_detail::Database> db_;
  std::string channel_key_;  // the file's canonical path: who hears Notify (local_channels.h)
  std::string host_;         // this machine's host name, to judge stale locks in PendingChanges
};

}  // namespace driftless::state
