#include "state/sqlite/schema.h"

#include <string>

namespace driftless::state::sqlite_detail {

namespace {

// The ordered migrations: entry i brings a database from version i to version i + 1. Never edit
// an entry once released; append a new one instead.
constexpr const char* kMigrations[] = {
    // 1: the initial schema.
    R"sql(
CREATE TABLE environments (
  name       TEXT PRIMARY KEY NOT NULL,
  serial     INTEGER NOT NULL DEFAULT 0,
  salt       TEXT NOT NULL,
  created_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- WITHOUT ROWID: rows are stored in (env, address) order, so listing an environment is one
-- sequential scan instead of an index walk with a random table lookup per row.
CREATE TABLE resources (
  env         TEXT NOT NULL REFERENCES environments(name),
  address     TEXT NOT NULL,
  kind        TEXT NOT NULL,
  name        TEXT NOT NULL,
  target      TEXT NOT NULL DEFAULT '',
  attrs_json  TEXT NOT NULL DEFAULT '{}',
  spec_hash   TEXT NOT NULL DEFAULT '',
  live_digest TEXT NOT NULL DEFAULT '',
  depends_on  TEXT NOT NULL DEFAULT '[]',
  "commit"    TEXT NOT NULL DEFAULT '',
  serial      INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL,
  PRIMARY KEY (env, address)
) STRICT, WITHOUT ROWID;

CREATE TABLE applies (
  id             INTEGER PRIMARY KEY AUTOINCREMENT,
  env            TEXT NOT NULL REFERENCES environments(name),
  kind           TEXT NOT NULL,
  user           TEXT NOT NULL,
  host           TEXT NOT NULL,
  pid            INTEGER NOT NULL,
  "commit"       TEXT NOT NULL DEFAULT '',
  commit_subject TEXT NOT NULL DEFAULT '',
  commit_author  TEXT NOT NULL DEFAULT '',
  decl_hash      TEXT NOT NULL DEFAULT '',
  started_at     INTEGER NOT NULL,
  finished_at    INTEGER NOT NULL DEFAULT 0,
  status         TEXT NOT NULL,
  summary        TEXT NOT NULL DEFAULT '',
  plan_json      TEXT NOT NULL DEFAULT '',
  lock_token     INTEGER NOT NULL
) STRICT;
CREATE INDEX applies_by_env ON applies (env, id);

CREATE TABLE changes (
  apply_id INTEGER NOT NULL REFERENCES applies(id) ON DELETE CASCADE,
  seq      INTEGER NOT NULL,
  address  TEXT NOT NULL,
  action   TEXT NOT NULL,
  status   TEXT NOT NULL,
  error    TEXT NOT NULL DEFAULT '',
  diff     TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (apply_id, seq)
) STRICT;
CREATE INDEX changes_by_address ON changes (apply_id, address);

CREATE TABLE locks (
  env         TEXT PRIMARY KEY NOT NULL,
  token       INTEGER NOT NULL,
  user        TEXT NOT NULL,
  host        TEXT NOT NULL,
  pid         INTEGER NOT NULL,
  operation   TEXT NOT NULL,
  acquired_at INTEGER NOT NULL,
  expires_at  INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE lock_tokens (
  env        TEXT PRIMARY KEY NOT NULL,
  last_token INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
)sql",
    // 2: the drift timeline. At most one open drift per resource (resolved_at = 0).
    R"sql(
CREATE TABLE drift (
  id           INTEGER PRIMARY KEY AUTOINCREMENT,
  env          TEXT NOT NULL REFERENCES environments(name),
  address      TEXT NOT NULL,
  onset        INTEGER NOT NULL,
  last_seen    INTEGER NOT NULL,
  resolved_at  INTEGER NOT NULL DEFAULT 0,
  resolution   TEXT NOT NULL DEFAULT '',
  actor        TEXT NOT NULL DEFAULT '',
  diff         TEXT NOT NULL DEFAULT '',
  remediations INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE UNIQUE INDEX drift_open ON drift (env, address) WHERE resolved_at = 0;
CREATE INDEX drift_by_env ON drift (env, id);
)sql",
    // 3: the notification outbox: one row per event and sink, kept after delivery.
    R"sql(
CREATE TABLE outbox (
  id              INTEGER PRIMARY KEY AUTOINCREMENT,
  sink            TEXT NOT NULL,
  env             TEXT NOT NULL,
  event_type      TEXT NOT NULL,
  event_id        TEXT NOT NULL,
  subject         TEXT NOT NULL DEFAULT '',
  event_json      TEXT NOT NULL,
  attempts        INTEGER NOT NULL DEFAULT 0,
  created_at      INTEGER NOT NULL,
  next_attempt_at INTEGER NOT NULL,
  delivered_at    INTEGER NOT NULL DEFAULT 0,
  last_error      TEXT NOT NULL DEFAULT ''
) STRICT;
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE delivered_at = 0;
CREATE INDEX outbox_by_subject ON outbox (sink, subject, created_at) WHERE subject != '';
)sql",
    // 4: the stamp of each resource's live object, recorded when a read found it unchanged, so
    // that the next plan can skip reading it (provider::Target::ReadIfChanged).
    R"sql(
ALTER TABLE resources ADD COLUMN live_stamp TEXT NOT NULL DEFAULT '';
)sql",
    // ---- driftless serve: runs, approvals, tokens, audit, events, webhook deliveries.
    // Numbered after the migrations before it (renumber this entry, never its text, if another
    // migration lands first).
    // 5: the controller's records (state/control_store.h).
    R"sql(
-- At most one active run (planning, applying) per environment: the index refuses a second.
CREATE TABLE runs (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  env         TEXT NOT NULL,
  action      TEXT NOT NULL CHECK (action IN ('plan', 'apply', 'destroy', 'remediation')),
  status      TEXT NOT NULL CHECK (status IN ('queued', 'planning', 'planned',
                'awaiting_approval', 'applying', 'applied', 'no_changes', 'errored',
                'canceled', 'superseded', 'interrupted')),
  "commit"    TEXT NOT NULL DEFAULT '',
  plan_hash   TEXT NOT NULL DEFAULT '',
  plan_text   TEXT NOT NULL DEFAULT '',
  plan_json   TEXT NOT NULL DEFAULT '',
  author      TEXT NOT NULL DEFAULT '',
  created_at  INTEGER NOT NULL,
  started_at  INTEGER NOT NULL DEFAULT 0,
  finished_at INTEGER NOT NULL DEFAULT 0,
  message     TEXT NOT NULL DEFAULT '',
  apply_id    INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE UNIQUE INDEX runs_one_active ON runs (env) WHERE status IN ('planning', 'applying');
CREATE INDEX runs_by_env ON runs (env, id);
CREATE INDEX runs_waiting ON runs (env, id)
  WHERE status IN ('queued', 'planned', 'awaiting_approval');

CREATE TABLE approvals (
  run_id     INTEGER NOT NULL REFERENCES runs(id),
  who        TEXT NOT NULL,
  plan_hash  TEXT NOT NULL,
  decision   TEXT NOT NULL CHECK (decision IN ('approved', 'rejected')),
  comment    TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL,
  PRIMARY KEY (run_id, who)
) STRICT, WITHOUT ROWID;

-- Only the SHA-256 of a token's secret is kept; a name is unique among live tokens.
CREATE TABLE tokens (
  hash       TEXT PRIMARY KEY NOT NULL,
  name       TEXT NOT NULL,
  role       TEXT NOT NULL CHECK (role IN ('viewer', 'editor', 'admin')),
  envs       TEXT NOT NULL,
  created_by TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL DEFAULT 0,
  revoked_at INTEGER NOT NULL DEFAULT 0
) STRICT, WITHOUT ROWID;
CREATE UNIQUE INDEX tokens_live_name ON tokens (name) WHERE revoked_at = 0;

-- Append-only: the triggers refuse every UPDATE and DELETE.
CREATE TABLE audit (
  id         INTEGER PRIMARY KEY AUTOINCREMENT,
  time       INTEGER NOT NULL,
  who        TEXT NOT NULL DEFAULT '',
  action     TEXT NOT NULL,
  subject    TEXT NOT NULL DEFAULT '',
  env        TEXT NOT NULL DEFAULT '',
  run_id     INTEGER NOT NULL DEFAULT 0,
  plan_hash  TEXT NOT NULL DEFAULT '',
  result     TEXT NOT NULL CHECK (result IN ('allowed', 'refused')),
  reason     TEXT NOT NULL DEFAULT '',
  request_id TEXT NOT NULL DEFAULT ''
) STRICT;
CREATE INDEX audit_by_env ON audit (env, id);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;

-- AUTOINCREMENT: ids only grow, never reused after pruning. pruned_through is the highest id
-- ever pruned: a reader that last saw a lower id missed events.
CREATE TABLE events (
  id           INTEGER PRIMARY KEY AUTOINCREMENT,
  type         TEXT NOT NULL,
  env          TEXT NOT NULL,
  payload_json TEXT NOT NULL,
  time         INTEGER NOT NULL
) STRICT;
CREATE INDEX events_by_time ON events (time);
CREATE TABLE event_retention (
  one            INTEGER PRIMARY KEY CHECK (one = 1),
  pruned_through INTEGER NOT NULL
) STRICT;
INSERT INTO event_retention VALUES (1, 0);

CREATE TABLE webhook_deliveries (
  source  TEXT NOT NULL,
  id      TEXT NOT NULL,
  seen_at INTEGER NOT NULL,
  PRIMARY KEY (source, id)
) STRICT, WITHOUT ROWID;
CREATE INDEX webhook_deliveries_by_time ON webhook_deliveries (seen_at);
)sql",
    // 6: a token's rights, narrower than its role's ("" : all the role grants).
    R"sql(
ALTER TABLE tokens ADD COLUMN rights TEXT NOT NULL DEFAULT '';
)sql",
    // 7: browser sessions (POST /api/v1/session): only the SHA-256 of a session's id is kept.
    R"sql(
CREATE TABLE sessions (
  hash       TEXT PRIMARY KEY NOT NULL,
  token_hash TEXT NOT NULL,
  csrf       TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX sessions_by_expiry ON sessions (expires_at);
)sql",
    // 8: a cancel asked for a run by another connection (RequestCancel): unix seconds, 0 when
    // none was asked. Renumber this entry, never its text, if another lands first.
    R"sql(
ALTER TABLE runs ADD COLUMN cancel_requested_at INTEGER NOT NULL DEFAULT 0;
)sql",
    // ---- end of the serve migrations.
};

