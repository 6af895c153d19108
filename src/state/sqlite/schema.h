#pragma once

#include "base/result.h"
#include "state/sqlite/sqlite_db.h"

namespace driftless::state::sqlite_detail {

/// The schema version this build writes: the number of migrations it knows.
int LatestSchemaVersion();

/// `PRAGMA application_id` of a driftless state database ("Drft").
inline constexpr int kApplicationId = 0x44726674;

/// Brings the database to LatestSchemaVersion(), applying the missing migrations in order in one
/// write transaction. Refuses a database written by a newer driftless and a database that holds
/// tables but no driftless schema (some other program's file).
Status Migrate(Database& db);

/// The schema version recorded in the database (PRAGMA user_version).
Result<int> ReadSchemaVersion(Database& db);

}  // namespace driftless::state::sqlite_detail
