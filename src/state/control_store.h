#pragma once

// What the controller (`driftless serve`) and its API keep beside the environments' state: runs
// and their approvals, API tokens, the audit log, the event log the event stream replays, and
// the webhook deliveries already seen. StateStore extends this interface, so both backends keep
// it and one store object serves both; the contract tests (testing/) run against both.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "state/change_channel.h"

namespace driftless::state {

struct OutboxEntry;  // state_store.h

/// One page of a list, newest first unless documented otherwise.
template <typename T>
struct Page {
  std::vector<T> items;
  /// Pass as `cursor` to get the next page; 0 when this page is the last.
  int64_t next_cursor = 0;
};

/// One plan, apply, destroy or remediation of an environment, from queued to finished.
///
/// Lifecycle (RunTransitionAllowed): queued → planning | applying | canceled | superseded;
/// planning → planned | awaiting_approval | no_changes | errored | canceled | interrupted;
/// planned → applying | awaiting_approval | canceled | superseded | errored | interrupted (the
/// server stopped between the plan and the apply);
/// awaiting_approval → planning | applying | planned | canceled | superseded | errored (planning:
/// approved, planned again under the lock to check the hash);
/// applying → applied | errored | canceled | interrupted. applied, no_changes, errored,
/// canceled, superseded and interrupted are final. `planning` and `applying` are *active*: at
/// most one run per environment is active at a time (the store refuses a second).
struct Run {
  int64_t id = 0;           ///< grows with every run, across environments
  std::string environment;  ///< the environment's name
  std::string action;       ///< "plan", "apply", "destroy", "remediation"
  std::string status = "queued";
  std::string commit;       ///< the revision planned or applied ("" for a folder)
  std::string plan_hash;    ///< the hash of the plan (what approvals bind to), "" until planned
  std::string plan_text;    ///< the plan as printed (redacted)
  std::string plan_json;    ///< the plan as JSON (redacted)
  std::string author;       ///< the token's name, or "controller"
  int64_t created_at = 0;   ///< unix seconds, when queued
  int64_t started_at = 0;   ///< unix seconds, when it left `queued`; 0 before
  int64_t finished_at = 0;  ///< unix seconds, when it reached a final status; 0 before
  std::string message;      ///< the result ("3 created, 1 updated") or why it failed
  int64_t apply_id = 0;     ///< the history entry of its apply (ApplyRecord::id), 0 when none
};

/// Every run status, in lifecycle order.
const std::vector<std::string>& RunStatuses();
/// True for the statuses in which a server works on the environment: planning, applying.
bool IsActiveRunStatus(std::string_view status);
/// True for the final statuses: applied, no_changes, errored, canceled, superseded, interrupted.
bool IsFinalRunStatus(std::string_view status);
/// True when the lifecycle allows a run in `from` to go to `to` (see Run).
bool RunTransitionAllowed(std::string_view from, std::string_view to);

/// What a transition sets besides the status; an absent member keeps its value.
struct RunUpdate {
  std::optional<std::string> plan_hash;
  std::optional<std::string> plan_text;
  std::optional<std::string> plan_json;
  std::optional<std::string> message;
  std::optional<int64_t> apply_id;
};

/// Which runs a list returns.
struct RunFilter {
  std::string environment;            ///< "" for all environments
  std::vector<std::string> statuses;  ///< empty for every status
  /// false: plan_text and plan_json are left empty (a look at statuses and commits; a plan of
  /// 1,000 files is hundreds of kilobytes a run).
  bool plans = true;
};

/// What EnqueueRun did.
struct EnqueuedRun {
  Run run;                          ///< the new run, with its id
  std::vector<int64_t> superseded;  ///< the runs it superseded, oldest first
};

/// One person's decision on one run's plan.
struct Approval {
  int64_t run_id = 0;
  std::string plan_hash;  ///< the plan hash approved or rejected
  std::string who;        ///< the token's name
  std::string decision;   ///< "approved" or "rejected"
  std::string comment;
  int64_t created_at = 0;  ///< unix seconds
};

/// A run with its decisions, as history shows it beside its apply.
struct RunRecord {
  Run run;
  std::vector<Approval> approvals;  ///< oldest first
};

/// An API token. Only the SHA-256 of its secret is kept (see src/auth).
struct Token {
  std::string name;         ///< unique among live (unrevoked) tokens
  std::string role;         ///< "viewer", "editor", "admin"
  std::string envs = "**";  ///< environment glob the token is limited to
  /// The rights it is limited to, comma-separated in the order of auth::AllRights ("plan,approve");
  /// "" : every right its role grants.
  std::string rights;
  std::string hash;        ///< lowercase hex SHA-256 of the secret: the lookup key
  std::string created_by;  ///< who made it (user@host, or a token's name)
  int64_t created_at = 0;  ///< unix seconds
  int64_t expires_at = 0;  ///< unix seconds; 0 never
  int64_t revoked_at = 0;  ///< unix seconds; 0 while not revoked
};

/// A browser's session (`POST /api/v1/session`): made from a token, it acts with that token's
/// rights while both are live. Only the SHA-256 of its id (the cookie's value) is kept.
struct Session {
  std::string hash;        ///< lowercase hex SHA-256 of the id's 32 bytes: the lookup key
  std::string token_hash;  ///< Token::hash of the token it was made from
  std::string csrf;        ///< the secret every mutating request must echo (X-CSRF-Token)
  int64_t created_at = 0;  ///< unix seconds
  int64_t expires_at = 0;  ///< unix seconds (never 0: every session ends)
};

/// One decision in the audit log (append-only: there is no way to change or remove one).
struct AuditEntry {
  int64_t id = 0;
  int64_t time = 0;         ///< unix seconds
  std::string who;          ///< the token's name, "controller", or "" when no valid token
  std::string action;       ///< "run.create", "run.approve", "token.create", ...
  std::string subject;      ///< what else it was about (a token's name, a route), or ""
  std::string environment;  ///< "" when none
  int64_t run_id = 0;       ///< 0 when none
  std::string plan_hash;    ///< "" when none
  std::string result;       ///< "allowed" or "refused"
  std::string reason;       ///< why it was refused ("" when allowed)
  std::string request_id;   ///< the HTTP request's X-Request-Id ("" outside a request)
};

/// Which audit entries a list returns.
struct AuditFilter {
  std::string environment;  ///< "" for all
  std::string who;          ///< "" for all
};

/// One event in the event log, as published (notify::Event's JSON in `payload_json`).
struct EventRecord {
  int64_t id = 0;    ///< grows with every event; never reused, even after pruning
  std::string type;  ///< "apply.succeeded", ...
  std::string environment;
  std::string payload_json;  ///< the event's JSON, as the sinks receive it
  int64_t time = 0;          ///< unix seconds
};

/// Which events a read returns.
struct EventFilter {
  std::string environment;         ///< "" for all
  std::vector<std::string> types;  ///< empty for all
};

/// A `driftless serve` process registered in a state that several servers share.
struct ServerRecord {
  std::string id;  ///< unique per process (host, pid and a random part)
  std::string host;
  int64_t pid = 0;
  int64_t started_at = 0;  ///< unix seconds
  int64_t expires_ms = 0;  ///< unix milliseconds on the database's clock: alive until then
};

/// Which server reconciles an environment: a lease with a fencing token.
struct Ownership {
  std::string environment;
  std::string server;      ///< ServerRecord::id
  int64_t token = 0;       ///< strictly increasing across takeovers (all environments)
  int64_t expires_ms = 0;  ///< unix milliseconds on the database's clock
};

/// Every ownership, and the database's clock when they were read.
struct Ownerships {
  int64_t now_ms = 0;
  std::vector<Ownership> items;  ///< sorted by environment
};

/// The runs, approvals, tokens, audit log, event log and webhook deliveries (see the top of this
/// file). One object is used by one thread at a time, like StateStore.
class ControlStore {
 public:
  virtual ~ControlStore() = default;

