// Several servers on one PostgreSQL state: the servers alive (a heartbeat row each) and which one
// owns each environment (a lease with a fencing token). Every time here is the database's clock,
// in milliseconds, so that the clocks of the servers do not matter.

#include <utility>

#include "state/postgres/pg_conn.h"
#include "state/postgres/postgres_state_store.h"

namespace driftless::state {

using pg_detail::Params;
using pg_detail::Rows;
using pg_detail::Transaction;

namespace {

#define DL_NOW_MS "(extract(epoch FROM clock_timestamp()) * 1000)::bigint"

// One statement a heartbeat: this server's row inserted or refreshed, rows of servers gone for an
// hour forgotten (of no use to anyone), and every live server returned (the CTEs' writes are not
// seen by the final SELECT, hence this server's row from RETURNING).
constexpr std::string_view kHeartbeat =
    "WITH t AS (SELECT " DL_NOW_MS
    " AS n), me AS (INSERT INTO driftless.servers (id, host, pid, started_at, heartbeat_ms, "
    "expires_ms) SELECT $1, $2, $3, $4, n, n + $5 FROM t ON CONFLICT (id) DO UPDATE SET "
    "heartbeat_ms = EXCLUDED.heartbeat_ms, expires_ms = EXCLUDED.expires_ms RETURNING id, host, "
    "pid, started_at, expires_ms), gone AS (DELETE FROM driftless.servers WHERE id <> $1 AND "
    "expires_ms < (SELECT n FROM t) - 3600000) SELECT id, host, pid, started_at, expires_ms FROM "
    "me UNION ALL SELECT s.id, s.host, s.pid, s.started_at, s.expires_ms FROM driftless.servers "
    "s, t WHERE s.id <> $1 AND s.expires_ms >= t.n ORDER BY 1";
constexpr std::string_view kDeleteServer = "DELETE FROM driftless.servers WHERE id = $1";
constexpr std::string_view kDeleteOwnerships = "DELETE FROM driftless.owners WHERE server = $1";
constexpr std::string_view kListOwnerships =
    "SELECT env, server, token, expires_ms, " DL_NOW_MS " FROM driftless.owners ORDER BY env";
constexpr std::string_view kNowMs = "SELECT " DL_NOW_MS;
// Taken when there is no owner or its lease expired; the new token comes from a sequence, so it
// is larger than every token before it.
constexpr std::string_view kTakeOwnership =
    "INSERT INTO driftless.owners AS o (env, server, token, acquired_ms, expires_ms) SELECT $1, "
    "$2, nextval('driftless.owner_tokens'), n, n + $3 FROM (SELECT " DL_NOW_MS
    " AS n) t ON CONFLICT (env) DO UPDATE SET server = EXCLUDED.server, token = EXCLUDED.token, "
    "acquired_ms = EXCLUDED.acquired_ms, expires_ms = EXCLUDED.expires_ms WHERE o.expires_ms < "
    "EXCLUDED.acquired_ms RETURNING env, server, token, expires_ms";
constexpr std::string_view kRenewOwnerships =
    "UPDATE driftless.owners SET expires_ms = " DL_NOW_MS
    " + $2 WHERE server = $1 RETURNING env, server, token, expires_ms";
constexpr std::string_view kReleaseOwnership =
    "DELETE FROM driftless.owners WHERE env = $1 AND token = $2";
constexpr std::string_view kOwnerForShare =
    "SELECT server, token FROM driftless.owners WHERE env = $1 FOR SHARE";

#undef DL_NOW_MS

Ownership ReadOwnership(const Rows& r, int row) {
  Ownership o;
  o.environment = r.Text(row, 0);
  o.server = r.Text(row, 1);
  o.token = r.Int(row, 2);
  o.expires_ms = r.Int(row, 3);
  return o;
}

}  // namespace

Result<std::vector<ServerRecord>> PostgresStateStore::Heartbeat(const ServerRecord& self,
                                                                int64_t lease_ms) {
  const std::string what = "record the heartbeat of server " + self.id;
  Params p;
  p.Add(self.id).Add(self.host).Add(self.pid).Add(self.started_at).Add(lease_ms);
  Result<Rows> live = c_->Exec(kHeartbeat, p, what);
  if (!live.ok()) return live.error();
  std::vector<ServerRecord> out;
  for (int i = 0; i < live->size(); ++i) {
    ServerRecord s;
    s.id = live->Text(i, 0);
    s.host = live->Text(i, 1);
    s.pid = live->Int(i, 2);
    s.started_at = live->Int(i, 3);
    s.expires_ms = live->Int(i, 4);
    out.push_back(std::move(s));
  }
  return out;
}

Status PostgresStateStore::Deregister(const std::string& id) {
  const std::string what = "deregister server " + id;
  Result<Transaction> txn = Transaction::Write(*c_, what);
  if (!txn.ok()) return txn.error();
  if (Result<Rows> r = c_->Exec(kDeleteOwnerships, Params().Add(id), what); !r.ok()) {
    return r.error();
  }
  if (Result<Rows> r = c_->Exec(kDeleteServer, Params().Add(id), what); !r.ok()) return r.error();
  return txn->Commit(what);
}

Result<Ownerships> PostgresStateStore::ListOwnerships() {
  Result<Rows> r = c_->Exec(kListOwnerships, Params(), "list the environments' owners");
  if (!r.ok()) return r.error();
  Ownerships out;
  for (int i = 0; i < r->size(); ++i) out.items.push_back(ReadOwnership(*r, i));
  if (r->empty()) {
    Result<Rows> now = c_->Exec(kNowMs, Params(), "read the database's clock");
    if (!now.ok()) return now.error();
    out.now_ms = now->Int(0, 0);
  } else {
    out.now_ms = r->Int(0, 4);
  }
  return out;
}

Result<std::optional<Ownership>> PostgresStateStore::TakeOwnership(const std::string& env,
                                                                   const std::string& server,
                                                                   int64_t lease_ms) {
  Result<Rows> r = c_->Exec(kTakeOwnership, Params().Add(env).Add(server).Add(lease_ms),
                            "take the ownership of environment " + env);
  if (!r.ok()) return r.error();
  if (r->empty()) return std::optional<Ownership>();
  return std::optional<Ownership>(ReadOwnership(*r, 0));
}

Result<std::vector<Ownership>> PostgresStateStore::RenewOwnerships(const std::string& server,
                                                                   int64_t lease_ms) {
  Result<Rows> r = c_->Exec(kRenewOwnerships, Params().Add(server).Add(lease_ms),
                            "renew the ownerships of server " + server);
  if (!r.ok()) return r.error();
  std::vector<Ownership> out;
  for (int i = 0; i < r->size(); ++i) out.push_back(ReadOwnership(*r, i));
  return out;
}

Status PostgresStateStore::ReleaseOwnership(const std::string& env, int64_t token) {
  Result<Rows> r = c_->Exec(kReleaseOwnership, Params().Add(env).Add(token),
                            "give back the ownership of environment " + env);
  if (!r.ok()) return r.error();
  return Status::Ok();
}

void PostgresStateStore::SetRunFence(const std::string& env, int64_t token) {
  fence_env_ = env;
  fence_token_ = token;
}

Status PostgresStateStore::BeginFenced(const std::string& env, const std::string& what,
                                       std::optional<Transaction>& txn) {
  if (fence_env_.empty() || env != fence_env_) return Status::Ok();
  Result<Transaction> t = Transaction::Write(*c_, what);
  if (!t.ok()) return t.error();
  txn.emplace(std::move(*t));
  return CheckOwnerFence(env, what);
}

Status PostgresStateStore::CheckOwnerFence(const std::string& env, const std::string& what) {
  if (fence_env_.empty() || env != fence_env_) return Status::Ok();
  Result<Rows> r = c_->Exec(kOwnerForShare, Params().Add(env), what);
  if (!r.ok()) return r.error();
  const std::string ours = "token " + std::to_string(fence_token_) + " was ours";
  if (r->empty()) {
    return MakeError("cannot " + what + ": lost the ownership of environment " + env +
                     ": it was given back or taken over since (" + ours + ")");
  }
  if (r->Int(0, 1) != fence_token_) {
    return MakeError("cannot " + what + ": lost the ownership of environment " + env +
                     ": taken over by server " + r->Text(0, 0) + " (token " +
                     std::to_string(r->Int(0, 1)) + "; " + ours + ")");
  }
  return Status::Ok();
}

}  // namespace driftless::state
