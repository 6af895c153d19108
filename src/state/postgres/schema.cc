#include "state/postgres/schema.h"

#include <string>

namespace driftless::state::pg_detail {

namespace {

// The ordered migrations: entry i brings a database from version i to version i + 1. Never edit
// an entry once released; append a new one instead. Times are unix seconds (bigint), 0 meaning
// "not yet", as in the SQLite backend.
// Names, environments and addresses use the "C" collation: listings come back in byte order,
// as the SQLite backend and std::sort order them, whatever the database's locale.
constexpr const char* kMigrations[] = {
    // 1: environments, resources, applies and their changes, locks and their tokens.
    R"sql(
CREATE TABLE driftless.environments (
  name       text COLLATE "C" PRIMARY KEY,
  serial     bigint NOT NULL DEFAULT 0,
  salt       text NOT NULL,
  created_at bigint NOT NULL
);

CREATE TABLE driftless.resources (
  env         text COLLATE "C" NOT NULL REFERENCES driftless.environments(name),
  address     text COLLATE "C" NOT NULL,
  kind        text NOT NULL,
  name        text NOT NULL,
  target      text NOT NULL DEFAULT '',
  attrs_json  text NOT NULL DEFAULT '{}',
  spec_hash   text NOT NULL DEFAULT '',
  live_digest text NOT NULL DEFAULT '',
  depends_on  text[] COLLATE "C" NOT NULL DEFAULT '{}',
  "commit"    text NOT NULL DEFAULT '',
  serial      bigint NOT NULL,
  updated_at  bigint NOT NULL,
  PRIMARY KEY (env, address)
);

CREATE TABLE driftless.applies (
  id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  env            text COLLATE "C" NOT NULL REFERENCES driftless.environments(name),
  kind           text NOT NULL,
  "user"         text NOT NULL,
  host           text NOT NULL,
  pid            bigint NOT NULL,
  "commit"       text NOT NULL DEFAULT '',
  commit_subject text NOT NULL DEFAULT '',
  commit_author  text NOT NULL DEFAULT '',
  decl_hash      text NOT NULL DEFAULT '',
  started_at     bigint NOT NULL,
  finished_at    bigint NOT NULL DEFAULT 0,
  status         text NOT NULL,
  summary        text NOT NULL DEFAULT '',
  plan_json      text NOT NULL DEFAULT '',
  lock_token     bigint NOT NULL
);
CREATE INDEX applies_by_env ON driftless.applies (env, id);
CREATE INDEX applies_unfinished ON driftless.applies (env) WHERE status IN ('running', 'interrupted');

CREATE TABLE driftless.changes (
  apply_id bigint NOT NULL REFERENCES driftless.applies(id) ON DELETE CASCADE,
  seq      bigint NOT NULL,
  address  text COLLATE "C" NOT NULL,
  action   text NOT NULL,
  status   text NOT NULL,
  error    text NOT NULL DEFAULT '',
  diff     text NOT NULL DEFAULT '',
  PRIMARY KEY (apply_id, seq)
);
CREATE INDEX changes_by_address ON driftless.changes (apply_id, address);

CREATE TABLE driftless.locks (
  env         text COLLATE "C" PRIMARY KEY,
  token       bigint NOT NULL,
  "user"      text NOT NULL,
  host        text NOT NULL,
  pid         bigint NOT NULL,
  operation   text NOT NULL,
  acquired_at bigint NOT NULL,
  expires_at  bigint NOT NULL
);

-- The per-environment counter lock tokens come from; its row is also what serialises the
-- acquirers of one environment's lock.
CREATE TABLE driftless.lock_tokens (
  env        text COLLATE "C" PRIMARY KEY,
  last_token bigint NOT NULL
);
)sql",
    // 2: the drift timeline. At most one open drift per resource (resolved_at = 0).
    R"sql(
CREATE TABLE driftless.drift (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  env          text COLLATE "C" NOT NULL REFERENCES driftless.environments(name),
  address      text COLLATE "C" NOT NULL,
  onset        bigint NOT NULL,
  last_seen    bigint NOT NULL,
  resolved_at  bigint NOT NULL DEFAULT 0,
  resolution   text NOT NULL DEFAULT '',
  actor        text NOT NULL DEFAULT '',
  diff         text NOT NULL DEFAULT '',
  remediations bigint NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX drift_open ON driftless.drift (env, address) WHERE resolved_at = 0;
CREATE INDEX drift_by_env ON driftless.drift (env, id);
)sql",
    // 3: the notification outbox: one row per event and sink, kept after delivery.
    R"sql(
CREATE TABLE driftless.outbox (
  id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  sink            text COLLATE "C" NOT NULL,
  env             text COLLATE "C" NOT NULL,
  event_type      text NOT NULL,
  event_id        text NOT NULL,
  subject         text NOT NULL DEFAULT '',
  event_json      text NOT NULL,
  attempts        bigint NOT NULL DEFAULT 0,
  created_at      bigint NOT NULL,
  next_attempt_at bigint NOT NULL,
  delivered_at    bigint NOT NULL DEFAULT 0,
  last_error      text NOT NULL DEFAULT ''
);
CREATE INDEX outbox_due ON driftless.outbox (next_attempt_at) WHERE delivered_at = 0;
CREATE INDEX outbox_by_subject ON driftless.outbox (sink, subject, created_at) WHERE subject <> '';
)sql",
    // 4: the stamp of each resource's live object, recorded when a read found it unchanged, so
    // that the next plan can skip reading it (provider::Target::ReadIfChanged).
    R"sql(
ALTER TABLE driftless.resources ADD COLUMN live_stamp text NOT NULL DEFAULT '';
)sql",
    // ---- driftless serve: runs, approvals, tokens, audit, events, webhook deliveries.
    // Numbered after the migrations before it (renumber this entry, never its text, if another
    // migration lands first).
    // 5: the controller's records (state/control_store.h).
    R"sql(