  // --- runs ---

  /// Queues `run` (status "queued", created now unless created_at is set; id, times and plan
  /// fields of `run` are ignored but commit, action, author and plan_* are kept). When
  /// `supersede` and the run is a plan or an apply, the environment's plan and apply runs still
  /// queued, planned or awaiting approval for another commit become "superseded", in the same
  /// transaction.
  virtual Result<EnqueuedRun> EnqueueRun(const Run& run, bool supersede) = 0;
  /// EnqueueRun(run, true) unless the environment's newest run is of run.commit and still stands
  /// (NewestRunCovers): std::nullopt then, and nothing written. On a state several servers share,
  /// two servers that see the same new head at once queue one run between them.
  virtual Result<std::optional<EnqueuedRun>> EnqueueRunUnlessCovered(const Run& run);
  /// One run, or std::nullopt.
  virtual Result<std::optional<Run>> GetRun(int64_t id) = 0;
  /// Moves run `id` from `from` to `to` with `update`, only if its status is still `from`
  /// (compare-and-set): false when it is not, or when `to` is active and another run of the
  /// environment is active. Sets started_at when leaving queued, finished_at when `to` is final.
  /// An error when the lifecycle does not allow the transition or the run does not exist.
  virtual Result<bool> TransitionRun(int64_t id, const std::string& from, const std::string& to,
                                     const RunUpdate& update = {}) = 0;
  /// Starts the environment's oldest queued run (first in, first out) by moving it to `to`
  /// (planning or applying): std::nullopt when none is queued or a run of the environment is
  /// active. Two servers calling it at once never both start one.
  virtual Result<std::optional<Run>> StartNextRun(const std::string& env,
                                                  const std::string& to) = 0;
  /// Records `run` and starts it in one step (status `to`: planning or applying; created and
  /// started now), when no run of its environment is active: for work that begins by itself
  /// rather than from the queue (a served watch's remediation). std::nullopt, nothing written,
  /// when a run of the environment is active. Never races with StartNextRun.
  virtual Result<std::optional<Run>> StartRun(const Run& run, const std::string& to) = 0;
  /// Asks whoever runs run `id` to stop it (a cancel sent to a server that does not run it):
  /// records the request when the run is active (planning or applying) and announces its
  /// environment on kRunsChannel once that has committed. false, nothing written, when the run
  /// is not active; an error when there is no run `id`. The run's status does not change: its
  /// runner sees the request (CancelRequests), stops, and ends it `canceled`.
  virtual Result<bool> RequestCancel(int64_t id) = 0;
  /// The ids of the active runs of `env` ("" : every environment) whose cancel was requested
  /// (RequestCancel), oldest first.
  virtual Result<std::vector<int64_t>> CancelRequests(const std::string& env) = 0;
  /// Runs matching `filter`, newest first, at most `limit` (<= 0: 100), with ids below `cursor`
  /// (0: from the newest).
  virtual Result<Page<Run>> ListRuns(const RunFilter& filter, int64_t cursor, int limit) = 0;

