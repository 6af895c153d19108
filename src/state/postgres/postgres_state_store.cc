#include "state/postgres/postgres_state_store.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <random>
#include <thread>
#include <unordered_map>
#include <utility>

#include "base/hash.h"
#include "base/strings.h"
#include "state/lock_text.h"
#include "state/postgres/location.h"
#include "state/postgres/pg_conn.h"
#include "state/postgres/schema.h"
#include "state/store_common.h"

namespace driftless::state {

using pg_detail::Connection;
using pg_detail::DecodeTextArray;
using pg_detail::EncodeTextArray;
using pg_detail::Params;
using pg_detail::Rows;
using pg_detail::Transaction;

namespace {

// Every query lives here, once: the text is also the key of the prepared statement cache.
// Times that decide leases come from the server's clock.

#define DL_NOW "floor(extract(epoch FROM clock_timestamp()))::bigint"

constexpr std::string_view kSelectEnvironment =
    "SELECT name, serial, salt, created_at FROM driftless.environments WHERE name = $1";
constexpr std::string_view kSelectEnvironments =
    "SELECT name, serial, salt, created_at FROM driftless.environments ORDER BY name";
constexpr std::string_view kInsertEnvironment =
    "INSERT INTO driftless.environments (name, serial, salt, created_at) "
    "VALUES ($1, 0, $2, " DL_NOW ") ON CONFLICT (name) DO NOTHING";
constexpr std::string_view kEnvironmentExists =
    "SELECT 1 FROM driftless.environments WHERE name = $1";
constexpr std::string_view kBumpSerial =
    "UPDATE driftless.environments SET serial = serial + 1 WHERE name = $1 RETURNING serial";

// The columns FillResource reads, in its order.
#define DL_RESOURCE_COLUMNS                                                                   \
  "address, kind, name, target, attrs_json, spec_hash, live_digest, depends_on, \"commit\", " \
  "serial, updated_at"
constexpr std::string_view kSelectResources = "SELECT " DL_RESOURCE_COLUMNS
                                              " FROM driftless.resources WHERE env = $1 "
                                              "ORDER BY address";
constexpr std::string_view kSelectDigests =
    "SELECT address, spec_hash, live_digest, live_stamp FROM driftless.resources WHERE env = $1 "
    "ORDER BY address";
constexpr std::string_view kSelectSomeDigests =
    "SELECT address, spec_hash, live_digest, live_stamp FROM driftless.resources WHERE env = $1 "
    "AND address = ANY($2::text[]) ORDER BY address";
// A stamp only saves a later read: a row locked by a writer (an apply committing its outcomes)
// is not waited for long.
constexpr char kStampLockTimeout[] = "SET LOCAL lock_timeout = '100ms'";
constexpr std::string_view kRecordStamps =
    "UPDATE driftless.resources r SET live_stamp = t.stamp "
    "FROM unnest($2::text[], $3::text[], $4::text[]) AS t(address, digest, stamp) "
    "WHERE r.env = $1 AND r.address = t.address AND r.live_digest = t.digest "
    "AND r.live_stamp <> t.stamp";
constexpr std::string_view kSelectResource = "SELECT " DL_RESOURCE_COLUMNS
                                             " FROM driftless.resources WHERE env = $1 AND "
                                             "address = $2";
constexpr std::string_view kSelectSomeResources =
    "SELECT " DL_RESOURCE_COLUMNS
    " FROM driftless.resources WHERE env = $1 AND address = ANY($2::text[]) ORDER BY address";
#undef DL_RESOURCE_COLUMNS
// One statement for a whole batch: the rows come as parallel arrays. depends_on arrives as the
// text of an array literal per row.
constexpr std::string_view kUpsertResources =
    "INSERT INTO driftless.resources (env, address, kind, name, target, attrs_json, spec_hash, "
    "live_digest, depends_on, \"commit\", serial, updated_at) "
    "SELECT $1::text, t.address, t.kind, t.name, t.target, t.attrs, t.spec, t.live, "
    "t.deps::text[], t.cmt, $2::bigint, " DL_NOW
    " FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], "
    "$9::text[], $10::text[], $11::text[]) AS t(address, kind, name, target, attrs, spec, live, "
    "deps, cmt) "
    "ON CONFLICT (env, address) DO UPDATE SET kind = excluded.kind, name = excluded.name, "
    "target = excluded.target, attrs_json = excluded.attrs_json, "
    "spec_hash = excluded.spec_hash, live_digest = excluded.live_digest, "
    "depends_on = excluded.depends_on, \"commit\" = excluded.\"commit\", "
    "serial = excluded.serial, updated_at = excluded.updated_at, live_stamp = ''";
constexpr std::string_view kDeleteResources =
    "DELETE FROM driftless.resources WHERE env = $1 AND address = ANY($2::text[])";
constexpr std::string_view kDeleteResource =
    "DELETE FROM driftless.resources WHERE env = $1 AND address = $2";
constexpr std::string_view kResourceExists =
    "SELECT 1 FROM driftless.resources WHERE env = $1 AND address = $2";
constexpr std::string_view kRenameResource =
    "UPDATE driftless.resources SET address = $3, kind = $4, name = $5, serial = $6, "
    "updated_at = " DL_NOW " WHERE env = $1 AND address = $2";
constexpr std::string_view kRewriteDependsOn =
    "UPDATE driftless.resources SET depends_on = array_replace(depends_on, $2, $3) "
    "WHERE env = $1 AND $2 = ANY(depends_on)";

#define DL_LOCK_COLUMNS "token, \"user\", host, pid, operation, acquired_at, expires_at"
constexpr std::string_view kSelectLock =
    "SELECT " DL_LOCK_COLUMNS " FROM driftless.locks WHERE env = $1";
// The fence: the lock row stays locked until the writer's transaction ends, so a takeover
// (which deletes it) waits for the write, or the write sees the takeover.
constexpr std::string_view kSelectLockForUpdate =
    "SELECT " DL_LOCK_COLUMNS " FROM driftless.locks WHERE env = $1 FOR UPDATE";
constexpr std::string_view kSelectLocks =
    "SELECT " DL_LOCK_COLUMNS ", env, " DL_NOW " FROM driftless.locks";
#undef DL_LOCK_COLUMNS
constexpr std::string_view kEnsureTokenRow =
    "INSERT INTO driftless.lock_tokens (env, last_token) VALUES ($1, 0) "
    "ON CONFLICT (env) DO NOTHING";
// Serialises the acquirers of one environment, and reads the server's clock.
constexpr std::string_view kLockTokenRow =
    "SELECT last_token, " DL_NOW " FROM driftless.lock_tokens WHERE env = $1 FOR UPDATE";
constexpr std::string_view kNextToken =
    "UPDATE driftless.lock_tokens SET last_token = last_token + 1 WHERE env = $1 "
    "RETURNING last_token";
constexpr std::string_view kInsertLock =
    "INSERT INTO driftless.locks (env, token, \"user\", host, pid, operation, acquired_at, "
    "expires_at) SELECT $1::text, $2::bigint, $3::text, $4::text, $5::bigint, $6::text, t.n, "
    "t.n + $7::bigint FROM (SELECT " DL_NOW " AS n) t RETURNING acquired_at, expires_at";
constexpr std::string_view kDeleteLock =
    "DELETE FROM driftless.locks WHERE env = $1 AND token = $2";
constexpr std::string_view kRenewLock = "UPDATE driftless.locks SET expires_at = " DL_NOW
                                        " + $3 WHERE env = $1 AND token = $2 RETURNING expires_at";
constexpr std::string_view kNotifyRelease = "SELECT pg_notify('driftless_lock_released', $1)";
constexpr char kAcquireLockTimeout[] = "SET LOCAL lock_timeout = '2s'";
constexpr char kLockNotAvailable[] = "55P03";
constexpr char kListen[] = "LISTEN driftless_lock_released";
constexpr char kUnlisten[] = "UNLISTEN driftless_lock_released";

constexpr std::string_view kInterruptAll =
    "UPDATE driftless.applies SET status = 'interrupted', finished_at = " DL_NOW
    " WHERE env = $1 AND status = 'running'";
constexpr std::string_view kInterruptToken =
    "UPDATE driftless.applies SET status = 'interrupted', finished_at = " DL_NOW
    " WHERE env = $1 AND lock_token = $2 AND status = 'running'";

constexpr std::string_view kInsertApply =
    "INSERT INTO driftless.applies (env, kind, \"user\", host, pid, \"commit\", commit_subject, "
    "commit_author, decl_hash, started_at, finished_at, status, summary, plan_json, lock_token) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, coalesce($10::bigint, " DL_NOW
    "), 0, 'running', $11, $12, $13) RETURNING id";
constexpr std::string_view kInsertChanges =
    "INSERT INTO driftless.changes (apply_id, seq, address, action, status, error, diff) "
    "SELECT $1::bigint, $5::bigint + t.ord - 1, t.address, t.action, 'pending', '', t.diff "
    "FROM unnest($2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS t(address, action, "
    "diff, ord)";
// Sets the status of each result's change; a result whose address was not among the intents
// is appended after the apply's last change, in the order of the batch.
constexpr std::string_view kUpdateChanges =
    "WITH r AS (SELECT * FROM unnest($2::text[], $3::text[], $4::text[]) WITH ORDINALITY "
    "AS r(address, status, error, ord)), "
    "upd AS (UPDATE driftless.changes c SET status = r.status, error = r.error FROM r "
    "WHERE c.apply_id = $1::bigint AND c.address = r.address RETURNING c.address) "
    "INSERT INTO driftless.changes (apply_id, seq, address, action, status, error, diff) "
    "SELECT $1::bigint, (SELECT coalesce(max(seq), -1) FROM driftless.changes WHERE "
    "apply_id = $1::bigint) + "
    "row_number() OVER (ORDER BY r.ord), r.address, '', r.status, r.error, '' FROM r "
    "WHERE NOT EXISTS (SELECT 1 FROM upd WHERE upd.address = r.address)";
constexpr std::string_view kSkipPending =
    "UPDATE driftless.changes SET status = 'skipped', error = $2 WHERE apply_id = $1 AND "
    "status = 'pending'";
constexpr std::string_view kSelectApplyState =
    "SELECT env, status FROM driftless.applies WHERE id = $1";
constexpr std::string_view kFinishApply =
    "UPDATE driftless.applies SET status = $2, summary = $3, finished_at = " DL_NOW
    " WHERE id = $1";

#define DL_APPLY_COLUMNS                                                                       \
  "id, env, kind, \"user\", host, pid, \"commit\", commit_subject, commit_author, decl_hash, " \
  "started_at, finished_at, status, summary, plan_json"
constexpr std::string_view kSelectApplies =
    "SELECT " DL_APPLY_COLUMNS " FROM driftless.applies ORDER BY id DESC LIMIT $1";
constexpr std::string_view kSelectAppliesOfEnv = "SELECT " DL_APPLY_COLUMNS
                                                 " FROM driftless.applies WHERE env = $1 "
                                                 "ORDER BY id DESC LIMIT $2";
constexpr std::string_view kSelectApply =
    "SELECT " DL_APPLY_COLUMNS " FROM driftless.applies WHERE id = $1";
// Each environment's newest successful apply of a commit: one index probe per environment
// (applies_by_env), whatever the length of its history.
constexpr std::string_view kAppliedCommits =
    "SELECT e.name, a.\"commit\" FROM driftless.environments e CROSS JOIN LATERAL (SELECT "
    "\"commit\" FROM driftless.applies WHERE env = e.name AND kind = 'apply' AND status = "
    "'succeeded' AND \"commit\" <> '' ORDER BY id DESC LIMIT 1) a";
#undef DL_APPLY_COLUMNS
constexpr std::string_view kSelectChanges =
    "SELECT address, action, status, error, diff FROM driftless.changes WHERE apply_id = $1 "
    "ORDER BY seq";
// Pending changes of unfinished applies, unless a later apply of the same environment settled
// the same address. The caller drops the applies of live lock holders.
constexpr std::string_view kSelectPending =
    "SELECT c.address, c.action, c.status, c.error, c.diff, a.env, a.lock_token "
    "FROM driftless.applies a JOIN driftless.changes c ON c.apply_id = a.id "
    "WHERE ($1 = '' OR a.env = $1) AND a.status IN ('running', 'interrupted') "
    "AND c.status = 'pending' AND NOT EXISTS ("
    "  SELECT 1 FROM driftless.applies a2 JOIN driftless.changes c2 ON c2.apply_id = a2.id "
    "  WHERE a2.env = a.env AND a2.id > a.id AND c2.address = c.address "
    "  AND c2.status IN ('done', 'failed')) "
    "ORDER BY a.id DESC, c.seq";

constexpr std::string_view kObserveDrift =
    "INSERT INTO driftless.drift (env, address, onset, last_seen, actor, diff) "
    "VALUES ($1, $2, $3, $3, $4, $5) "
    "ON CONFLICT (env, address) WHERE resolved_at = 0 DO UPDATE SET last_seen = "
    "excluded.last_seen, "
    "diff = excluded.diff, actor = CASE WHEN excluded.actor = '' THEN driftless.drift.actor "
    "ELSE excluded.actor END "
    "RETURNING id, (xmax = 0) AS inserted";
constexpr std::string_view kResolveDrift =
    "UPDATE driftless.drift SET resolved_at = $3, resolution = $4 WHERE env = $1 AND "
    "address = ANY($2::text[]) AND resolved_at = 0";
constexpr std::string_view kCountRemediation =
    "UPDATE driftless.drift SET remediations = remediations + 1 WHERE env = $1 AND address = $2 "
    "AND resolved_at = 0 RETURNING remediations";
#define DL_DRIFT_COLUMNS                                                                           \
  "SELECT id, env, address, onset, last_seen, resolved_at, resolution, actor, diff, remediations " \
  "FROM driftless.drift "
constexpr std::string_view kListDrift =
    DL_DRIFT_COLUMNS "WHERE ($1 = '' OR env = $1) ORDER BY id DESC LIMIT $2";
constexpr std::string_view kListOpenDrift =
    DL_DRIFT_COLUMNS "WHERE ($1 = '' OR env = $1) AND resolved_at = 0 ORDER BY id DESC LIMIT $2";
#undef DL_DRIFT_COLUMNS

constexpr std::string_view kEnqueue =
    "INSERT INTO driftless.outbox (sink, env, event_type, event_id, subject, event_json, "
    "created_at, next_attempt_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
constexpr std::string_view kDue =
    "SELECT id, sink, env, event_type, event_id, subject, event_json, attempts, created_at, "
    "next_attempt_at, delivered_at, last_error FROM driftless.outbox WHERE delivered_at = 0 AND "
    "next_attempt_at <= $1 ORDER BY next_attempt_at, id LIMIT $2";
constexpr std::string_view kMarkDelivered =
    "UPDATE driftless.outbox SET delivered_at = $2, last_error = '' WHERE id = $1 AND "
    "delivered_at = 0";
constexpr std::string_view kMarkFailed =
    "UPDATE driftless.outbox SET attempts = attempts + 1, last_error = $2, next_attempt_at = $3 "
    "WHERE id = $1 AND delivered_at = 0";
constexpr std::string_view kOutboxStatus =
    "SELECT sink, count(*) FILTER (WHERE delivered_at <> 0), "
    "count(*) FILTER (WHERE delivered_at = 0 AND attempts = 0), "
    "count(*) FILTER (WHERE delivered_at = 0 AND attempts > 0), "
    "min(next_attempt_at) FILTER (WHERE delivered_at = 0), max(delivered_at), "
    "(SELECT o2.last_error FROM driftless.outbox o2 WHERE o2.sink = o.sink AND "
    "o2.delivered_at = 0 AND o2.attempts > 0 ORDER BY o2.next_attempt_at DESC, o2.id DESC "
    "LIMIT 1) FROM driftless.outbox o GROUP BY sink ORDER BY sink";
constexpr std::string_view kLastEnqueued =
    "SELECT coalesce(max(created_at), 0) FROM driftless.outbox WHERE sink = $1 AND "
    "subject = $2 AND subject <> ''";
// Keeps, per sink, the entries delivered last (last_delivered_at of OutboxStatus) and, per sink
// and subject, the newest (LastEnqueuedAt).
constexpr std::string_view kPruneOutbox =
    "WITH last AS (SELECT sink, max(delivered_at) AS at FROM driftless.outbox GROUP BY sink), "
    "gone AS (DELETE FROM driftless.outbox o USING last WHERE last.sink = o.sink "
    "AND o.delivered_at > 0 AND o.delivered_at < $1 AND o.delivered_at < last.at "
    "AND (o.subject = '' OR o.created_at < (SELECT max(o2.created_at) FROM driftless.outbox o2 "
    "WHERE o2.sink = o.sink AND o2.subject = o.subject AND o2.subject <> '')) RETURNING 1) "
    "SELECT count(*) FROM gone";

#undef DL_NOW

Environment ReadEnvironment(const Rows& r, int i) {
  Environment e;
  e.name = r.Text(i, 0);
  e.serial = r.Int(i, 1);
  e.salt = r.Text(i, 2);
  e.created_at = r.Int(i, 3);
  return e;
}

// The rows of kSelectDigests or kSelectSomeDigests.
std::vector<ResourceDigest> ReadDigests(const Rows& r) {
  std::vector<ResourceDigest> out(static_cast<size_t>(r.size()));
  for (int i = 0; i < r.size(); ++i) {
    ResourceDigest& d = out[static_cast<size_t>(i)];
    d.address.assign(r.View(i, 0));
    d.spec_hash.assign(r.View(i, 1));
    d.live_digest.assign(r.View(i, 2));
    d.live_stamp.assign(r.View(i, 3));
  }
  return out;
}

// Reads the resource columns of row i into *out. False when depends_on is malformed.
bool FillResource(const Rows& r, int i, ResourceState* out) {
  out->address.assign(r.View(i, 0));
  out->kind.assign(r.View(i, 1));
  out->name.assign(r.View(i, 2));
  out->target.assign(r.View(i, 3));
  out->attrs_json.assign(r.View(i, 4));
  out->spec_hash.assign(r.View(i, 5));
  out->live_digest.assign(r.View(i, 6));
  if (!DecodeTextArray(r.View(i, 7), &out->depends_on)) return false;
  out->commit.assign(r.View(i, 8));
  out->serial = r.Int(i, 9);
  out->updated_at = r.Int(i, 10);
  return true;
}

Lock ReadLockRow(const Rows& r, int i, const std::string& env) {
  Lock lock;
  lock.environment = env;
  lock.token = r.Int(i, 0);
  lock.holder.user = r.Text(i, 1);
  lock.holder.host = r.Text(i, 2);
  lock.holder.pid = r.Int(i, 3);
  lock.operation = r.Text(i, 4);
  lock.acquired_at = r.Int(i, 5);
  lock.expires_at = r.Int(i, 6);
  return lock;
}

ApplyRecord ReadApplyRow(const Rows& r, int i) {
  ApplyRecord a;
  a.id = r.Int(i, 0);
  a.environment = r.Text(i, 1);
  a.kind = r.Text(i, 2);
  a.user = r.Text(i, 3);
  a.host = r.Text(i, 4);
  a.pid = r.Int(i, 5);
  a.commit = r.Text(i, 6);
  a.commit_subject = r.Text(i, 7);
  a.commit_author = r.Text(i, 8);
  a.decl_hash = r.Text(i, 9);
  a.started_at = r.Int(i, 10);
  a.finished_at = r.Int(i, 11);
  a.status = r.Text(i, 12);
  a.summary = r.Text(i, 13);
  a.plan_json = r.Text(i, 14);
  return a;
}

ChangeRecord ReadChangeRow(const Rows& r, int i) {
  ChangeRecord c;
  c.address = r.Text(i, 0);
  c.action = r.Text(i, 1);
  c.status = r.Text(i, 2);
  c.error = r.Text(i, 3);
  c.diff = r.Text(i, 4);
  return c;
}

DriftRecord ReadDrift(const Rows& r, int i) {
  DriftRecord d;
  d.id = r.Int(i, 0);
  d.environment = r.Text(i, 1);
  d.address = r.Text(i, 2);
  d.onset = r.Int(i, 3);
  d.last_seen = r.Int(i, 4);
  d.resolved_at = r.Int(i, 5);
  d.resolution = r.Text(i, 6);
  d.actor = r.Text(i, 7);
  d.diff = r.Text(i, 8);
  d.remediations = r.Int(i, 9);
  return d;
}

OutboxEntry ReadOutbox(const Rows& r, int i) {
  OutboxEntry e;
  e.id = r.Int(i, 0);
  e.sink = r.Text(i, 1);
  e.environment = r.Text(i, 2);
  e.event_type = r.Text(i, 3);
  e.event_id = r.Text(i, 4);
  e.subject = r.Text(i, 5);
  e.event_json = r.Text(i, 6);
  e.attempts = r.Int(i, 7);
  e.created_at = r.Int(i, 8);
  e.next_attempt_at = r.Int(i, 9);
  e.delivered_at = r.Int(i, 10);
  e.last_error = r.Text(i, 11);
  return e;
}

// A LIMIT parameter: NULL (no limit) for negative values.
Params& AddLimit(Params& p, int64_t limit) { return limit < 0 ? p.Null() : p.Add(limit); }

}  // namespace

PostgresStateStore::PostgresStateStore(std::unique_ptr<Connection> c, std::string location,
                                       std::string host)
    : c_(std::move(c)), location_(std::move(location)), host_(std::move(host)) {}

PostgresStateStore::~PostgresStateStore() = default;

const std::string& PostgresStateStore::location() const { return c_->shown(); }

Result<std::unique_ptr<PostgresStateStore>> PostgresStateStore::Open(const std::string& location) {
  if (location.empty()) return MakeError("the PostgreSQL state location is empty");
  Result<std::unique_ptr<Connection>> c = Connection::Open(location, MaskPassword(location));
  if (!c.ok()) return c.error();
  Status migrated = pg_detail::Migrate(**c);
  if (!migrated.ok()) return migrated.error();
  return std::unique_ptr<PostgresStateStore>(
      new PostgresStateStore(std::move(*c), location, CurrentIdentity().host));
}

// --- environments ---

Result<std::optional<Environment>> PostgresStateStore::GetEnvironment(const std::string& name) {
  Result<Rows> r = c_->Exec(kSelectEnvironment, Params().Add(name), "read environment " + name);
  if (!r.ok()) return r.error();
  if (r->empty()) return std::optional<Environment>();
  return std::optional<Environment>(ReadEnvironment(*r, 0));
}

Result<Environment> PostgresStateStore::GetOrCreateEnvironment(const std::string& name) {
  if (name.empty()) return MakeError("the environment name is empty");
  Result<std::optional<Environment>> found = GetEnvironment(name);
  if (!found.ok()) return found.error();
  if (found->has_value()) return std::move(**found);
  // ON CONFLICT DO NOTHING: when another process creates it first, its salt wins.
  Result<Rows> made = c_->Exec(kInsertEnvironment, Params().Add(name).Add(RandomHex(32)),
                               "create environment " + name);
  if (!made.ok()) return made.error();
  found = GetEnvironment(name);
  if (!found.ok()) return found.error();
  if (!found->has_value()) {
    return MakeError("environment " + name + " vanished from state " + location() +
                     " right after it was created");
  }
  return std::move(**found);
}

Result<std::vector<Environment>> PostgresStateStore::ListEnvironments() {
  Result<Rows> r = c_->Exec(kSelectEnvironments, "list environments");
  if (!r.ok()) return r.error();
  std::vector<Environment> out;
  out.reserve(static_cast<size_t>(r->size()));
  for (int i = 0; i < r->size(); ++i) out.push_back(ReadEnvironment(*r, i));
  return out;
}

// --- resources ---

Result<std::vector<ResourceState>> PostgresStateStore::ListResources(const std::string& env) {
  const std::string what = "list the resources of environment " + env;
  Result<Rows> r = c_->Exec(kSelectResources, Params().Add(env), what);
  if (!r.ok()) return r.error();
  std::vector<ResourceState> out(static_cast<size_t>(r->size()));
  for (int i = 0; i < r->size(); ++i) {
    if (!FillResource(*r, i, &out[static_cast<size_t>(i)])) {
      return MakeError("resource " + r->Text(i, 0) + " of environment " + env +
                       " has a malformed depends_on in state " + location());
    }
  }
  return out;
}

Result<std::optional<ResourceState>> PostgresStateStore::GetResource(const std::string& env,
                                                                     const std::string& address) {
  Result<Rows> r = c_->Exec(kSelectResource, Params().Add(env).Add(address),
                            "read resource " + address + " of environment " + env);
  if (!r.ok()) return r.error();
  if (r->empty()) return std::optional<ResourceState>();
  ResourceState out;
  if (!FillResource(*r, 0, &out)) {
    return MakeError("resource " + address + " of environment " + env +
                     " has a malformed depends_on in state " + location());
  }
  return std::optional<ResourceState>(std::move(out));
}

Result<std::vector<ResourceDigest>> PostgresStateStore::ListResourceDigests(
    const std::string& env) {
  Result<Rows> r =
      c_->Exec(kSelectDigests, Params().Add(env), "list the resources of environment " + env);
  if (!r.ok()) return r.error();
  return ReadDigests(*r);
}

Result<std::vector<ResourceDigest>> PostgresStateStore::GetResourceDigests(
    const std::string& env, const std::vector<std::string>& addresses) {
  if (addresses.empty()) return std::vector<ResourceDigest>();
  Result<Rows> r =
      c_->Exec(kSelectSomeDigests, Params().Add(env).Add(EncodeTextArray(SortedUnique(addresses))),
               "read resources of environment " + env);
  if (!r.ok()) return r.error();
  return ReadDigests(*r);
}

Status PostgresStateStore::RecordLiveStamps(const std::string& env,
                                            const std::vector<LiveStamp>& stamps) {
  if (stamps.empty()) return Status::Ok();
  const std::string what = "record live stamps of environment " + env;
  Result<Transaction> txn = Transaction::Write(*c_, what);
  if (!txn.ok()) return txn.error();
  if (Status s = c_->Script(kStampLockTimeout, what); !s.ok()) return s;
  if (Status s = CheckOwnerFence(env, what); !s.ok()) return s;  // a served watch's
  std::vector<std::string_view> cols[3];
  for (auto& col : cols) col.reserve(stamps.size());
  std::vector<std::string> digests;  // the text of each RowHash, for cols[1]
  digests.reserve(stamps.size());
  for (const LiveStamp& s : stamps) digests.push_back(s.live_digest.str());
  for (size_t i = 0; i < stamps.size(); ++i) {
    const LiveStamp& s = stamps[i];
    cols[0].push_back(s.address);
    cols[1].push_back(digests[i]);
    cols[2].push_back(s.stamp);
  }
  Params p;
  p.Add(env);
  for (const auto& col : cols) p.Add(EncodeTextArray(col));
  Result<Rows> r = c_->Exec(kRecordStamps, p, what);
  if (!r.ok()) return r.error();
  return txn->Commit(what);
}

Result<std::vector<ResourceState>> PostgresStateStore::GetResources(
    const std::string& env, const std::vector<std::string>& addresses) {
  if (addresses.empty()) return std::vector<ResourceState>();
  const std::vector<std::string_view> sorted = SortedUnique(addresses);
  const std::string what = "read resources of environment " + env;
  // One statement: one snapshot.
  Result<Rows> r =
      c_->Exec(kSelectSomeResources, Params().Add(env).Add(EncodeTextArray(sorted)), what);
  if (!r.ok()) return r.error();
  std::vector<ResourceState> out(static_cast<size_t>(r->size()));
  for (int i = 0; i < r->size(); ++i) {
    if (!FillResource(*r, i, &out[static_cast<size_t>(i)])) {
      return MakeError("resource " + r->Text(i, 0) + " of environment " + env +
                       " has a malformed depends_on in state " + location());
    }
  }
  return out;
}

// --- locks ---

Result<std::optional<Lock>> PostgresStateStore::ReadLock(const std::string& env) {
  Result<Rows> r = c_->Exec(kSelectLock, Params().Add(env), "read the lock of environment " + env);
  if (!r.ok()) return r.error();
  if (r->empty()) return std::optional<Lock>();
  return std::optional<Lock>(ReadLockRow(*r, 0, env));
}

Result<std::optional<Lock>> PostgresStateStore::GetLock(const std::string& env) {
  return ReadLock(env);
}

Status PostgresStateStore::CheckFence(const Lock& lock) {
  Result<Rows> r = c_->Exec(kSelectLockForUpdate, Params().Add(lock.environment),
                            "check the lock of environment " + lock.environment);
  if (!r.ok()) return r.error();
  if (!r->empty()) {
    Lock current = ReadLockRow(*r, 0, lock.environment);
    if (current.token == lock.token) return Status::Ok();
    return MakeError(LostLockMessage(lock, &current));
  }
  // The row was gone, or deleted by a takeover this statement waited for: a new statement (a
  // new snapshot) sees who holds the lock now, if anyone.
  Result<std::optional<Lock>> now_held = ReadLock(lock.environment);
  if (now_held.ok() && now_held->has_value() && (*now_held)->token != lock.token) {
    return MakeError(LostLockMessage(lock, &**now_held));
  }
  return MakeError(LostLockMessage(lock, nullptr));
}

Result<PostgresStateStore::Attempt> PostgresStateStore::TryAcquire(const std::string& env,
                                                                   const Identity& who,
                                                                   const std::string& operation,
                                                                   int64_t lease_seconds) {
  const std::string what = "lock environment " + env;
  Result<Transaction> txn = Transaction::Write(*c_, what);
  if (!txn.ok()) return txn.error();
  Attempt attempt;
  // A row lock held for longer than this (a writer frozen in the middle of a transaction, until
  // the server ends its session) makes this attempt "busy" instead of blocking it.
  if (Status s = c_->Script(kAcquireLockTimeout, what); !s.ok()) return s.error();
  auto busy = [this] { return c_->last_sqlstate() == kLockNotAvailable; };
  // The token row serialises every acquirer of this environment until the commit.
  if (Result<Rows> r = c_->Exec(kEnsureTokenRow, Params().Add(env), what); !r.ok()) {
    if (!busy()) return r.error();
    attempt.busy = true;
    return attempt;
  }
  Result<Rows> tokens = c_->Exec(kLockTokenRow, Params().Add(env), what);
  if (!tokens.ok()) {
    if (!busy()) return tokens.error();
    attempt.busy = true;
    return attempt;
  }
  if (tokens->empty()) return c_->Fail(what, "the lock token row vanished");
  const int64_t now = tokens->Int(0, 1);
  Result<Rows> current = c_->Exec(kSelectLockForUpdate, Params().Add(env), what);
  if (!current.ok()) {
    if (!busy()) return current.error();
    attempt.busy = true;
    return attempt;
  }
  if (!current->empty()) {
    Lock held = ReadLockRow(*current, 0, env);
    if (!IsStale(held, who.host, now)) {
      attempt.holder = std::move(held);
      return attempt;  // the transaction rolls back
    }
    Result<Rows> del = c_->Exec(kDeleteLock, Params().Add(env).Add(held.token),
                                "remove the stale lock of environment " + env);
    if (!del.ok()) return del.error();
  }
  // Nobody holds the lock now, so no apply of the environment can still be running.
  if (Result<Rows> r =
          c_->Exec(kInterruptAll, Params().Add(env),
                   "mark the unfinished applies of environment " + env + " interrupted");
      !r.ok()) {
    return r.error();
  }
  Result<Rows> next =
      c_->Exec(kNextToken, Params().Add(env), "issue a lock token for environment " + env);
  if (!next.ok()) return next.error();
  Lock lock;
  lock.environment = env;
  lock.holder = who;
  lock.operation = operation;
  lock.token = next->Int(0, 0);
  Params p;
  p.Add(env).Add(lock.token).Add(who.user).Add(who.host).Add(who.pid).Add(operation);
  p.Add(lease_seconds);
  Result<Rows> inserted = c_->Exec(kInsertLock, p, what);
  if (!inserted.ok()) return inserted.error();
  lock.acquired_at = inserted->Int(0, 0);
  lock.expires_at = inserted->Int(0, 1);
  Status committed = txn->Commit(what);
  if (!committed.ok()) return committed.error();
  attempt.taken = std::move(lock);
  return attempt;
}

Result<Lock> PostgresStateStore::AcquireLock(const std::string& env, const Identity& who,
                                             const std::string& operation, double timeout_seconds,
                                             int64_t lease_seconds) {
  if (Status ok = CheckLockRequest(env, &timeout_seconds, &lease_seconds); !ok.ok()) {
    return ok.error();
  }
  const int64_t start_ms = NowUnixMillis();
  const int64_t deadline_ms = start_ms + static_cast<int64_t>(timeout_seconds * 1000.0);
  std::minstd_rand jitter(static_cast<unsigned>(who.pid * 7919 + start_ms));
  int pause_ms = 20;
  bool told_waiting = false;
  while (true) {
    Result<Attempt> attempt = TryAcquire(env, who, operation, lease_seconds);
    if (!attempt.ok()) return attempt.error();
    if (attempt->busy) {
      // Someone keeps the lock's rows locked: describe the holder from a plain read.
      Result<std::optional<Lock>> held = ReadLock(env);
      if (!held.ok()) return held.error();
      if (held->has_value()) attempt->holder = std::move(**held);
    }
    if (attempt->taken) {
      if (listening_) {
        // Releases of others are of no interest to a holder.
        if (c_->Unlisten(kUnlisten, "lock environment " + env).ok()) listening_ = false;
      }
      return std::move(*attempt->taken);
    }
    int64_t now_ms = NowUnixMillis();
    if (now_ms >= deadline_ms) {
      if (!attempt->holder) {
        return MakeError("environment " + env +
                         " is being locked or unlocked by another process right now; try again");
      }
      return MakeError(LockedMessage(
          *attempt->holder, static_cast<double>(now_ms - start_ms) / 1000.0, timeout_seconds > 0));
    }
    if (!told_waiting && attempt->holder) {
      NotifyLockWait(*attempt->holder, timeout_seconds);
      told_waiting = true;
    }
    // A release notifies the waiters; an expired lease or a dead holder is only seen by
    // looking again, at most kLockPollMaxMs later.
    if (!listening_) {
      Status listen = c_->Listen(kListen, "wait for the lock of environment " + env);
      if (!listen.ok()) return listen.error();
      listening_ = true;
    }
    int wait = static_cast<int>(
        std::min<int64_t>(pause_ms + static_cast<int>(jitter() % 20), deadline_ms - now_ms));
    Result<bool> woken = c_->WaitForNotification(std::max(wait, 1));
    if (!woken.ok()) return woken.error();
    pause_ms = std::min(pause_ms * 2, kLockPollMaxMs);
  }
}

Status PostgresStateStore::RenewLock(Lock& lock, int64_t lease_seconds) {
  const std::string what = "renew the lock of environment " + lock.environment;
  Result<Transaction> txn = Transaction::Write(*c_, what);
  if (!txn.ok()) return txn.error();
  Status fence = CheckFence(lock);
  if (!fence.ok()) return fence;
  Result<Rows> r =
      c_->Exec(kRenewLock,
               Params().Add(lock.environment).Add(lock.token).Add(ClampLease(lease_seconds)), what);
  if (!r.ok()) return r.error();
  if (r->empty()) return MakeError(LostLockMessage(lock, nullptr));
  int64_t expires_at = r->Int(0, 0);
  Status committed = txn->Commit(what);
  if (!committed.ok()) return committed;
  lock.expires_at = expires_at;
  return Status::Ok();
}

Status PostgresStateStore::ReleaseLock(const Lock& lock) {
  const std::string what = "release the lock of environment " + lock.environment;
  Result<Transaction> txn = Transaction::Write(*c_, what);
  if (!txn.ok()) return txn.error();
  Result<Rows> del = c_->Exec(kDeleteLock, Params().Add(lock.environment).Add(lock.token), what);
  if (!del.ok()) return del.error();
  if (del->affected() == 0) return Status::Ok();  // not ours any more: nothing to release
  Result<Rows> interrupted =
      c_->Exec(kInterruptToken, Params().Add(lock.environment).Add(lock.token), what);
  if (!interrupted.ok()) return interrupted.error();
  // Sent at commit: the waiters look again at once.
  Result<Rows> notified = c_->Exec(kNotifyRelease, Params().Add(lock.environment), what);
  if (!notified.ok()) return notified.error();
  return txn->Commit(what);
}

// --- applies ---

Result<int64_t> PostgresStateStore::BumpSerial(const std::string& env, std::string_view what) {
  Result<Rows> r = c_->Exec(kBumpSerial, Params().Add(env), what);
  if (!r.ok()) return r.error();
  if (r->empty()) {
    return MakeError("cannot " + std::string(what) + ": environment " + env +
                     " does not exist in state " + location());
  }
  return r->Int(0, 0);
}

namespace {

// Inside a transaction: fails unless apply `id` exists, belongs to `env` and is running.
Status CheckApplyRunning(Connection& c, int64_t id, const std::string& env) {
  const std::string name = "apply " + std::to_string(id);
  Result<Rows> r = c.Exec(kSelectApplyState, Params().Add(id), "read " + name);
  if (!r.ok()) return r.error();
  if (r->empty()) return MakeError("there is no " + name + " in state " + c.shown());
  return CheckApplyState(id, env, r->View(0, 0), r->View(0, 1));
}

// Records `intents` as the changes numbered from `first` of apply `id`, in one statement.
Status InsertIntents(Connection& c, int64_t id, size_t first,
                     const std::vector<ChangeRecord>& intents, const std::string& what) {
  if (intents.empty()) return Status::Ok();
  std::vector<std::string_view> addresses, actions, diffs;
  addresses.reserve(intents.size());
  actions.reserve(intents.size());
  diffs.reserve(intents.size());
  for (const ChangeRecord& ch : intents) {
    addresses.push_back(ch.address);
    actions.push_back(ch.action);
    diffs.push_back(ch.diff);
  }
  Params q;
  q.Add(id).Add(EncodeTextArray(addresses)).Add(EncodeTextArray(actions));
  q.Add(EncodeTextArray(diffs)).Add(static_cast<int64_t>(first));
  Result<Rows> r = c.Exec(kInsertChanges, q, what);
  if (!r.ok()) return r.error();
  return Status::Ok();
}

}  // namespace

Result<Transaction> PostgresStateStore::WriteToApply(const Lock& lock, int64_t apply_id,
                                                     const std::string& what) {
  Result<Transaction> txn = Transaction::Write(*c_, what);
  if (!txn.ok()) return txn.error();
  if (Status fence = CheckFence(lock); !fence.ok()) return fence.error();
  if (Status running = CheckApplyRunning(*c_, apply_id, lock.environment); !running.ok()) {
    return running.error();
  }
  return txn;
}

Result<int64_t> PostgresStateStore::BeginApply(const Lock& lock, const ApplyRecord& apply,
                                               const std::vector<ChangeRecord>& intents) {
  const std::string& env = lock.environment;
  if (Status ok = CheckApplyEnvironment(lock, apply); !ok.ok()) return ok.error();
  const std::string what = "record the start of an apply of environment " + env;
  Result<Transaction> txn = Transaction::Write(*c_, what);
  if (!txn.ok()) return txn.error();
  Status fence = CheckFence(lock);
  if (!fence.ok()) return fence.error();
  {
    Result<Rows> r = c_->Exec(kEnvironmentExists, Params().Add(env), what);
    if (!r.ok()) return r.error();
    if (r->empty()) {
      return MakeError("cannot " + what + ": the environment does not exist in state " +
                       location());
    }
  }
  Params p;
  p.Add(env).Add(apply.kind.empty() ? "apply" : apply.kind);
  p.Add(apply.user.empty() ? lock.holder.user : apply.user);
  p.Add(apply.host.empty() ? lock.holder.host : apply.host);
  p.Add(apply.pid != 0 ? apply.pid : lock.holder.pid);
  p.Add(apply.commit).Add(apply.commit_subject).Add(apply.commit_author).Add(apply.decl_hash);
  if (apply.started_at != 0) {
    p.Add(apply.started_at);
  } else {
    p.Null();
  }
  p.Add(apply.summary).Add(apply.plan_json).Add(lock.token);
  Result<Rows> inserted = c_->Exec(kInsertApply, p, what);
  if (!inserted.ok()) return inserted.error();
  const int64_t id = inserted->Int(0, 0);
  if (Status s = InsertIntents(*c_, id, 0, intents, what); !s.ok()) return s.error();
  Status committed = txn->Commit(what);
  if (!committed.ok()) return committed.error();
  return id;
}

Status PostgresStateStore::AddIntents(const Lock& lock, int64_t apply_id, size_t first,
                                      const std::vector<ChangeRecord>& intents) {
  const std::string what = "record the intents of apply " + std::to_string(apply_id) +
                           " of environment " + lock.environment;
  Result<Transaction> txn = WriteToApply(lock, apply_id, what);
  if (!txn.ok()) return txn.error();
  if (Status s = InsertIntents(*c_, apply_id, first, intents, what); !s.ok()) return s;
  return txn->Commit(what);
}

Status PostgresStateStore::RecordResults(const Lock& lock, int64_t apply_id,
                                         const std::vector<ChangeResult>& results) {
  const std::string& env = lock.environment;
  if (Status ok = CheckResultStatuses(apply_id, results); !ok.ok()) return ok;
  const std::string what =
      "record results of apply " + std::to_string(apply_id) + " of environment " + env;
  Result<Transaction> txn = WriteToApply(lock, apply_id, what);
  if (!txn.ok()) return txn.error();
  if (results.empty()) return Status::Ok();
  Result<int64_t> serial = BumpSerial(env, what);
  if (!serial.ok()) return serial.error();

  // Each statement below handles the whole batch. A batch that names an address twice is
  // recorded as if its results were written one after the other: the last one wins.
  std::unordered_map<std::string_view, size_t> change_of;  // address -> index in the arrays
  std::vector<std::string_view> addresses, statuses, errors;
  // Resource writes by address: the index of the result, or SIZE_MAX for a removal.
  std::map<std::string_view, const ChangeResult*> upserts;
  std::map<std::string_view, bool> removed;
  for (const ChangeResult& r : results) {
    auto [it, fresh] = change_of.try_emplace(r.address, addresses.size());
    if (fresh) {
      addresses.push_back(r.address);
      statuses.push_back(r.status);
      errors.push_back(r.error);
    } else {
      statuses[it->second] = r.status;
      errors[it->second] = r.error;
    }
    if (r.status == "done" && r.remove) {
      upserts.erase(r.address);
      removed[r.address] = true;
    } else if (r.new_state.has_value() && r.status != "skipped") {
      std::string_view address =
          r.new_state->address.empty() ? std::string_view(r.address) : r.new_state->address;
      upserts[address] = &r;
      removed.erase(address);
    }
  }
  {
    Params p;
    p.Add(apply_id).Add(EncodeTextArray(addresses)).Add(EncodeTextArray(statuses));
    p.Add(EncodeTextArray(errors));
    Result<Rows> r = c_->Exec(kUpdateChanges, p, what);
    if (!r.ok()) return r.error();
  }
  if (!removed.empty()) {
    std::vector<std::string_view> gone;
    gone.reserve(removed.size());
    for (const auto& [address, unused] : removed) gone.push_back(address);
    Result<Rows> r = c_->Exec(kDeleteResources, Params().Add(env).Add(EncodeTextArray(gone)), what);
    if (!r.ok()) return r.error();
  }
  if (!upserts.empty()) {
    std::vector<std::string> cols[9];
    for (auto& col : cols) col.reserve(upserts.size());
    for (const auto& [address, result] : upserts) {
      const ResourceState& s = *result->new_state;
      std::string kind = s.kind, name = s.name;
      KindAndNameFromAddress(std::string(address), &kind, &name);
      cols[0].emplace_back(address);
      cols[1].push_back(std::move(kind));
      cols[2].push_back(std::move(name));
      cols[3].push_back(s.target);
      cols[4].push_back(s.attrs_json.empty() ? std::string("{}") : s.attrs_json);
      cols[5].push_back(s.spec_hash);
      cols[6].push_back(s.live_digest);
      cols[7].push_back(EncodeTextArray(s.depends_on));
      cols[8].push_back(s.commit);
    }
    Params p;
    p.Add(env).Add(*serial);
    for (const auto& col : cols) p.Add(EncodeTextArray(col));
    Result<Rows> r = c_->Exec(kUpsertResources, p, what);
    if (!r.ok()) return r.error();
  }
  return txn->Commit(what);
}

Status PostgresStateStore::FinishApply(const Lock& lock, int64_t apply_id,
                                       const std::string& status, const std::string& summary) {
  const std::string& env = lock.environment;
  if (Status ok = CheckFinishStatus(env, apply_id, status); !ok.ok()) return ok;
  const std::string what = "finish apply " + std::to_string(apply_id) + " of environment " + env;
  Result<Transaction> txn = WriteToApply(lock, apply_id, what);
  if (!txn.ok()) return txn.error();
  if (Result<Rows> r =
          c_->Exec(kFinishApply, Params().Add(apply_id).Add(status).Add(summary), what);
      !r.ok()) {
    return r.error();
  }
  if (status != "interrupted") {
    Result<Rows> r = c_->Exec(kSkipPending, Params().Add(apply_id).Add(kNotAttempted), what);
    if (!r.ok()) return r.error();
  }
  return txn->Commit(what);
}

Result<std::vector<ApplyRecord>> PostgresStateStore::ListApplies(const std::string& env,
                                                                 int limit) {
  const std::string what = ListAppliesWhat(env);
  Params p;
  if (!env.empty()) p.Add(env);
  AddLimit(p, limit > 0 ? limit : -1);
  Result<Rows> r = c_->Exec(env.empty() ? kSelectApplies : kSelectAppliesOfEnv, p, what);
  if (!r.ok()) return r.error();
  std::vector<ApplyRecord> out;
  out.reserve(static_cast<size_t>(r->size()));
  for (int i = 0; i < r->size(); ++i) out.push_back(ReadApplyRow(*r, i));
  return out;
}

Result<std::map<std::string, std::string>> PostgresStateStore::AppliedCommits() {
  Result<Rows> r = c_->Exec(kAppliedCommits, "read the commits applied");
  if (!r.ok()) return r.error();
  std::map<std::string, std::string> out;
  for (int i = 0; i < r->size(); ++i) out[r->Text(i, 0)] = r->Text(i, 1);
  return out;
}

Result<std::optional<ApplyRecord>> PostgresStateStore::GetApply(int64_t id) {
  const std::string what = "read apply " + std::to_string(id);
  Result<Transaction> txn = Transaction::Read(*c_, what);
  if (!txn.ok()) return txn.error();
  Result<Rows> a = c_->Exec(kSelectApply, Params().Add(id), what);
  if (!a.ok()) return a.error();
  if (a->empty()) return std::optional<ApplyRecord>();
  ApplyRecord apply = ReadApplyRow(*a, 0);
  Result<Rows> changes = c_->Exec(kSelectChanges, Params().Add(id), what);
  if (!changes.ok()) return changes.error();
  apply.changes.reserve(static_cast<size_t>(changes->size()));
  for (int i = 0; i < changes->size(); ++i) apply.changes.push_back(ReadChangeRow(*changes, i));
  Status committed = txn->Commit(what);
  if (!committed.ok()) return committed.error();
  return std::optional<ApplyRecord>(std::move(apply));
}

Result<std::vector<ChangeRecord>> PostgresStateStore::PendingChanges(const std::string& env) {
  const std::string what = PendingChangesWhat(env);
  Result<Transaction> txn = Transaction::Read(*c_, what);
  if (!txn.ok()) return txn.error();
  // The token of each environment's live lock holder: its apply is running, not in doubt.
  std::unordered_map<std::string, int64_t> live_tokens;
  {
    Result<Rows> r = c_->Exec(kSelectLocks, what);
    if (!r.ok()) return r.error();
    for (int i = 0; i < r->size(); ++i) {
      Lock lock = ReadLockRow(*r, i, r->Text(i, 7));
      if (!IsStale(lock, host_, r->Int(i, 8))) live_tokens[lock.environment] = lock.token;
    }
  }
  std::vector<ChangeRecord> out;
  Result<Rows> r = c_->Exec(kSelectPending, Params().Add(env), what);
  if (!r.ok()) return r.error();
  for (int i = 0; i < r->size(); ++i) {
    auto live = live_tokens.find(r->Text(i, 5));
    if (live != live_tokens.end() && live->second == r->Int(i, 6)) continue;
    out.push_back(ReadChangeRow(*r, i));
  }
  Status committed = txn->Commit(what);
  if (!committed.ok()) return committed.error();
  return out;
}

// --- state surgery ---

Status PostgresStateStore::RemoveResource(const Lock& lock, const std::string& address) {
  const std::string& env = lock.environment;
  const std::string what = "remove " + address + " from the state of environment " + env;
  Result<Transaction> txn = Transaction::Write(*c_, what);
  if (!txn.ok()) return txn.error();
  Status fence = CheckFence(lock);
  if (!fence.ok()) return fence;
  Result<Rows> r = c_->Exec(kDeleteResource, Params().Add(env).Add(address), what);
  if (!r.ok()) return r.error();
  if (r->affected() == 0) {
    return MakeError("cannot " + what + ": there is no such resource in state");
  }
  Result<int64_t> serial = BumpSerial(env, what);
  if (!serial.ok()) return serial.error();
  return txn->Commit(what);
}

Status PostgresStateStore::MoveResource(const Lock& lock, const std::string& from,
                                        const std::string& to) {
  const std::string& env = lock.environment;
  const std::string what = "move " + from + " to " + to + " in the state of environment " + env;
  std::string kind, name;
  if (Status ok = CheckMove(what, from, to, &kind, &name); !ok.ok()) return ok;
  Result<Transaction> txn = Transaction::Write(*c_, what);
  if (!txn.ok()) return txn.error();
  Status fence = CheckFence(lock);
  if (!fence.ok()) return fence;
  {
    Result<Rows> r = c_->Exec(kResourceExists, Params().Add(env).Add(to), what);
    if (!r.ok()) return r.error();
    if (!r->empty()) return MakeError("cannot " + what + ": " + to + " is already in state");
  }
  Result<int64_t> serial = BumpSerial(env, what);
  if (!serial.ok()) return serial.error();
  {
    Params p;
    p.Add(env).Add(from).Add(to).Add(kind).Add(name).Add(*serial);
    Result<Rows> r = c_->Exec(kRenameResource, p, what);
    if (!r.ok()) return r.error();
    if (r->affected() == 0) return MakeError("cannot " + what + ": " + from + " is not in state");
  }
  // Rewrite the dependency lists that name the old address.
  if (Result<Rows> r = c_->Exec(kRewriteDependsOn, Params().Add(env).Add(from).Add(to), what);
      !r.ok()) {
    return r.error();
  }
  return txn->Commit(what);
}

// --- the drift timeline ---

Result<std::vector<DriftRecord>> PostgresStateStore::ObserveDrift(
    const std::string& env, const std::vector<DriftObservation>& drifted,
    const std::vector<std::string>& clean, const std::string& resolution, int64_t now) {
  const std::string what = "record drift of environment " + env;
  std::vector<DriftRecord> opened;
  Result<Transaction> txn = Transaction::Write(*c_, what);
  if (!txn.ok()) return txn.error();
  // A served watch's store is fenced by its server's ownership (SetRunFence).
  if (Status s = CheckOwnerFence(env, what); !s.ok()) return s.error();
  for (const DriftObservation& o : drifted) {
    // Opened, or seen again: the open-drift index decides, also between concurrent checkers.
    Params p;
    p.Add(env).Add(o.address).Add(now).Add(o.actor).Add(o.diff);
    Result<Rows> r = c_->Exec(kObserveDrift, p, what);
    if (!r.ok()) return r.error();
    if (r->empty() || !r->Bool(0, 1)) continue;
    opened.push_back(OpenedDrift(r->Int(0, 0), env, o, now));
  }
  if (!clean.empty()) {
    Params p;
    p.Add(env).Add(EncodeTextArray(clean)).Add(now).Add(resolution);
    Result<Rows> r = c_->Exec(kResolveDrift, p, what);
    if (!r.ok()) return r.error();
  }
  Status committed = txn->Commit(what);
  if (!committed.ok()) return committed.error();
  return opened;
}

Result<int64_t> PostgresStateStore::CountRemediation(const std::string& env,
                                                     const std::string& address) {
  const std::string what = "count a remediation of " + address + " in environment " + env;
  std::optional<Transaction> txn;
  if (Status s = BeginFenced(env, what, txn); !s.ok()) return s.error();
  Result<Rows> r = c_->Exec(kCountRemediation, Params().Add(env).Add(address), what);
  if (!r.ok()) return r.error();
  if (txn) {
    if (Status s = txn->Commit(what); !s.ok()) return s.error();
  }
  return r->empty() ? 0 : r->Int(0, 0);
}

Result<std::vector<DriftRecord>> PostgresStateStore::ListDrift(const std::string& env,
                                                               bool include_resolved, int limit) {
  const std::string what = ListDriftWhat(env);
  Params p;
  p.Add(env);
  AddLimit(p, limit);
  Result<Rows> r = c_->Exec(include_resolved ? kListDrift : kListOpenDrift, p, what);
  if (!r.ok()) return r.error();
  std::vector<DriftRecord> out;
  out.reserve(static_cast<size_t>(r->size()));
  for (int i = 0; i < r->size(); ++i) out.push_back(ReadDrift(*r, i));
  return out;
}

// --- the notification outbox ---

Status PostgresStateStore::Enqueue(const std::vector<OutboxEntry>& entries) {
  if (entries.empty()) return Status::Ok();
  const std::string what = "enqueue " + std::to_string(entries.size()) + " notification(s)";
  Result<Transaction> txn = Transaction::Write(*c_, what);
  if (!txn.ok()) return txn.error();
  const int64_t now = NowUnix();
  for (const OutboxEntry& e : entries) {
    Params p;
    p.Add(e.sink).Add(e.environment).Add(e.event_type).Add(e.event_id).Add(e.subject);
    p.Add(e.event_json).Add(e.created_at > 0 ? e.created_at : now).Add(e.next_attempt_at);
    Result<Rows> r = c_->Exec(kEnqueue, p, what);
    if (!r.ok()) return r.error();
  }
  return txn->Commit(what);
}

Result<std::vector<OutboxEntry>> PostgresStateStore::DueDeliveries(int64_t now, int limit) {
  Params p;
  p.Add(now);
  AddLimit(p, limit > 0 ? limit : -1);
  Result<Rows> r = c_->Exec(kDue, p, "list the notifications due");
  if (!r.ok()) return r.error();
  std::vector<OutboxEntry> out;
  out.reserve(static_cast<size_t>(r->size()));
  for (int i = 0; i < r->size(); ++i) out.push_back(ReadOutbox(*r, i));
  return out;
}

Status PostgresStateStore::MarkDelivered(int64_t id, int64_t now) {
  Result<Rows> r = c_->Exec(kMarkDelivered, Params().Add(id).Add(now),
                            "mark notification " + std::to_string(id) + " delivered");
  if (!r.ok()) return r.error();
  return Status::Ok();
}

Status PostgresStateStore::MarkFailed(int64_t id, const std::string& error,
                                      int64_t next_attempt_at) {
  Result<Rows> r = c_->Exec(kMarkFailed, Params().Add(id).Add(error).Add(next_attempt_at),
                            "record a failed delivery of notification " + std::to_string(id));
  if (!r.ok()) return r.error();
  return Status::Ok();
}

Result<std::vector<SinkStatus>> PostgresStateStore::OutboxStatus() {
  Result<Rows> r = c_->Exec(kOutboxStatus, "read the notification outbox");
  if (!r.ok()) return r.error();
  std::vector<SinkStatus> out;
  for (int i = 0; i < r->size(); ++i) {
    SinkStatus s;
    s.sink = r->Text(i, 0);
    s.delivered = r->Int(i, 1);
    s.pending = r->Int(i, 2);
    s.failing = r->Int(i, 3);
    s.next_attempt_at = r->Int(i, 4);
    s.last_delivered_at = r->Int(i, 5);
    s.last_error = r->Text(i, 6);
    out.push_back(std::move(s));
  }
  return out;
}

Result<int64_t> PostgresStateStore::PruneOutbox(int64_t delivered_before) {
  Result<Rows> r =
      c_->Exec(kPruneOutbox, Params().Add(delivered_before), "remove delivered notifications");
  if (!r.ok()) return r.error();
  return r->empty() ? 0 : r->Int(0, 0);
}

Result<int64_t> PostgresStateStore::LastEnqueuedAt(const std::string& sink,
                                                   const std::string& subject) {
  Result<Rows> r = c_->Exec(kLastEnqueued, Params().Add(sink).Add(subject),
                            "read the notifications about " + subject);
  if (!r.ok()) return r.error();
  return r->empty() ? 0 : r->Int(0, 0);
}

}  // namespace driftless::state