constexpr int kLatest = static_cast<int>(sizeof kMigrations / sizeof kMigrations[0]);

Result<int64_t> ReadPragma(Database& db, std::string_view sql, std::string_view what) {
  Result<Stmt> stmt = db.Prepare(sql);
  if (!stmt.ok()) return stmt.error();
  Result<bool> row = stmt->Step(what);
  if (!row.ok()) return row.error();
  return *row ? stmt->Int(0) : 0;
}

// Refuses files of other programs and databases written by a newer driftless.
Status CheckVersion(Database& db) {
  Result<int64_t> version = ReadPragma(db, "PRAGMA user_version", "read the schema version");
  if (!version.ok()) return version.error();
  Result<int64_t> app = ReadPragma(db, "PRAGMA application_id", "read the application id");
  if (!app.ok()) return app.error();
  bool ours = *app == kApplicationId;
  if (!ours && *app == 0 && *version == 0) {
    // A new, empty file becomes ours; a file with tables in it belongs to someone else.
    Result<int64_t> tables =
        ReadPragma(db, "SELECT count(*) FROM sqlite_schema", "inspect the schema");
    if (!tables.ok()) return tables.error();
    ours = *tables == 0;
  }
  if (!ours) {
    return MakeError("state database " + db.path() +
                     " is not a driftless state database (it was made by another program); "
                     "move it away or choose another state path");
  }
  if (*version > kLatest) {
    return MakeError("state database " + db.path() + " has schema version " +
                     std::to_string(*version) + " but this driftless knows versions up to " +
                     std::to_string(kLatest) +
                     ": it was written by a newer driftless; upgrade driftless to use it");
  }
  return Status::Ok();
}

}  // namespace