  // --- approvals ---

  /// Records a decision; false (nothing written) when `who` already decided on that run.
  virtual Result<bool> AddApproval(const Approval& approval) = 0;
  /// The decisions on a run, oldest first.
  virtual Result<std::vector<Approval>> ListApprovals(int64_t run_id) = 0;

  // --- tokens ---

  /// Stores a new token; an error when a live token has that name or the hash is known.
  virtual Status CreateToken(const Token& token) = 0;
  /// The token with that hash (revoked and expired ones included: the caller decides), or
  /// std::nullopt.
  virtual Result<std::optional<Token>> FindTokenByHash(const std::string& hash) = 0;
  /// Every token, revoked ones included, sorted by name, then creation.
  virtual Result<std::vector<Token>> ListTokens() = 0;
  /// Revokes the live token named `name` at `now` and ends its browser sessions in the same
  /// transaction; false when there is none.
  virtual Result<bool> RevokeToken(const std::string& name, int64_t now) = 0;

  // --- browser sessions ---

  /// Stores a new session; an error when its hash is known already or a field is missing.
  virtual Status CreateSession(const Session& session) = 0;
  /// The session with that hash (expired ones included: the caller decides), or std::nullopt.
  virtual Result<std::optional<Session>> FindSessionByHash(const std::string& hash) = 0;
  /// Removes the session with that hash; false when there was none.
  virtual Result<bool> DeleteSession(const std::string& hash) = 0;
  /// Removes the sessions that expired before `before` (unix seconds); returns how many.
  virtual Result<int64_t> PruneSessions(int64_t before) = 0;

  // --- audit ---

  /// Appends an entry (time now when 0) and returns its id.
  virtual Result<int64_t> AppendAudit(const AuditEntry& entry) = 0;
  /// Entries matching `filter`, newest first, at most `limit` (<= 0: 100), ids below `cursor`.
  virtual Result<Page<AuditEntry>> ListAudit(const AuditFilter& filter, int64_t cursor,
                                             int limit) = 0;

  // --- events ---

  /// Appends `event` (id assigned, time now when 0) and enqueues `deliveries` (the outbox
  /// entries for its sinks, as Enqueue) in one transaction; returns the event's id. PostgreSQL
  /// also notifies channel `driftless_events` with the id.
  virtual Result<int64_t> AppendEvent(const EventRecord& event,
                                      const std::vector<OutboxEntry>& deliveries) = 0;
  /// Events with ids above `after_id` matching `filter`, oldest first, at most `limit`
  /// (<= 0: 1000).
  virtual Result<std::vector<EventRecord>> EventsAfter(int64_t after_id, const EventFilter& filter,
                                                       int limit) = 0;
  /// The id of the newest event ever appended (0 when none was); pruning never lowers it.
  virtual Result<int64_t> LatestEventId() = 0;
  /// Waits up to `timeout_ms` for an event with an id above `after_id`: true as soon as one
  /// exists (at once when one does already), false when none came in time. PostgreSQL listens
  /// on `driftless_events`, so an event appended by another server wakes it at once; SQLite
  /// looks again every 50 ms (one host: a server can also wake its own readers directly).
  virtual Result<bool> WaitForEvents(int64_t after_id, int timeout_ms) = 0;
  /// Removes events older than `before` (unix seconds); returns how many.
  virtual Result<int64_t> PruneEvents(int64_t before) = 0;
  /// True when events after `last_id` were pruned: a reader that last saw `last_id` has missed
  /// some and must start again (the event stream's `reset`).
  virtual Result<bool> EventIdPastRetention(int64_t last_id) = 0;