-- At most one active run (planning, applying) per environment: the index refuses a second.
CREATE TABLE driftless.runs (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  env         text COLLATE "C" NOT NULL,
  action      text NOT NULL CHECK (action IN ('plan', 'apply', 'destroy', 'remediation')),
  status      text NOT NULL CHECK (status IN ('queued', 'planning', 'planned',
                'awaiting_approval', 'applying', 'applied', 'no_changes', 'errored',
                'canceled', 'superseded', 'interrupted')),
  "commit"    text NOT NULL DEFAULT '',
  plan_hash   text NOT NULL DEFAULT '',
  plan_text   text NOT NULL DEFAULT '',
  plan_json   text NOT NULL DEFAULT '',
  author      text NOT NULL DEFAULT '',
  created_at  bigint NOT NULL,
  started_at  bigint NOT NULL DEFAULT 0,
  finished_at bigint NOT NULL DEFAULT 0,
  message     text NOT NULL DEFAULT '',
  apply_id    bigint NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX runs_one_active ON driftless.runs (env)
  WHERE status IN ('planning', 'applying');
CREATE INDEX runs_by_env ON driftless.runs (env, id);
CREATE INDEX runs_waiting ON driftless.runs (env, id)
  WHERE status IN ('queued', 'planned', 'awaiting_approval');

CREATE TABLE driftless.approvals (
  run_id     bigint NOT NULL REFERENCES driftless.runs(id),
  who        text COLLATE "C" NOT NULL,
  plan_hash  text NOT NULL,
  decision   text NOT NULL CHECK (decision IN ('approved', 'rejected')),
  comment    text NOT NULL DEFAULT '',
  created_at bigint NOT NULL,
  PRIMARY KEY (run_id, who)
);

-- Only the SHA-256 of a token's secret is kept; a name is unique among live tokens.
CREATE TABLE driftless.tokens (
  hash       text PRIMARY KEY,
  name       text COLLATE "C" NOT NULL,
  role       text NOT NULL CHECK (role IN ('viewer', 'editor', 'admin')),
  envs       text NOT NULL,
  created_by text NOT NULL DEFAULT '',
  created_at bigint NOT NULL,
  expires_at bigint NOT NULL DEFAULT 0,
  revoked_at bigint NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX tokens_live_name ON driftless.tokens (name) WHERE revoked_at = 0;

-- Append-only: the trigger refuses every UPDATE, DELETE and TRUNCATE.
CREATE TABLE driftless.audit (
  id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  time       bigint NOT NULL,
  who        text NOT NULL DEFAULT '',
  action     text NOT NULL,
  subject    text NOT NULL DEFAULT '',
  env        text COLLATE "C" NOT NULL DEFAULT '',
  run_id     bigint NOT NULL DEFAULT 0,
  plan_hash  text NOT NULL DEFAULT '',
  result     text NOT NULL CHECK (result IN ('allowed', 'refused')),
  reason     text NOT NULL DEFAULT '',
  request_id text NOT NULL DEFAULT ''
);
CREATE INDEX audit_by_env ON driftless.audit (env, id);
CREATE FUNCTION driftless.audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'the audit log is append-only';
END $$;
CREATE TRIGGER audit_no_change BEFORE UPDATE OR DELETE ON driftless.audit
  FOR EACH ROW EXECUTE FUNCTION driftless.audit_append_only();
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON driftless.audit
  FOR EACH STATEMENT EXECUTE FUNCTION driftless.audit_append_only();

-- Ids only grow. Appends take a transaction-level advisory lock before they draw an id, so ids
-- become visible in order and a reader after id N never misses a smaller id committed later.
-- pruned_through is the highest id ever pruned. Every insert notifies driftless_events.
CREATE TABLE driftless.events (
  id           bigserial PRIMARY KEY,
  type         text NOT NULL,
  env          text COLLATE "C" NOT NULL,
  payload_json text NOT NULL,
  time         bigint NOT NULL
);
CREATE INDEX events_by_time ON driftless.events (time);
CREATE TABLE driftless.event_retention (
  one            integer PRIMARY KEY CHECK (one = 1),
  pruned_through bigint NOT NULL
);
INSERT INTO driftless.event_retention VALUES (1, 0);
CREATE FUNCTION driftless.events_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('driftless_events', NEW.id::text);
  RETURN NULL;
END $$;
CREATE TRIGGER events_notify AFTER INSERT ON driftless.events
  FOR EACH ROW EXECUTE FUNCTION driftless.events_notify();

CREATE TABLE driftless.webhook_deliveries (
  source  text NOT NULL,
  id      text NOT NULL,
  seen_at bigint NOT NULL,
  PRIMARY KEY (source, id)
);
CREATE INDEX webhook_deliveries_by_time ON driftless.webhook_deliveries (seen_at);
)sql",
    // 6: a token's rights, narrower than its role's ("" : all the role grants).
    R"sql(
ALTER TABLE driftless.tokens ADD COLUMN rights text NOT NULL DEFAULT '';
)sql",
    // 7: browser sessions (POST /api/v1/session): only the SHA-256 of a session's id is kept.
    R"sql(
