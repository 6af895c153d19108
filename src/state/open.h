#pragma once

#include <memory>
#include <string>

#include "base/result.h"
#include "state/state_store.h"

namespace driftless::state {

/// True when `location` names a PostgreSQL state (a postgres:// or postgresql:// URI); every
/// other location is the path of a SQLite file.
bool IsPostgresLocation(const std::string& location);

/// How messages name a state location: a PostgreSQL URI with its password masked, a path as is.
std::string DisplayLocation(const std::string& location);

/// Opens the state at `location` with the backend it names: PostgresStateStore for
/// postgres:// and postgresql:// URIs, SqliteStateStore for a path. The one place outside tests
/// where a store is opened, so that every command and thread uses the same backend.
Result<std::unique_ptr<StateStore>> OpenStateStore(const std::string& location);

}  // namespace driftless::state