  // --- webhook deliveries ---

  /// Remembers delivery `id` of webhook `source` ("github", ...) at `now`: true when it is new,
  /// false when it was already seen (insert if absent).
  virtual Result<bool> RememberDelivery(const std::string& source, const std::string& id,
                                        int64_t now) = 0;
  /// Forgets deliveries seen before `before`; returns how many.
  virtual Result<int64_t> PruneDeliveries(int64_t before) = 0;

  // --- change notifications (change_channel.h) ---

  /// Subscribes to `channels` (kEventsChannel, kRunsChannel, kFetchChannel, or any valid name)
  /// and returns once subscribed. AppendEvent announces on "events" and EnqueueRun on "runs",
  /// each only once its row has committed (PostgreSQL: in the row's transaction). PostgreSQL:
  /// the listener holds a connection of its own to the same location, LISTENing to
  /// `driftless_<channel>`, and connects again by itself when it is lost (reported as
  /// Wakeup::missed); SQLite: in this process, plus a look every 100 ms at whether another
  /// connection wrote the file (also reported as missed, own writes included). The listener
  /// does not use this store object and may outlive it.
  virtual Result<std::unique_ptr<ChangeListener>> Listen(
      const std::vector<std::string>& channels) = 0;
  /// Announces `payload` on `channel` now, to every listener of the state (outside any
  /// transaction of this store). An error for a bad channel name or payload
  /// (CheckChannelName, CheckNotificationPayload).
  virtual Status Notify(const std::string& channel, const std::string& payload) = 0;

  // --- several servers (docs/server.md#several-servers) ---
  //
  // Only a backend that several servers can share (PostgreSQL) implements these; on the others
  // SharesServers() is false, one server owns everything and the calls below fail.

  /// True when several servers may share this state, each reconciling the environments it owns.
  virtual bool SharesServers() const { return false; }
  /// Registers `self` (or refreshes its row) as alive for `lease_ms` from the database's now, and
  /// returns every live server (this one included), sorted by id.
  virtual Result<std::vector<ServerRecord>> Heartbeat(const ServerRecord& self, int64_t lease_ms);
  /// Removes server `id`'s row and every ownership it holds (a server that stops).
  virtual Status Deregister(const std::string& id);
  /// Every ownership.
  virtual Result<Ownerships> ListOwnerships();
  /// Makes `server` the owner of `env` with a new token, for `lease_ms`, when the environment has
  /// no owner or its owner's lease expired; std::nullopt (nothing written) when another owns it.
  virtual Result<std::optional<Ownership>> TakeOwnership(const std::string& env,
                                                         const std::string& server,
                                                         int64_t lease_ms);
  /// Extends every ownership of `server` by `lease_ms` from now and returns them (the ones taken
  /// over by others are not among them).
  virtual Result<std::vector<Ownership>> RenewOwnerships(const std::string& server,
                                                         int64_t lease_ms);
  /// Gives `env` back, if `token` is still its owner's.
  virtual Status ReleaseOwnership(const std::string& env, int64_t token);
  /// Fences the run writes made through this object (TransitionRun, StartNextRun, StartRun) and
  /// its drift writes (ObserveDrift, CountRemediation, RecordLiveStamps: a served watch's) for
  /// environment `env`:
  /// from now on each checks, in its own transaction with the ownership row locked, that `token`
  /// is still the environment's owner's, and fails writing nothing ("lost the ownership of
  /// environment X ...") otherwise. `env` "" (the default) fences nothing.
  virtual void SetRunFence(const std::string& env, int64_t token) {
    (void)env;
    (void)token;
  }
};

/// Whether environment `env`'s newest run in `store` is of `commit` and still stands (queued,
/// running or done; not superseded, canceled or interrupted): that commit needs no new run.
Result<bool> NewestRunCovers(ControlStore& store, const std::string& env,
                             const std::string& commit);

/// The run of `env` whose apply (ApplyRecord::id) is `apply_id`, with its approvals; std::nullopt
/// when there is none (an apply by the command line, or a run older than the last 5,000).
Result<std::optional<RunRecord>> FindRunOfApply(ControlStore& store, const std::string& env,
                                                int64_t apply_id);

}  // namespace driftless::state
