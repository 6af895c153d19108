// The controller's records (state/control_store.h) in PostgreSQL: runs, approvals, tokens, the
// audit log, the event log and webhook deliveries. Compare-and-set transitions are one UPDATE
// each; the partial unique index runs_one_active refuses a second active run of an environment
// (SQLSTATE 23505, read as "not moved"), so two servers never both start one.

#include <algorithm>
#include <chrono>
#include <optional>
#include <utility>

#include "base/identity.h"
#include "state/control_common.h"
#include "state/postgres/pg_conn.h"
#include "state/postgres/pg_listener.h"
#include "state/postgres/postgres_state_store.h"

namespace driftless::state {

using pg_detail::EncodeTextArray;
using pg_detail::Params;
using pg_detail::Rows;
using pg_detail::Transaction;

namespace {

constexpr char kUniqueViolation[] = "23505";
constexpr char kForeignKeyViolation[] = "23503";

#define DL_RUN_COLUMNS                                                             \
  "id, env, action, status, \"commit\", plan_hash, plan_text, plan_json, author, " \
  "created_at, started_at, finished_at, message, apply_id"
constexpr std::string_view kInsertRun =
    "INSERT INTO driftless.runs (env, action, status, \"commit\", plan_hash, plan_text, "
    "plan_json, author, created_at) VALUES ($1, $2, 'queued', $3, $4, $5, $6, $7, $8) "
    "RETURNING id";
constexpr std::string_view kInsertStartedRun =
    "INSERT INTO driftless.runs (env, action, status, \"commit\", plan_hash, plan_text, "
    "plan_json, author, created_at, started_at) SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $9 "
    "WHERE NOT EXISTS (SELECT 1 FROM driftless.runs WHERE env = $1 AND status IN ('planning', "
    "'applying')) RETURNING " DL_RUN_COLUMNS;
constexpr std::string_view kSupersede =
    "UPDATE driftless.runs SET status = 'superseded', finished_at = $4, started_at = CASE WHEN "
    "started_at = 0 THEN $4 ELSE started_at END, message = $5 WHERE env = $1 AND id <> $2 AND "
    "action IN ('plan', 'apply') AND status IN ('queued', 'planned', 'awaiting_approval') AND "
    "\"commit\" <> $3 RETURNING id";
// Two keys, a space apart from the one-key advisory locks (migrations, event appends): the runs
// table's and the environment's.
constexpr std::string_view kLockRunQueue =
    "SELECT pg_advisory_xact_lock(hashtext('driftless.runs'), hashtext($1))";
constexpr std::string_view kGetRun = "SELECT " DL_RUN_COLUMNS " FROM driftless.runs WHERE id = $1";
constexpr std::string_view kRunEnvironment = "SELECT env FROM driftless.runs WHERE id = $1";
constexpr std::string_view kTransition =
    "UPDATE driftless.runs SET status = $3, plan_hash = coalesce($4, plan_hash), plan_text = "
    "coalesce($5, plan_text), plan_json = coalesce($6, plan_json), message = coalesce($7, "
    "message), apply_id = coalesce($8::bigint, apply_id), started_at = CASE WHEN started_at = 0 "
    "THEN $9::bigint ELSE started_at END, finished_at = CASE WHEN $10::boolean THEN $9::bigint "
    "ELSE finished_at END WHERE id = $1 AND status = $2 AND NOT ($3 IN ('planning', 'applying') "
    "AND EXISTS (SELECT 1 FROM driftless.runs o WHERE o.env = runs.env AND o.id <> runs.id AND "
    "o.status IN ('planning', 'applying')))";
constexpr std::string_view kStartNext =
    "UPDATE driftless.runs SET status = $2, started_at = $3 WHERE id = (SELECT id FROM "
    "driftless.runs WHERE env = $1 AND status = 'queued' ORDER BY id LIMIT 1 FOR UPDATE) AND "
    "NOT EXISTS (SELECT 1 FROM driftless.runs WHERE env = $1 AND status IN ('planning', "
    "'applying')) RETURNING " DL_RUN_COLUMNS;
constexpr std::string_view kRequestCancel =
    "UPDATE driftless.runs SET cancel_requested_at = $2 WHERE id = $1 AND status IN "
    "('planning', 'applying') RETURNING env";
constexpr std::string_view kCancelRequests =
    "SELECT id FROM driftless.runs WHERE ($1 = '' OR env = $1) AND status IN ('planning', "
    "'applying') AND cancel_requested_at > 0 ORDER BY id";
// DL_RUN_COLUMNS, with the plans only when $5 says so.
constexpr std::string_view kListRuns =
    "SELECT id, env, action, status, \"commit\", plan_hash, CASE WHEN $5 THEN plan_text ELSE '' "
    "END, CASE WHEN $5 THEN plan_json ELSE '' END, author, created_at, started_at, finished_at, "
    "message, apply_id FROM driftless.runs WHERE ($1 = '' OR env = $1) AND "
    "(cardinality($2::text[]) = 0 OR status = ANY($2::text[])) AND ($3 = 0 OR id < $3) ORDER BY "
    "id DESC LIMIT $4";
#undef DL_RUN_COLUMNS

constexpr std::string_view kAddApproval =
    "INSERT INTO driftless.approvals (run_id, who, plan_hash, decision, comment, created_at) "
    "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (run_id, who) DO NOTHING";
constexpr std::string_view kListApprovals =
    "SELECT run_id, plan_hash, who, decision, comment, created_at FROM driftless.approvals "
    "WHERE run_id = $1 ORDER BY created_at, who";

#define DL_TOKEN_COLUMNS \
  "SELECT name, role, envs, hash, created_by, created_at, expires_at, revoked_at, rights FROM "
constexpr std::string_view kInsertToken =
    "INSERT INTO driftless.tokens (hash, name, role, envs, created_by, created_at, expires_at, "
    "rights) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
constexpr std::string_view kLiveTokenNamed =
    "SELECT 1 FROM driftless.tokens WHERE name = $1 AND revoked_at = 0";
constexpr std::string_view kFindToken = DL_TOKEN_COLUMNS "driftless.tokens WHERE hash = $1";
constexpr std::string_view kListTokens =
    DL_TOKEN_COLUMNS "driftless.tokens ORDER BY name, created_at, hash";
// Revoking a token ends its browser sessions in the same statement.
constexpr std::string_view kRevokeToken =
    "WITH revoked AS (UPDATE driftless.tokens SET revoked_at = $2 WHERE name = $1 AND "
    "revoked_at = 0 RETURNING hash), ended AS (DELETE FROM driftless.sessions WHERE token_hash "
    "IN (SELECT hash FROM revoked)) SELECT count(*) FROM revoked";
#undef DL_TOKEN_COLUMNS

constexpr std::string_view kInsertSession =
    "INSERT INTO driftless.sessions (hash, token_hash, csrf, created_at, expires_at) VALUES ($1, "
    "$2, $3, $4, $5) ON CONFLICT (hash) DO NOTHING";
constexpr std::string_view kFindSession =
    "SELECT hash, token_hash, csrf, created_at, expires_at FROM driftless.sessions WHERE hash = "
    "$1";
constexpr std::string_view kDeleteSession = "DELETE FROM driftless.sessions WHERE hash = $1";
constexpr std::string_view kPruneSessions = "DELETE FROM driftless.sessions WHERE expires_at < $1";

constexpr std::string_view kAppendAudit =
    "INSERT INTO driftless.audit (time, who, action, env, run_id, plan_hash, result, reason, "
    "request_id, subject) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id";
constexpr std::string_view kListAudit =
    "SELECT id, time, who, action, env, run_id, plan_hash, result, reason, request_id, subject "
    "FROM "
    "driftless.audit WHERE ($1 = '' OR env = $1) AND ($2 = '' OR who = $2) AND ($3 = 0 OR id < "
    "$3) ORDER BY id DESC LIMIT $4";

// Any constant: the key of the advisory lock that orders event appends (0x44724576, "DrEv").
constexpr const char* kEventLock = "SELECT pg_advisory_xact_lock(1148339574)";
constexpr std::string_view kAppendEvent =
    "INSERT INTO driftless.events (type, env, payload_json, time) VALUES ($1, $2, $3, $4) "
    "RETURNING id";
constexpr std::string_view kEnqueueDelivery =
    "INSERT INTO driftless.outbox (sink, env, event_type, event_id, subject, event_json, "
    "created_at, next_attempt_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
constexpr std::string_view kEventsAfter =
    "SELECT id, type, env, payload_json, time FROM driftless.events WHERE id > $1 AND ($2 = '' "
    "OR env = $2) AND (cardinality($3::text[]) = 0 OR type = ANY($3::text[])) ORDER BY id LIMIT "
    "$4";
constexpr std::string_view kLatestEvent =
    "SELECT greatest(coalesce((SELECT max(id) FROM driftless.events), 0), pruned_through) FROM "
    "driftless.event_retention";
constexpr char kListenEvents[] = "LISTEN driftless_events";
constexpr std::string_view kNotify = "SELECT pg_notify($1, $2)";
constexpr std::string_view kPruneEvents =
    "WITH last AS (SELECT coalesce(max(id), 0) AS id FROM driftless.events WHERE time < $1), "
    "gone AS (DELETE FROM driftless.events WHERE id <= (SELECT id FROM last) RETURNING 1), "
    "marked AS (UPDATE driftless.event_retention SET pruned_through = greatest(pruned_through, "
    "(SELECT id FROM last)) RETURNING 1) SELECT count(*) FROM gone";
constexpr std::string_view kPrunedThrough = "SELECT pruned_through FROM driftless.event_retention";

constexpr std::string_view kRememberDelivery =
    "INSERT INTO driftless.webhook_deliveries (source, id, seen_at) VALUES ($1, $2, $3) ON "
    "CONFLICT (source, id) DO NOTHING";
constexpr std::string_view kPruneDeliveries =
    "DELETE FROM driftless.webhook_deliveries WHERE seen_at < $1";

Run ReadRun(const Rows& r, int i) {
  Run run;
  run.id = r.Int(i, 0);
  run.environment = r.Text(i, 1);
  run.action = r.Text(i, 2);
  run.status = r.Text(i, 3);
  run.commit = r.Text(i, 4);
  run.plan_hash = r.Text(i, 5);
  run.plan_text = r.Text(i, 6);
  run.plan_json = r.Text(i, 7);
  run.author = r.Text(i, 8);
  run.created_at = r.Int(i, 9);
  run.started_at = r.Int(i, 10);
  run.finished_at = r.Int(i, 11);
  run.message = r.Text(i, 12);
  run.apply_id = r.Int(i, 13);
  return run;
}

Token ReadToken(const Rows& r, int i) {
  Token t;
  t.name = r.Text(i, 0);
  t.role = r.Text(i, 1);
  t.envs = r.Text(i, 2);
  t.hash = r.Text(i, 3);
  t.created_by = r.Text(i, 4);
  t.created_at = r.Int(i, 5);
  t.expires_at = r.Int(i, 6);
  t.revoked_at = r.Int(i, 7);
  t.rights = r.Text(i, 8);
  return t;
}

Params& AddOptional(Params& p, const std::optional<std::string>& v) {
  return v ? p.Add(*v) : p.Null();
}

// The first page of `rows` (at most n, read with limit n + 1) and the cursor after it.
template <typename T, typename Read>
Page<T> MakePage(const Rows& rows, int n, Read read) {
  Page<T> page;
  for (int i = 0; i < rows.size() && i < n; ++i) page.items.push_back(read(rows, i));
  if (rows.size() > n) page.next_cursor = page.items.back().id;
  return page;
}

}  // namespace

// --- runs ---

Result<EnqueuedRun> PostgresStateStore::EnqueueRun(const Run& run, bool supersede) {
  if (Status s = CheckNewRun(run); !s.ok()) return s.error();
  const std::string what = "queue a run of environment " + run.environment;
  Result<Transaction> txn = Transaction::Write(*c_, what);
  if (!txn.ok()) return txn.error();
  Result<EnqueuedRun> out = InsertQueuedRun(run, supersede, what);
  if (!out.ok()) return out.error();
  if (Status s = txn->Commit(what); !s.ok()) return s.error();
  return out;
}

Result<std::optional<EnqueuedRun>> PostgresStateStore::EnqueueRunUnlessCovered(const Run& run) {
  if (Status s = CheckNewRun(run); !s.ok()) return s.error();
  const std::string what = "queue a run of environment " + run.environment;
  Result<Transaction> txn = Transaction::Write(*c_, what);
  if (!txn.ok()) return txn.error();
  // Held to the commit: a second caller reads the newest run only once the first's is in.
  if (Result<Rows> r = c_->Exec(kLockRunQueue, Params().Add(run.environment), what); !r.ok()) {
    return r.error();
  }
  Result<bool> covered = NewestRunCovers(*this, run.environment, run.commit);  // in it
  if (!covered.ok()) return covered.error();
  if (*covered) return std::optional<EnqueuedRun>();  // rolled back: nothing was written
  Result<EnqueuedRun> out = InsertQueuedRun(run, true, what);
  if (!out.ok()) return out.error();
  if (Status s = txn->Commit(what); !s.ok()) return s.error();
  return std::optional<EnqueuedRun>(std::move(*out));
}

Result<EnqueuedRun> PostgresStateStore::InsertQueuedRun(const Run& run, bool supersede,
                                                        const std::string& what) {
  EnqueuedRun out;
  out.run = QueuedRun(run, NowUnix());
  Params p;
  p.Add(run.environment).Add(run.action).Add(run.commit).Add(run.plan_hash).Add(run.plan_text);
  p.Add(run.plan_json).Add(run.author).Add(out.run.created_at);
  Result<Rows> inserted = c_->Exec(kInsertRun, p, what);
  if (!inserted.ok()) return inserted.error();
  out.run.id = inserted->Int(0, 0);
  if (supersede && (run.action == "plan" || run.action == "apply")) {
    Params q;
    q.Add(run.environment).Add(out.run.id).Add(run.commit).Add(out.run.created_at);
    q.Add("superseded by run " + std::to_string(out.run.id));
    Result<Rows> gone = c_->Exec(kSupersede, q, what);
    if (!gone.ok()) return gone.error();
    for (int i = 0; i < gone->size(); ++i) out.superseded.push_back(gone->Int(i, 0));
    std::sort(out.superseded.begin(), out.superseded.end());
  }
  // Sent at the commit, with the row: a listener never hears of a run it cannot read yet.
  Params n;
  n.Add(pg_detail::PgChannel(kRunsChannel)).Add(run.environment);
  if (Result<Rows> r = c_->Exec(kNotify, n, what); !r.ok()) return r.error();
  return out;
}

Result<std::optional<Run>> PostgresStateStore::GetRun(int64_t id) {
  Result<Rows> r = c_->Exec(kGetRun, Params().Add(id), "read run " + std::to_string(id));
  if (!r.ok()) return r.error();
  if (r->empty()) return std::optional<Run>();
  return std::optional<Run>(ReadRun(*r, 0));
}

Result<std::optional<std::string>> PostgresStateStore::RunEnvironment(int64_t id,
                                                                      const std::string& what) {
  Result<Rows> r = c_->Exec(kRunEnvironment, Params().Add(id), what);
  if (!r.ok()) return r.error();
  if (r->empty()) return std::optional<std::string>();
  return std::optional<std::string>(r->Text(0, 0));
}

Result<bool> PostgresStateStore::TransitionRun(int64_t id, const std::string& from,
                                               const std::string& to, const RunUpdate& update) {
  if (Status s = CheckRunTransition(id, from, to); !s.ok()) return s.error();
  const std::string what = "move run " + std::to_string(id) + " from " + from + " to " + to;
  Params p;
  p.Add(id).Add(from).Add(to);
  AddOptional(p, update.plan_hash);
  AddOptional(p, update.plan_text);
  AddOptional(p, update.plan_json);
  AddOptional(p, update.message);
  if (update.apply_id) {
    p.Add(*update.apply_id);
  } else {
    p.Null();
  }
  p.Add(NowUnix()).Add(IsFinalRunStatus(to) ? "true" : "false");
  // Fenced (SetRunFence): the ownership row stays locked until the write commits, so a takeover
  // waits for it, and a write after a takeover sees the new token and fails.
  std::optional<Transaction> txn;
  if (!fence_env_.empty()) {
    Result<Transaction> t = Transaction::Write(*c_, what);
    if (!t.ok()) return t.error();
    txn.emplace(std::move(*t));
    Result<std::optional<std::string>> env = RunEnvironment(id, what);
    if (!env.ok()) return env.error();
    if (*env) {
      if (Status s = CheckOwnerFence(**env, what); !s.ok()) return s.error();
    }
  }
  Result<Rows> r = c_->Exec(kTransition, p, what);
  if (!r.ok()) {
    // Another server made another run of the environment active between our check and write.
    if (c_->last_sqlstate() == kUniqueViolation) return false;
    return r.error();
  }
  if (txn) {
    if (Status s = txn->Commit(what); !s.ok()) return s.error();
  }
  if (r->affected() == 1) return true;
  Result<std::optional<std::string>> env = RunEnvironment(id, what);
  if (!env.ok()) return env.error();
  if (!*env) return MakeError("cannot " + what + ": there is no run " + std::to_string(id));
  return false;
}

Result<std::optional<Run>> PostgresStateStore::StartNextRun(const std::string& env,
                                                            const std::string& to) {
  if (Status s = CheckStartStatus(env, to); !s.ok()) return s.error();
  const std::string what = "start the next run of environment " + env;
  std::optional<Transaction> txn;
  if (Status s = BeginFenced(env, what, txn); !s.ok()) return s.error();
  Result<Rows> r = c_->Exec(kStartNext, Params().Add(env).Add(to).Add(NowUnix()), what);
  if (!r.ok()) {
    if (c_->last_sqlstate() == kUniqueViolation) return std::optional<Run>();
    return r.error();
  }
  if (txn) {
    if (Status s = txn->Commit(what); !s.ok()) return s.error();
  }
  if (r->empty()) return std::optional<Run>();
  return std::optional<Run>(ReadRun(*r, 0));
}

Result<std::optional<Run>> PostgresStateStore::StartRun(const Run& run, const std::string& to) {
  if (Status s = CheckNewRun(run); !s.ok()) return s.error();
  if (Status s = CheckStartStatus(run.environment, to); !s.ok()) return s.error();
  Params p;
  p.Add(run.environment).Add(run.action).Add(to).Add(run.commit).Add(run.plan_hash);
  p.Add(run.plan_text).Add(run.plan_json).Add(run.author).Add(NowUnix());
  const std::string what = "start a run of environment " + run.environment;
  std::optional<Transaction> txn;
  if (fence_env_ == run.environment) {
    Result<Transaction> t = Transaction::Write(*c_, what);
    if (!t.ok()) return t.error();
    txn.emplace(std::move(*t));
    if (Status s = CheckOwnerFence(run.environment, what); !s.ok()) return s.error();
  }
  Result<Rows> r = c_->Exec(kInsertStartedRun, p, what);
  if (!r.ok()) {
    // Another server made a run of the environment active between the check and the insert.
    if (c_->last_sqlstate() == kUniqueViolation) return std::optional<Run>();
    return r.error();
  }
  if (txn) {
    if (Status s = txn->Commit(what); !s.ok()) return s.error();
  }
  if (r->empty()) return std::optional<Run>();
  return std::optional<Run>(ReadRun(*r, 0));
}

Result<bool> PostgresStateStore::RequestCancel(int64_t id) {
  const std::string what = "ask for the cancel of run " + std::to_string(id);
  Result<Transaction> txn = Transaction::Write(*c_, what);
  if (!txn.ok()) return txn.error();
  Result<Rows> r = c_->Exec(kRequestCancel, Params().Add(id).Add(NowUnix()), what);
  if (!r.ok()) return r.error();
  if (r->empty()) {
    Result<std::optional<std::string>> env = RunEnvironment(id, what);
    if (!env.ok()) return env.error();
    if (!*env) return MakeError("cannot " + what + ": there is no run " + std::to_string(id));
    return false;  // not active (the transaction ends with nothing written)
  }
  // Sent at the commit, with the request: its runner reads it when it hears of it.
  Params n;
  n.Add(pg_detail::PgChannel(kRunsChannel)).Add(r->Text(0, 0));
  if (Result<Rows> sent = c_->Exec(kNotify, n, what); !sent.ok()) return sent.error();
  if (Status s = txn->Commit(what); !s.ok()) return s.error();
  return true;
}

Result<std::vector<int64_t>> PostgresStateStore::CancelRequests(const std::string& env) {
  Result<Rows> r = c_->Exec(kCancelRequests, Params().Add(env), "read the cancel requests");
  if (!r.ok()) return r.error();
  std::vector<int64_t> out;
  for (int i = 0; i < r->size(); ++i) out.push_back(r->Int(i, 0));
  return out;
}

Result<Page<Run>> PostgresStateStore::ListRuns(const RunFilter& filter, int64_t cursor, int limit) {
  const std::string what = filter.environment.empty()
                               ? std::string("list runs")
                               : "list the runs of environment " + filter.environment;
  const int n = PageLimit(limit);
  Params p;
  p.Add(filter.environment).Add(EncodeTextArray(filter.statuses));
  p.Add(cursor < 0 ? int64_t{0} : cursor).Add(int64_t{n} + 1).Add(filter.plans ? "t" : "f");
  Result<Rows> r = c_->Exec(kListRuns, p, what);
  if (!r.ok()) return r.error();
  return MakePage<Run>(*r, n, ReadRun);
}

// --- approvals ---

Result<bool> PostgresStateStore::AddApproval(const Approval& a) {
  if (Status s = CheckApproval(a); !s.ok()) return s.error();
  const std::string what = "record " + a.who + "'s decision on run " + std::to_string(a.run_id);
  Params p;
  p.Add(a.run_id).Add(a.who).Add(a.plan_hash).Add(a.decision).Add(a.comment);
  p.Add(a.created_at > 0 ? a.created_at : NowUnix());
  Result<Rows> r = c_->Exec(kAddApproval, p, what);
  if (!r.ok()) {
    if (c_->last_sqlstate() == kForeignKeyViolation) {
      return MakeError("cannot " + what + ": there is no such run");
    }
    return r.error();
  }
  return r->affected() == 1;
}

Result<std::vector<Approval>> PostgresStateStore::ListApprovals(int64_t run_id) {
  Result<Rows> r = c_->Exec(kListApprovals, Params().Add(run_id),
                            "list the decisions on run " + std::to_string(run_id));
  if (!r.ok()) return r.error();
  std::vector<Approval> out;
  for (int i = 0; i < r->size(); ++i) {
    Approval a;
    a.run_id = r->Int(i, 0);
    a.plan_hash = r->Text(i, 1);
    a.who = r->Text(i, 2);
    a.decision = r->Text(i, 3);
    a.comment = r->Text(i, 4);
    a.created_at = r->Int(i, 5);
    out.push_back(std::move(a));
  }
  return out;
}

// --- tokens ---

Status PostgresStateStore::CreateToken(const Token& t) {
  if (Status s = CheckToken(t); !s.ok()) return s;
  const std::string what = "store token " + t.name;
  Params p;
  p.Add(t.hash).Add(t.name).Add(t.role).Add(t.envs).Add(t.created_by);
  p.Add(t.created_at > 0 ? t.created_at : NowUnix()).Add(t.expires_at).Add(t.rights);
  Result<Rows> r = c_->Exec(kInsertToken, p, what);
  if (r.ok()) return Status::Ok();
  if (c_->last_sqlstate() != kUniqueViolation) return r.error();
  Result<Rows> named = c_->Exec(kLiveTokenNamed, Params().Add(t.name), what);
  if (!named.ok()) return named.error();
  if (!named->empty()) return MakeError(TokenExistsMessage(t.name));
  return MakeError("cannot " + what + ": its hash is known already");
}

Result<std::optional<Token>> PostgresStateStore::FindTokenByHash(const std::string& hash) {
  Result<Rows> r = c_->Exec(kFindToken, Params().Add(hash), "look a token up");
  if (!r.ok()) return r.error();
  if (r->empty()) return std::optional<Token>();
  return std::optional<Token>(ReadToken(*r, 0));
}

Result<std::vector<Token>> PostgresStateStore::ListTokens() {
  Result<Rows> r = c_->Exec(kListTokens, "list tokens");
  if (!r.ok()) return r.error();
  std::vector<Token> out;
  for (int i = 0; i < r->size(); ++i) out.push_back(ReadToken(*r, i));
  return out;
}

Result<bool> PostgresStateStore::RevokeToken(const std::string& name, int64_t now) {
  Result<Rows> r = c_->Exec(kRevokeToken, Params().Add(name).Add(now > 0 ? now : NowUnix()),
                            "revoke token " + name);
  if (!r.ok()) return r.error();
  return r->size() == 1 && r->Int(0, 0) > 0;
}

// --- browser sessions ---

Status PostgresStateStore::CreateSession(const Session& session) {
  if (Status s = CheckSession(session); !s.ok()) return s;
  Params p;
  p.Add(session.hash).Add(session.token_hash).Add(session.csrf);
  p.Add(session.created_at).Add(session.expires_at);
  Result<Rows> r = c_->Exec(kInsertSession, p, "store a session");
  if (!r.ok()) return r.error();
  if (r->affected() == 0) return MakeError("cannot store a session: its hash is known already");
  return Status::Ok();
}

Result<std::optional<Session>> PostgresStateStore::FindSessionByHash(const std::string& hash) {
  Result<Rows> r = c_->Exec(kFindSession, Params().Add(hash), "look a session up");
  if (!r.ok()) return r.error();
  if (r->empty()) return std::optional<Session>();
  Session s;
  s.hash = r->Text(0, 0);
  s.token_hash = r->Text(0, 1);
  s.csrf = r->Text(0, 2);
  s.created_at = r->Int(0, 3);
  s.expires_at = r->Int(0, 4);
  return std::optional<Session>(std::move(s));
}

Result<bool> PostgresStateStore::DeleteSession(const std::string& hash) {
  Result<Rows> r = c_->Exec(kDeleteSession, Params().Add(hash), "end a session");
  if (!r.ok()) return r.error();
  return r->affected() > 0;
}

Result<int64_t> PostgresStateStore::PruneSessions(int64_t before) {
  Result<Rows> r = c_->Exec(kPruneSessions, Params().Add(before), "forget expired sessions");
  if (!r.ok()) return r.error();
  return r->affected();
}

// --- audit ---

Result<int64_t> PostgresStateStore::AppendAudit(const AuditEntry& e) {
  if (Status s = CheckAudit(e); !s.ok()) return s.error();
  Params p;
  p.Add(e.time > 0 ? e.time : NowUnix()).Add(e.who).Add(e.action).Add(e.environment);
  p.Add(e.run_id).Add(e.plan_hash).Add(e.result).Add(e.reason).Add(e.request_id).Add(e.subject);
  Result<Rows> r = c_->Exec(kAppendAudit, p, "append " + e.action + " to the audit log");
  if (!r.ok()) return r.error();
  return r->Int(0, 0);
}

Result<Page<AuditEntry>> PostgresStateStore::ListAudit(const AuditFilter& filter, int64_t cursor,
                                                       int limit) {
  const int n = PageLimit(limit);
  Params p;
  p.Add(filter.environment).Add(filter.who).Add(cursor < 0 ? int64_t{0} : cursor);
  p.Add(int64_t{n} + 1);
  Result<Rows> r = c_->Exec(kListAudit, p, "read the audit log");
  if (!r.ok()) return r.error();
  return MakePage<AuditEntry>(*r, n, [](const Rows& rows, int i) {
    AuditEntry e;
    e.id = rows.Int(i, 0);
    e.time = rows.Int(i, 1);
    e.who = rows.Text(i, 2);
    e.action = rows.Text(i, 3);
    e.environment = rows.Text(i, 4);
    e.run_id = rows.Int(i, 5);
    e.plan_hash = rows.Text(i, 6);
    e.result = rows.Text(i, 7);
    e.reason = rows.Text(i, 8);
    e.request_id = rows.Text(i, 9);
    e.subject = rows.Text(i, 10);
    return e;
  });
}

// --- events ---

Result<int64_t> PostgresStateStore::AppendEvent(const EventRecord& event,
                                                const std::vector<OutboxEntry>& deliveries) {
  const std::string what = "record event " + event.type;
  Result<Transaction> txn = Transaction::Write(*c_, what);
  if (!txn.ok()) return txn.error();
  // Held to the commit: ids become visible in the order they are drawn.
  if (Status s = c_->Script(kEventLock, what); !s.ok()) return s.error();
  const int64_t now = NowUnix();
  Params p;
  p.Add(event.type).Add(event.environment).Add(event.payload_json);
  p.Add(event.time > 0 ? event.time : now);
  Result<Rows> r = c_->Exec(kAppendEvent, p, what);
  if (!r.ok()) return r.error();
  const int64_t id = r->Int(0, 0);
  for (const OutboxEntry& e : deliveries) {
    Params q;
    q.Add(e.sink).Add(e.environment).Add(e.event_type).Add(e.event_id).Add(e.subject);
    q.Add(e.event_json).Add(e.created_at > 0 ? e.created_at : now).Add(e.next_attempt_at);
    Result<Rows> d = c_->Exec(kEnqueueDelivery, q, what);
    if (!d.ok()) return d.error();
  }
  if (Status s = txn->Commit(what); !s.ok()) return s.error();
  return id;
}

Result<std::vector<EventRecord>> PostgresStateStore::EventsAfter(int64_t after_id,
                                                                 const EventFilter& filter,
                                                                 int limit) {
  Params p;
  p.Add(after_id).Add(filter.environment).Add(EncodeTextArray(filter.types));
  p.Add(int64_t{PageLimit(limit, kDefaultEventBatch, kDefaultEventBatch * 10)});
  Result<Rows> r = c_->Exec(kEventsAfter, p, "read the events after " + std::to_string(after_id));
  if (!r.ok()) return r.error();
  std::vector<EventRecord> out;
  for (int i = 0; i < r->size(); ++i) {
    EventRecord e;
    e.id = r->Int(i, 0);
    e.type = r->Text(i, 1);
    e.environment = r->Text(i, 2);
    e.payload_json = r->Text(i, 3);
    e.time = r->Int(i, 4);
    out.push_back(std::move(e));
  }
  return out;
}

Result<int64_t> PostgresStateStore::LatestEventId() {
  Result<Rows> r = c_->Exec(kLatestEvent, "read the newest event id");
  if (!r.ok()) return r.error();
  return r->empty() ? 0 : r->Int(0, 0);
}

Result<bool> PostgresStateStore::WaitForEvents(int64_t after_id, int timeout_ms) {
  // LISTEN before the first look: an event appended between the look and the wait still wakes.
  if (!listening_events_) {
    if (Status s = c_->Listen(kListenEvents, "wait for events"); !s.ok()) return s.error();
    listening_events_ = true;
  }
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(std::max(timeout_ms, 0));
  for (;;) {
    Result<int64_t> latest = LatestEventId();
    if (!latest.ok()) return latest.error();
    if (*latest > after_id) return true;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    // Any notification (an event, or a lock released on this connection's other channel) is
    // followed by another look.
    Result<bool> woken = c_->WaitForNotification(static_cast<int>(left.count()));
    if (!woken.ok()) return woken.error();
  }
}

Result<int64_t> PostgresStateStore::PruneEvents(int64_t before) {
  Result<Rows> r = c_->Exec(kPruneEvents, Params().Add(before), "prune old events");
  if (!r.ok()) return r.error();
  return r->Int(0, 0);
}

Result<bool> PostgresStateStore::EventIdPastRetention(int64_t last_id) {
  Result<Rows> r = c_->Exec(kPrunedThrough, "read the event retention");
  if (!r.ok()) return r.error();
  return !r->empty() && last_id < r->Int(0, 0);
}

// --- change notifications ---

Result<std::unique_ptr<ChangeListener>> PostgresStateStore::Listen(
    const std::vector<std::string>& channels) {
  for (const std::string& c : channels) {
    if (Status s = CheckChannelName(c); !s.ok()) return s.error();
  }
  Result<std::unique_ptr<pg_detail::PgListener>> l =
      pg_detail::PgListener::Open(location_, location(), channels);
  if (!l.ok()) return l.error();
  return std::unique_ptr<ChangeListener>(std::move(*l));
}

Status PostgresStateStore::Notify(const std::string& channel, const std::string& payload) {
  if (Status s = CheckChannelName(channel); !s.ok()) return s;
  if (Status s = CheckNotificationPayload(channel, payload); !s.ok()) return s;
  Params p;
  p.Add(pg_detail::PgChannel(channel)).Add(payload);
  Result<Rows> r = c_->Exec(kNotify, p, "notify channel " + channel);
  if (!r.ok()) return r.error();
  return Status::Ok();
}

// --- webhook deliveries ---

Result<bool> PostgresStateStore::RememberDelivery(const std::string& source, const std::string& id,
                                                  int64_t now) {
  Result<Rows> r =
      c_->Exec(kRememberDelivery, Params().Add(source).Add(id).Add(now > 0 ? now : NowUnix()),
               "remember " + source + " delivery " + id);
  if (!r.ok()) return r.error();
  return r->affected() == 1;
}

Result<int64_t> PostgresStateStore::PruneDeliveries(int64_t before) {
  Result<Rows> r =
      c_->Exec(kPruneDeliveries, Params().Add(before), "forget old webhook deliveries");
  if (!r.ok()) return r.error();
  return r->affected();
}

}  // namespace driftless::state