int LatestSchemaVersion() { return kLatest; }

Result<int> ReadSchemaVersion(Database& db) {
  Result<int64_t> v = ReadPragma(db, "PRAGMA user_version", "read the schema version");
  if (!v.ok()) return v.error();
  return static_cast<int>(*v);
}

Status Migrate(Database& db) {
  // Checks first without the write lock: the common case is an up-to-date database. In one
  // snapshot: another process may create the schema between two reads, and a version of 0 next
  // to a schema with tables would look like someone else's file.
  {
    Result<Transaction> read = Transaction::Read(db, "read the schema version");
    if (!read.ok()) return read.error();
    Status checked = CheckVersion(db);
    if (!checked.ok()) return checked;
    Result<int> version = ReadSchemaVersion(db);
    if (!version.ok()) return version.error();
    Status committed = read->Commit("read the schema version");
    if (!committed.ok()) return committed;
    if (*version == kLatest) return Status::Ok();
  }

  Result<Transaction> txn = Transaction::Write(db, "upgrade the schema");
  if (!txn.ok()) return txn.error();
  // Again under the write lock: another process may have migrated in the meantime.
  Status checked = CheckVersion(db);
  if (!checked.ok()) return checked;
  Result<int> version = ReadSchemaVersion(db);
  if (!version.ok()) return version.error();
  for (int v = *version; v < kLatest; ++v) {
    Status applied =
        db.Exec(kMigrations[v], "upgrade the schema to version " + std::to_string(v + 1));
    if (!applied.ok()) return applied;
  }
  std::string stamp = "PRAGMA user_version = " + std::to_string(kLatest) +
                      "; PRAGMA application_id = " + std::to_string(kApplicationId) + ";";
  Status stamped = db.Exec(stamp.c_str(), "record the schema version");
  if (!stamped.ok()) return stamped;
  return txn->Commit("upgrade the schema");
}

}  // namespace driftless::state::sqlite_detail
