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
