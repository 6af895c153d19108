// The controller's records (state/control_store.h) in SQLite: runs, approvals, tokens, the
// audit log, the event log and webhook deliveries. Every write is one BEGIN IMMEDIATE
// transaction, so a check followed by a write inside it cannot race with another process.

#include <algorithm>
#include <chrono>
#include <memory>
#include <thread>
#include <utility>

#include "base/identity.h"
#include "state/control_common.h"
#include "state/local_channels.h"
#include "state/sqlite/sqlite_db.h"
#include "state/sqlite/sqlite_state_store.h"
#include "state/sqlite/string_list.h"

namespace driftless::state {

using sqlite_detail::Database;
using sqlite_detail::EncodeStringList;
using sqlite_detail::Stmt;
using sqlite_detail::Transaction;

namespace {

// How often WaitForEvents looks again: SQLite has no notifications between processes.
constexpr std::chrono::milliseconds kEventPoll(50);

#define DL_RUN_COLUMNS                                                                    \
  "SELECT id, env, action, status, \"commit\", plan_hash, plan_text, plan_json, author, " \
  "created_at, started_at, finished_at, message, apply_id FROM runs "
constexpr const char* kInsertRun =
    "INSERT INTO runs (env, action, status, \"commit\", plan_hash, plan_text, plan_json, author, "
    "created_at) VALUES (?1, ?2, 'queued', ?3, ?4, ?5, ?6, ?7, ?8)";
constexpr const char* kInsertStartedRun =
    "INSERT INTO runs (env, action, status, \"commit\", plan_hash, plan_text, plan_json, author, "
    "created_at, started_at) SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9 WHERE NOT EXISTS "
    "(SELECT 1 FROM runs WHERE env = ?1 AND status IN ('planning', 'applying'))";
constexpr const char* kSupersedable =
    "SELECT id FROM runs WHERE env = ?1 AND id != ?2 AND action IN ('plan', 'apply') AND status "
    "IN ('queued', 'planned', 'awaiting_approval') AND \"commit\" != ?3 ORDER BY id";
constexpr const char* kSupersede =
    "UPDATE runs SET status = 'superseded', finished_at = ?2, started_at = CASE WHEN started_at "
    "= 0 THEN ?2 ELSE started_at END, message = ?3 WHERE id = ?1";
constexpr const char* kGetRun = DL_RUN_COLUMNS "WHERE id = ?1";
constexpr const char* kActiveOther =
    "SELECT id FROM runs WHERE env = ?1 AND id != ?2 AND status IN ('planning', 'applying')";
constexpr const char* kTransition =
    "UPDATE runs SET status = ?3, plan_hash = coalesce(?4, plan_hash), plan_text = "
    "coalesce(?5, plan_text), plan_json = coalesce(?6, plan_json), message = coalesce(?7, "
    "message), apply_id = coalesce(?8, apply_id), started_at = CASE WHEN started_at = 0 AND ?3 "
    "!= 'queued' THEN ?9 ELSE started_at END, finished_at = CASE WHEN ?10 THEN ?9 ELSE "
    "finished_at END WHERE id = ?1 AND status = ?2";
constexpr const char* kOldestQueued =
    "SELECT id FROM runs WHERE env = ?1 AND status = 'queued' ORDER BY id LIMIT 1";
constexpr const char* kRequestCancel =
    "UPDATE runs SET cancel_requested_at = ?2 WHERE id = ?1 AND status IN ('planning', "
    "'applying') RETURNING env";
constexpr const char* kCancelRequests =
    "SELECT id FROM runs WHERE (?1 = '' OR env = ?1) AND status IN ('planning', 'applying') AND "
    "cancel_requested_at > 0 ORDER BY id";
// DL_RUN_COLUMNS, with the plans only when ?5 says so.
constexpr const char* kListRuns =
    "SELECT id, env, action, status, \"commit\", plan_hash, CASE WHEN ?5 THEN plan_text ELSE '' "
    "END, CASE WHEN ?5 THEN plan_json ELSE '' END, author, created_at, started_at, finished_at, "
    "message, apply_id FROM runs WHERE (?1 = '' OR env = ?1) AND (?2 = '[]' OR status IN (SELECT "
    "value FROM json_each(?2))) AND (?3 = 0 OR id < ?3) ORDER BY id DESC LIMIT ?4";
#undef DL_RUN_COLUMNS

constexpr const char* kAddApproval =
    "INSERT INTO approvals (run_id, who, plan_hash, decision, comment, created_at) VALUES (?1, "
    "?2, ?3, ?4, ?5, ?6) ON CONFLICT (run_id, who) DO NOTHING";
constexpr const char* kRunExists = "SELECT 1 FROM runs WHERE id = ?1";
constexpr const char* kListApprovals =
    "SELECT run_id, plan_hash, who, decision, comment, created_at FROM approvals WHERE run_id = "
    "?1 ORDER BY created_at, who";

#define DL_TOKEN_COLUMNS                                                                        \
  "SELECT name, role, envs, hash, created_by, created_at, expires_at, revoked_at, rights FROM " \
  "tokens "
constexpr const char* kLiveTokenNamed = "SELECT 1 FROM tokens WHERE name = ?1 AND revoked_at = 0";
constexpr const char* kTokenHashed = "SELECT 1 FROM tokens WHERE hash = ?1";
constexpr const char* kInsertToken =
    "INSERT INTO tokens (hash, name, role, envs, created_by, created_at, expires_at, rights) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
constexpr const char* kFindToken = DL_TOKEN_COLUMNS "WHERE hash = ?1";
constexpr const char* kListTokens = DL_TOKEN_COLUMNS "ORDER BY name, created_at, hash";
constexpr const char* kRevokeToken =
    "UPDATE tokens SET revoked_at = ?2 WHERE name = ?1 AND revoked_at = 0";
// Revoking a token ends its browser sessions in the same transaction.
constexpr const char* kEndRevokedSessions =
    "DELETE FROM sessions WHERE token_hash IN (SELECT hash FROM tokens WHERE name = ?1 AND "
    "revoked_at = ?2)";
#undef DL_TOKEN_COLUMNS

constexpr const char* kInsertSession =
    "INSERT INTO sessions (hash, token_hash, csrf, created_at, expires_at) VALUES (?1, ?2, ?3, "
    "?4, ?5) ON CONFLICT (hash) DO NOTHING";
constexpr const char* kFindSession =
    "SELECT hash, token_hash, csrf, created_at, expires_at FROM sessions WHERE hash = ?1";
constexpr const char* kDeleteSession = "DELETE FROM sessions WHERE hash = ?1";
constexpr const char* kPruneSessions = "DELETE FROM sessions WHERE expires_at < ?1";

constexpr const char* kAppendAudit =
    "INSERT INTO audit (time, who, action, env, run_id, plan_hash, result, reason, request_id, "
    "subject) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";
constexpr const char* kListAudit =
    "SELECT id, time, who, action, env, run_id, plan_hash, result, reason, request_id, subject "
    "FROM audit "
    "WHERE (?1 = '' OR env = ?1) AND (?2 = '' OR who = ?2) AND (?3 = 0 OR id < ?3) ORDER BY id "
    "DESC LIMIT ?4";

constexpr const char* kAppendEvent =
    "INSERT INTO events (type, env, payload_json, time) VALUES (?1, ?2, ?3, ?4)";
constexpr const char* kEnqueueDelivery =
    "INSERT INTO outbox (sink, env, event_type, event_id, subject, event_json, created_at, "
    "next_attempt_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
constexpr const char* kEventsAfter =
    "SELECT id, type, env, payload_json, time FROM events WHERE id > ?1 AND (?2 = '' OR env = ?2) "
    "AND (?3 = '[]' OR type IN (SELECT value FROM json_each(?3))) ORDER BY id LIMIT ?4";
constexpr const char* kLatestEvent =
    "SELECT max(coalesce((SELECT max(id) FROM events), 0), pruned_through) FROM event_retention";
constexpr const char* kPrunedThrough = "SELECT pruned_through FROM event_retention";
constexpr const char* kLastBefore = "SELECT max(id) FROM events WHERE time < ?1";
constexpr const char* kPruneEvents = "DELETE FROM events WHERE id <= ?1";
constexpr const char* kMarkPruned =
    "UPDATE event_retention SET pruned_through = max(pruned_through, ?1)";

constexpr const char* kRememberDelivery =
    "INSERT INTO webhook_deliveries (source, id, seen_at) VALUES (?1, ?2, ?3) ON CONFLICT "
    "(source, id) DO NOTHING";
constexpr const char* kPruneDeliveries = "DELETE FROM webhook_deliveries WHERE seen_at < ?1";

Run ReadRun(const Stmt& st) {
  Run r;
  r.id = st.Int(0);
  r.environment = st.Text(1);
  r.action = st.Text(2);
  r.status = st.Text(3);
  r.commit = st.Text(4);
  r.plan_hash = st.Text(5);
  r.plan_text = st.Text(6);
  r.plan_json = st.Text(7);
  r.author = st.Text(8);
  r.created_at = st.Int(9);
  r.started_at = st.Int(10);
  r.finished_at = st.Int(11);
  r.message = st.Text(12);
  r.apply_id = st.Int(13);
  return r;
}

Token ReadToken(const Stmt& st) {
  Token t;
  t.name = st.Text(0);
  t.role = st.Text(1);
  t.envs = st.Text(2);
  t.hash = st.Text(3);
  t.created_by = st.Text(4);
  t.created_at = st.Int(5);
  t.expires_at = st.Int(6);
  t.revoked_at = st.Int(7);
  t.rights = st.Text(8);
  return t;
}

// Binds an optional text: NULL (keep the column) when absent.
void BindOptional(Stmt& st, int index, const std::optional<std::string>& v) {
  if (v) st.Bind(index, *v);
}

}  // namespace

// --- runs ---

Result<EnqueuedRun> SqliteStateStore::EnqueueRun(const Run& run, bool supersede) {
  if (Status s = CheckNewRun(run); !s.ok()) return s.error();
  const std::string what = "queue a run of environment " + run.environment;
  Result<Transaction> txn = Transaction::Write(*db_, what);
  if (!txn.ok()) return txn.error();
  EnqueuedRun out;
  out.run = QueuedRun(run, NowUnix());
  {
    Result<Stmt> st = db_->Prepare(kInsertRun);
    if (!st.ok()) return st.error();
    st->Bind(1, run.environment).Bind(2, run.action).Bind(3, run.commit).Bind(4, run.plan_hash);
    st->Bind(5, run.plan_text).Bind(6, run.plan_json).Bind(7, run.author);
    st->Bind(8, out.run.created_at);
    if (Status s = st->Run(what); !s.ok()) return s.error();
    out.run.id = db_->LastInsertId();
  }
  if (supersede && (run.action == "plan" || run.action == "apply")) {
    {
      Result<Stmt> st = db_->Prepare(kSupersedable);
      if (!st.ok()) return st.error();
      st->Bind(1, run.environment).Bind(2, out.run.id).Bind(3, run.commit);
      for (;;) {
        Result<bool> row = st->Step(what);
        if (!row.ok()) return row.error();
        if (!*row) break;
        out.superseded.push_back(st->Int(0));
      }
    }
    const std::string why = "superseded by run " + std::to_string(out.run.id);
    for (int64_t id : out.superseded) {
      Result<Stmt> st = db_->Prepare(kSupersede);
      if (!st.ok()) return st.error();
      st->Bind(1, id).Bind(2, out.run.created_at).Bind(3, why);
      if (Status s = st->Run(what); !s.ok()) return s.error();
    }
  }
  if (Status s = txn->Commit(what); !s.ok()) return s.error();
  PublishLocal(channel_key_, kRunsChannel, run.environment);  // after the commit: readable
  return out;
}

Result<std::optional<Run>> SqliteStateStore::GetRun(int64_t id) {
  const std::string what = "read run " + std::to_string(id);
  Result<Stmt> st = db_->Prepare(kGetRun);
  if (!st.ok()) return st.error();
  st->Bind(1, id);
  Result<bool> row = st->Step(what);
  if (!row.ok()) return row.error();
  if (!*row) return std::optional<Run>();
  return std::optional<Run>(ReadRun(*st));
}

Result<bool> SqliteStateStore::RequestCancel(int64_t id) {
  const std::string what = "ask for the cancel of run " + std::to_string(id);
  std::string env;
  {
    Result<Stmt> st = db_->Prepare(kRequestCancel);
    if (!st.ok()) return st.error();
    st->Bind(1, id).Bind(2, NowUnix());
    Result<bool> row = st->Step(what);
    if (!row.ok()) return row.error();
    if (*row) env = st->Text(0);
  }
  if (env.empty()) {
    Result<std::optional<Run>> run = GetRun(id);
    if (!run.ok()) return run.error();
    if (!*run) return MakeError("cannot " + what + ": there is no run " + std::to_string(id));
    return false;
  }
  PublishLocal(channel_key_, kRunsChannel, env);  // after the commit: readable
  return true;
}

Result<std::vector<int64_t>> SqliteStateStore::CancelRequests(const std::string& env) {
  const std::string what = "read the cancel requests";
  Result<Stmt> st = db_->Prepare(kCancelRequests);
  if (!st.ok()) return st.error();
  st->Bind(1, env);
  std::vector<int64_t> out;
  while (true) {
    Result<bool> row = st->Step(what);
    if (!row.ok()) return row.error();
    if (!*row) break;
    out.push_back(st->Int(0));
  }
  return out;
}

Result<bool> SqliteStateStore::TransitionRun(int64_t id, const std::string& from,
                                             const std::string& to, const RunUpdate& update) {
  if (Status s = CheckRunTransition(id, from, to); !s.ok()) return s.error();
  const std::string what = "move run " + std::to_string(id) + " from " + from + " to " + to;
  Result<Transaction> txn = Transaction::Write(*db_, what);
  if (!txn.ok()) return txn.error();
  std::string env;
  {
    Result<Stmt> st = db_->Prepare(kGetRun);
    if (!st.ok()) return st.error();
    st->Bind(1, id);
    Result<bool> row = st->Step(what);
    if (!row.ok()) return row.error();
    if (!*row) return MakeError("cannot " + what + ": there is no run " + std::to_string(id));
    env = st->Text(1);
  }
  if (IsActiveRunStatus(to)) {
    Result<Stmt> st = db_->Prepare(kActiveOther);
    if (!st.ok()) return st.error();
    st->Bind(1, env).Bind(2, id);
    Result<bool> row = st->Step(what);
    if (!row.ok()) return row.error();
    if (*row) return false;  // another run of the environment is active
  }
  {
    Result<Stmt> st = db_->Prepare(kTransition);
    if (!st.ok()) return st.error();
    st->Bind(1, id).Bind(2, from).Bind(3, to);
    BindOptional(*st, 4, update.plan_hash);
    BindOptional(*st, 5, update.plan_text);
    BindOptional(*st, 6, update.plan_json);
    BindOptional(*st, 7, update.message);
    if (update.apply_id) st->Bind(8, *update.apply_id);
    st->Bind(9, NowUnix()).Bind(10, int64_t{IsFinalRunStatus(to) ? 1 : 0});
    if (Status s = st->Run(what); !s.ok()) return s.error();
  }
  const bool moved = db_->Changes() == 1;
  if (Status s = txn->Commit(what); !s.ok()) return s.error();
  return moved;
}

Result<std::optional<Run>> SqliteStateStore::StartNextRun(const std::string& env,
                                                          const std::string& to) {
  if (Status s = CheckStartStatus(env, to); !s.ok()) return s.error();
  const std::string what = "start the next run of environment " + env;
  int64_t id = 0;
  {
    Result<Transaction> txn = Transaction::Write(*db_, what);
    if (!txn.ok()) return txn.error();
    {
      Result<Stmt> st = db_->Prepare(kActiveOther);
      if (!st.ok()) return st.error();
      st->Bind(1, env).Bind(2, int64_t{0});
      Result<bool> row = st->Step(what);
      if (!row.ok()) return row.error();
      if (*row) return std::optional<Run>();
    }
    {
      Result<Stmt> st = db_->Prepare(kOldestQueued);
      if (!st.ok()) return st.error();
      st->Bind(1, env);
      Result<bool> row = st->Step(what);
      if (!row.ok()) return row.error();
      if (!*row) return std::optional<Run>();
      id = st->Int(0);
    }
    {
      Result<Stmt> st = db_->Prepare(kTransition);
      if (!st.ok()) return st.error();
      st->Bind(1, id).Bind(2, "queued").Bind(3, to).Bind(9, NowUnix()).Bind(10, int64_t{0});
      if (Status s = st->Run(what); !s.ok()) return s.error();
    }
    if (Status s = txn->Commit(what); !s.ok()) return s.error();
  }
  return GetRun(id);
}

Result<std::optional<Run>> SqliteStateStore::StartRun(const Run& run, const std::string& to) {
  if (Status s = CheckNewRun(run); !s.ok()) return s.error();
  if (Status s = CheckStartStatus(run.environment, to); !s.ok()) return s.error();
  const std::string what = "start a run of environment " + run.environment;
  Result<Stmt> st = db_->Prepare(kInsertStartedRun);
  if (!st.ok()) return st.error();
  st->Bind(1, run.environment).Bind(2, run.action).Bind(3, to).Bind(4, run.commit);
  st->Bind(5, run.plan_hash).Bind(6, run.plan_text).Bind(7, run.plan_json).Bind(8, run.author);
  st->Bind(9, NowUnix());
  if (Status s = st->Run(what); !s.ok()) return s.error();  // one statement: atomic
  if (db_->Changes() != 1) return std::optional<Run>();
  return GetRun(db_->LastInsertId());
}

Result<Page<Run>> SqliteStateStore::ListRuns(const RunFilter& filter, int64_t cursor, int limit) {
  const std::string what = filter.environment.empty()
                               ? std::string("list runs")
                               : "list the runs of environment " + filter.environment;
  const int n = PageLimit(limit);
  Result<Stmt> st = db_->Prepare(kListRuns);
  if (!st.ok()) return st.error();
  st->Bind(1, filter.environment).Bind(2, EncodeStringList(filter.statuses));
  st->Bind(3, cursor < 0 ? int64_t{0} : cursor).Bind(4, int64_t{n} + 1);
  st->Bind(5, int64_t{filter.plans ? 1 : 0});
  Page<Run> page;
  for (;;) {
    Result<bool> row = st->Step(what);
    if (!row.ok()) return row.error();
    if (!*row) break;
    if (static_cast<int>(page.items.size()) == n) {
      page.next_cursor = page.items.back().id;
      break;
    }
    page.items.push_back(ReadRun(*st));
  }
  return page;
}

// --- approvals ---

Result<bool> SqliteStateStore::AddApproval(const Approval& a) {
  if (Status s = CheckApproval(a); !s.ok()) return s.error();
  const std::string what = "record " + a.who + "'s decision on run " + std::to_string(a.run_id);
  Result<Transaction> txn = Transaction::Write(*db_, what);
  if (!txn.ok()) return txn.error();
  {
    Result<Stmt> st = db_->Prepare(kRunExists);
    if (!st.ok()) return st.error();
    st->Bind(1, a.run_id);
    Result<bool> row = st->Step(what);
    if (!row.ok()) return row.error();
    if (!*row) return MakeError("cannot " + what + ": there is no such run");
  }
  {
    Result<Stmt> st = db_->Prepare(kAddApproval);
    if (!st.ok()) return st.error();
    st->Bind(1, a.run_id).Bind(2, a.who).Bind(3, a.plan_hash).Bind(4, a.decision);
    st->Bind(5, a.comment).Bind(6, a.created_at > 0 ? a.created_at : NowUnix());
    if (Status s = st->Run(what); !s.ok()) return s.error();
  }
  const bool added = db_->Changes() == 1;
  if (Status s = txn->Commit(what); !s.ok()) return s.error();
  return added;
}

Result<std::vector<Approval>> SqliteStateStore::ListApprovals(int64_t run_id) {
  const std::string what = "list the decisions on run " + std::to_string(run_id);
  Result<Stmt> st = db_->Prepare(kListApprovals);
  if (!st.ok()) return st.error();
  st->Bind(1, run_id);
  std::vector<Approval> out;
  for (;;) {
    Result<bool> row = st->Step(what);
    if (!row.ok()) return row.error();
    if (!*row) break;
    Approval a;
    a.run_id = st->Int(0);
    a.plan_hash = st->Text(1);
    a.who = st->Text(2);
    a.decision = st->Text(3);
    a.comment = st->Text(4);
    a.created_at = st->Int(5);
    out.push_back(std::move(a));
  }
  return out;
}

// --- tokens ---

Status SqliteStateStore::CreateToken(const Token& t) {
  if (Status s = CheckToken(t); !s.ok()) return s;
  const std::string what = "store token " + t.name;
  Result<Transaction> txn = Transaction::Write(*db_, what);
  if (!txn.ok()) return txn.error();
  for (const char* sql : {kLiveTokenNamed, kTokenHashed}) {
    Result<Stmt> st = db_->Prepare(sql);
    if (!st.ok()) return st.error();
    st->Bind(1, sql == kLiveTokenNamed ? t.name : t.hash);
    Result<bool> row = st->Step(what);
    if (!row.ok()) return row.error();
    if (*row) {
      return MakeError(sql == kLiveTokenNamed ? TokenExistsMessage(t.name)
                                              : "cannot " + what + ": its hash is known already");
    }
  }
  {
    Result<Stmt> st = db_->Prepare(kInsertToken);
    if (!st.ok()) return st.error();
    st->Bind(1, t.hash).Bind(2, t.name).Bind(3, t.role).Bind(4, t.envs).Bind(5, t.created_by);
    st->Bind(6, t.created_at > 0 ? t.created_at : NowUnix()).Bind(7, t.expires_at);
    st->Bind(8, t.rights);
    if (Status s = st->Run(what); !s.ok()) return s;
  }
  return txn->Commit(what);
}

Result<std::optional<Token>> SqliteStateStore::FindTokenByHash(const std::string& hash) {
  Result<Stmt> st = db_->Prepare(kFindToken);
  if (!st.ok()) return st.error();
  st->Bind(1, hash);
  Result<bool> row = st->Step("look a token up");
  if (!row.ok()) return row.error();
  if (!*row) return std::optional<Token>();
  return std::optional<Token>(ReadToken(*st));
}

Result<std::vector<Token>> SqliteStateStore::ListTokens() {
  Result<Stmt> st = db_->Prepare(kListTokens);
  if (!st.ok()) return st.error();
  std::vector<Token> out;
  for (;;) {
    Result<bool> row = st->Step("list tokens");
    if (!row.ok()) return row.error();
    if (!*row) break;
    out.push_back(ReadToken(*st));
  }
  return out;
}

Result<bool> SqliteStateStore::RevokeToken(const std::string& name, int64_t now) {
  const std::string what = "revoke token " + name;
  const int64_t at = now > 0 ? now : NowUnix();
  Result<Transaction> txn = Transaction::Write(*db_, what);
  if (!txn.ok()) return txn.error();
  Result<Stmt> st = db_->Prepare(kRevokeToken);
  if (!st.ok()) return st.error();
  st->Bind(1, name).Bind(2, at);
  if (Status s = st->Run(what); !s.ok()) return s.error();
  const bool revoked = db_->Changes() > 0;
  if (revoked) {
    Result<Stmt> end = db_->Prepare(kEndRevokedSessions);
    if (!end.ok()) return end.error();
    end->Bind(1, name).Bind(2, at);
    if (Status s = end->Run(what); !s.ok()) return s.error();
  }
  if (Status s = txn->Commit(what); !s.ok()) return s.error();
  return revoked;
}

// --- browser sessions ---

Status SqliteStateStore::CreateSession(const Session& session) {
  if (Status s = CheckSession(session); !s.ok()) return s;
  Result<Stmt> st = db_->Prepare(kInsertSession);
  if (!st.ok()) return st.error();
  st->Bind(1, session.hash).Bind(2, session.token_hash).Bind(3, session.csrf);
  st->Bind(4, session.created_at).Bind(5, session.expires_at);
  if (Status s = st->Run("store a session"); !s.ok()) return s;
  if (db_->Changes() == 0) return MakeError("cannot store a session: its hash is known already");
  return Status::Ok();
}

Result<std::optional<Session>> SqliteStateStore::FindSessionByHash(const std::string& hash) {
  Result<Stmt> st = db_->Prepare(kFindSession);
  if (!st.ok()) return st.error();
  st->Bind(1, hash);
  Result<bool> row = st->Step("look a session up");
  if (!row.ok()) return row.error();
  if (!*row) return std::optional<Session>();
  Session s;
  s.hash = st->Text(0);
  s.token_hash = st->Text(1);
  s.csrf = st->Text(2);
  s.created_at = st->Int(3);
  s.expires_at = st->Int(4);
  return std::optional<Session>(std::move(s));
}

Result<bool> SqliteStateStore::DeleteSession(const std::string& hash) {
  Result<Stmt> st = db_->Prepare(kDeleteSession);
  if (!st.ok()) return st.error();
  st->Bind(1, hash);
  if (Status s = st->Run("end a session"); !s.ok()) return s.error();
  return db_->Changes() > 0;
}

Result<int64_t> SqliteStateStore::PruneSessions(int64_t before) {
  Result<Stmt> st = db_->Prepare(kPruneSessions);
  if (!st.ok()) return st.error();
  st->Bind(1, before);
  if (Status s = st->Run("forget expired sessions"); !s.ok()) return s.error();
  return static_cast<int64_t>(db_->Changes());
}

// --- audit ---

Result<int64_t> SqliteStateStore::AppendAudit(const AuditEntry& e) {
  if (Status s = CheckAudit(e); !s.ok()) return s.error();
  const std::string what = "append " + e.action + " to the audit log";
  Result<Stmt> st = db_->Prepare(kAppendAudit);
  if (!st.ok()) return st.error();
  st->Bind(1, e.time > 0 ? e.time : NowUnix()).Bind(2, e.who).Bind(3, e.action);
  st->Bind(4, e.environment).Bind(5, e.run_id).Bind(6, e.plan_hash).Bind(7, e.result);
  st->Bind(8, e.reason).Bind(9, e.request_id).Bind(10, e.subject);
  if (Status s = st->Run(what); !s.ok()) return s.error();
  return db_->LastInsertId();
}

Result<Page<AuditEntry>> SqliteStateStore::ListAudit(const AuditFilter& filter, int64_t cursor,
                                                     int limit) {
  const int n = PageLimit(limit);
  Result<Stmt> st = db_->Prepare(kListAudit);
  if (!st.ok()) return st.error();
  st->Bind(1, filter.environment).Bind(2, filter.who);
  st->Bind(3, cursor < 0 ? int64_t{0} : cursor).Bind(4, int64_t{n} + 1);
  Page<AuditEntry> page;
  for (;;) {
    Result<bool> row = st->Step("read the audit log");
    if (!row.ok()) return row.error();
    if (!*row) break;
    if (static_cast<int>(page.items.size()) == n) {
      page.next_cursor = page.items.back().id;
      break;
    }
    AuditEntry e;
    e.id = st->Int(0);
    e.time = st->Int(1);
    e.who = st->Text(2);
    e.action = st->Text(3);
    e.environment = st->Text(4);
    e.run_id = st->Int(5);
    e.plan_hash = st->Text(6);
    e.result = st->Text(7);
    e.reason = st->Text(8);
    e.request_id = st->Text(9);
    e.subject = st->Text(10);
    page.items.push_back(std::move(e));
  }
  return page;
}

// --- events ---

Result<int64_t> SqliteStateStore::AppendEvent(const EventRecord& event,
                                              const std::vector<OutboxEntry>& deliveries) {
  const std::string what = "record event " + event.type;
  Result<Transaction> txn = Transaction::Write(*db_, what);
  if (!txn.ok()) return txn.error();
  const int64_t now = NowUnix();
  int64_t id = 0;
  {
    Result<Stmt> st = db_->Prepare(kAppendEvent);
    if (!st.ok()) return st.error();
    st->Bind(1, event.type).Bind(2, event.environment).Bind(3, event.payload_json);
    st->Bind(4, event.time > 0 ? event.time : now);
    if (Status s = st->Run(what); !s.ok()) return s.error();
    id = db_->LastInsertId();
  }
  for (const OutboxEntry& e : deliveries) {
    Result<Stmt> st = db_->Prepare(kEnqueueDelivery);
    if (!st.ok()) return st.error();
    st->Bind(1, e.sink).Bind(2, e.environment).Bind(3, e.event_type).Bind(4, e.event_id);
    st->Bind(5, e.subject).Bind(6, e.event_json).Bind(7, e.created_at > 0 ? e.created_at : now);
    st->Bind(8, e.next_attempt_at);
    if (Status s = st->Run(what); !s.ok()) return s.error();
  }
  if (Status s = txn->Commit(what); !s.ok()) return s.error();
  PublishLocal(channel_key_, kEventsChannel, std::to_string(id));  // after the commit: readable
  return id;
}

Result<std::vector<EventRecord>> SqliteStateStore::EventsAfter(int64_t after_id,
                                                               const EventFilter& filter,
                                                               int limit) {
  const std::string what = "read the events after " + std::to_string(after_id);
  Result<Stmt> st = db_->Prepare(kEventsAfter);
  if (!st.ok()) return st.error();
  st->Bind(1, after_id).Bind(2, filter.environment).Bind(3, EncodeStringList(filter.types));
  st->Bind(4, int64_t{PageLimit(limit, kDefaultEventBatch, kDefaultEventBatch * 10)});
  std::vector<EventRecord> out;
  for (;;) {
    Result<bool> row = st->Step(what);
    if (!row.ok()) return row.error();
    if (!*row) break;
    EventRecord e;
    e.id = st->Int(0);
    e.type = st->Text(1);
    e.environment = st->Text(2);
    e.payload_json = st->Text(3);
    e.time = st->Int(4);
    out.push_back(std::move(e));
  }
  return out;
}

Result<int64_t> SqliteStateStore::LatestEventId() {
  Result<Stmt> st = db_->Prepare(kLatestEvent);
  if (!st.ok()) return st.error();
  Result<bool> row = st->Step("read the newest event id");
  if (!row.ok()) return row.error();
  return *row ? st->Int(0) : 0;
}

Result<bool> SqliteStateStore::WaitForEvents(int64_t after_id, int timeout_ms) {
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(std::max(timeout_ms, 0));
  for (;;) {
    Result<int64_t> latest = LatestEventId();
    if (!latest.ok()) return latest.error();
    if (*latest > after_id) return true;
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return false;
    std::this_thread::sleep_for(
        std::min<std::chrono::steady_clock::duration>(deadline - now, kEventPoll));
  }
}

Result<int64_t> SqliteStateStore::PruneEvents(int64_t before) {
  const std::string what = "prune old events";
  Result<Transaction> txn = Transaction::Write(*db_, what);
  if (!txn.ok()) return txn.error();
  int64_t last = 0;
  {
    Result<Stmt> st = db_->Prepare(kLastBefore);
    if (!st.ok()) return st.error();
    st->Bind(1, before);
    Result<bool> row = st->Step(what);
    if (!row.ok()) return row.error();
    last = *row ? st->Int(0) : 0;
  }
  if (last == 0) return int64_t{0};
  int64_t removed = 0;
  {
    Result<Stmt> st = db_->Prepare(kPruneEvents);
    if (!st.ok()) return st.error();
    st->Bind(1, last);
    if (Status s = st->Run(what); !s.ok()) return s.error();
    removed = db_->Changes();
  }
  {
    Result<Stmt> st = db_->Prepare(kMarkPruned);
    if (!st.ok()) return st.error();
    st->Bind(1, last);
    if (Status s = st->Run(what); !s.ok()) return s.error();
  }
  if (Status s = txn->Commit(what); !s.ok()) return s.error();
  return removed;
}

Result<bool> SqliteStateStore::EventIdPastRetention(int64_t last_id) {
  Result<Stmt> st = db_->Prepare(kPrunedThrough);
  if (!st.ok()) return st.error();
  Result<bool> row = st->Step("read the event retention");
  if (!row.ok()) return row.error();
  return *row && last_id < st->Int(0);
}

// --- change notifications ---

Result<std::unique_ptr<ChangeListener>> SqliteStateStore::Listen(
    const std::vector<std::string>& channels) {
  for (const std::string& c : channels) {
    if (Status s = CheckChannelName(c); !s.ok()) return s.error();
  }
  // A connection of the listener's own tells writes by other processes (a command on the same
  // file) through PRAGMA data_version, which changes whenever another connection commits.
  Result<std::unique_ptr<Database>> db = Database::Open(path(), kBusyTimeoutMs);
  if (!db.ok()) return db.error();
  auto version = std::make_shared<int64_t>(0);
  std::shared_ptr<Database> conn(std::move(*db));
  auto read = [conn]() -> Result<int64_t> {
    Result<Stmt> st = conn->Prepare("PRAGMA data_version");
    if (!st.ok()) return st.error();
    Result<bool> row = st->Step("look for changes");
    if (!row.ok()) return row.error();
    return *row ? st->Int(0) : 0;
  };
  Result<int64_t> first = read();
  if (!first.ok()) return first.error();
  *version = *first;
  ChangedElsewhere elsewhere = [read, version]() -> Result<bool> {
    Result<int64_t> now = read();
    if (!now.ok()) return now.error();
    const bool changed = *now != *version;
    *version = *now;
    return changed;
  };
  return ListenLocal(channel_key_, channels, std::move(elsewhere), kListenPollMs);
}

Status SqliteStateStore::Notify(const std::string& channel, const std::string& payload) {
  if (Status s = CheckChannelName(channel); !s.ok()) return s;
  if (Status s = CheckNotificationPayload(channel, payload); !s.ok()) return s;
  PublishLocal(channel_key_, channel, payload);
  return Status::Ok();
}

// --- webhook deliveries ---

Result<bool> SqliteStateStore::RememberDelivery(const std::string& source, const std::string& id,
                                                int64_t now) {
  const std::string what = "remember " + source + " delivery " + id;
  Result<Stmt> st = db_->Prepare(kRememberDelivery);
  if (!st.ok()) return st.error();
  st->Bind(1, source).Bind(2, id).Bind(3, now > 0 ? now : NowUnix());
  if (Status s = st->Run(what); !s.ok()) return s.error();
  return db_->Changes() == 1;
}

Result<int64_t> SqliteStateStore::PruneDeliveries(int64_t before) {
  Result<Stmt> st = db_->Prepare(kPruneDeliveries);
  if (!st.ok()) return st.error();
  st->Bind(1, before);
  if (Status s = st->Run("forget old webhook deliveries"); !s.ok()) return s.error();
  return db_->Changes();
}

}  // namespace driftless::state