CREATE TABLE driftless.sessions (
  hash       text PRIMARY KEY,
  token_hash text NOT NULL,
  csrf       text NOT NULL,
  created_at bigint NOT NULL,
  expires_at bigint NOT NULL
);
CREATE INDEX sessions_by_expiry ON driftless.sessions (expires_at);
)sql",
    // 8: several servers on one state: the servers alive (a heartbeat) and which one owns each
    // environment (a lease with a fencing token). Times are unix milliseconds on the database's
    // clock. Numbered after the migrations before it (renumber this entry, never its text, if
    // another lands first).
    R"sql(
CREATE TABLE driftless.servers (
  id           text PRIMARY KEY,
  host         text NOT NULL,
  pid          bigint NOT NULL,
  started_at   bigint NOT NULL,
  heartbeat_ms bigint NOT NULL,
  expires_ms   bigint NOT NULL
);
CREATE SEQUENCE driftless.owner_tokens;
CREATE TABLE driftless.owners (
  env         text COLLATE "C" PRIMARY KEY,
  server      text NOT NULL,
  token       bigint NOT NULL,
  acquired_ms bigint NOT NULL,
  expires_ms  bigint NOT NULL
);
CREATE INDEX owners_by_server ON driftless.owners (server);
)sql",
    // 9: a cancel asked on a server that does not run the run (RequestCancel): unix seconds, 0
    // when none was asked. Renumber this entry, never its text, if another lands first.
    R"sql(
