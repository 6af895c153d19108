#pragma once

#include "base/result.h"
#include "state/postgres/pg_conn.h"

namespace driftless::state::pg_detail {

/// The schema (namespace) that holds every table of the state.
inline constexpr const char kSchema[] = "driftless";

/// The highest schema version this build knows.
int LatestSchemaVersion();

/// Brings the schema up to date: each missing migration runs once, in order, inside one
/// transaction that holds a transaction-level advisory lock, so that concurrent first openers
/// queue instead of racing. Fails when the database was migrated by a newer driftless.
Status Migrate(Connection& c);

}  // namespace driftless::state::pg_detail