ALTER TABLE driftless.runs ADD COLUMN cancel_requested_at bigint NOT NULL DEFAULT 0;
)sql",
    // ---- end of the serve migrations.
};

constexpr const char* kDescriptions[] = {
    "environments, resources, applies, changes, locks",
    "drift timeline",
    "notification outbox",
    "live stamps",
    "runs, approvals, tokens, audit, events, webhook deliveries",
    "token rights",
    "browser sessions",
    "servers and environment owners",
    "cancel requests of runs",
};

constexpr int kLatest = static_cast<int>(sizeof kMigrations / sizeof kMigrations[0]);
static_assert(sizeof kDescriptions / sizeof kDescriptions[0] == kLatest);

// Any constant: the key of the advisory lock that serialises migrations (0x44726674, "Drft").
constexpr const char* kAdvisoryLock = "SELECT pg_advisory_xact_lock(1148347508)";

constexpr const char* kHasMigrations =
    "SELECT to_regclass('driftless.schema_migrations') IS NOT NULL";
constexpr const char* kVersion =
    "SELECT coalesce(max(version), 0) FROM driftless.schema_migrations";

Status CheckNotNewer(Connection& c, int64_t version) {
  if (version <= kLatest) return Status::Ok();
  return MakeError("state " + c.shown() + " has schema version " + std::to_string(version) +
                   " but this driftless knows versions up to " + std::to_string(kLatest) +
                   ": it was written by a newer driftless; upgrade driftless to use it");
}

// The version, 0 when there is no migrations table yet (a fresh database).
Result<int64_t> ReadVersion(Connection& c) {
  Result<Rows> has = c.Exec(kHasMigrations, "read the schema version");
  if (!has.ok()) return has.error();
  if (!has->Bool(0, 0)) return 0;
  Result<Rows> rows = c.Exec(kVersion, "read the schema version");
  if (!rows.ok()) return rows.error();
  return rows->Int(0, 0);
}

}  // namespace

int LatestSchemaVersion() { return kLatest; }

Status Migrate(Connection& c) {
  // The common case, without any lock: up to date.
  Result<int64_t> version = ReadVersion(c);
  if (!version.ok()) return version.error();
  if (Status s = CheckNotNewer(c, *version); !s.ok()) return s;
  if (*version == kLatest) return Status::Ok();

  const std::string what = "upgrade the schema";
  Result<Transaction> txn = Transaction::Write(c, what);
  if (!txn.ok()) return txn.error();
  Status locked = c.Script(kAdvisoryLock, what);
  if (!locked.ok()) return locked;
  Status made = c.Script(
      "CREATE SCHEMA IF NOT EXISTS driftless; "
      "CREATE TABLE IF NOT EXISTS driftless.schema_migrations ("
      "  version     integer PRIMARY KEY,"
      "  description text NOT NULL,"
      "  applied_at  timestamptz NOT NULL DEFAULT now())",
      what);
  if (!made.ok()) return made;
  // Again under the lock: another process may have migrated in the meantime.
  version = ReadVersion(c);
  if (!version.ok()) return version.error();
  if (Status s = CheckNotNewer(c, *version); !s.ok()) return s;
  for (int64_t v = *version; v < kLatest; ++v) {
    const std::string step = "upgrade the schema to version " + std::to_string(v + 1);
    Status applied = c.Script(kMigrations[v], step);
    if (!applied.ok()) return applied;
    Params p;
    p.Add(v + 1).Add(kDescriptions[v]);
    Result<Rows> stamped = c.Exec(
        "INSERT INTO driftless.schema_migrations (version, description) VALUES ($1, $2)", p, step);
    if (!stamped.ok()) return stamped.error();
  }
  return txn->Commit(what);
}

}  // namespace driftless::state::pg_detail
