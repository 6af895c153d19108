#include "state/open.h"

#include "state/postgres/location.h"
#include "state/postgres/postgres_state_store.h"
#include "state/sqlite/sqlite_state_store.h"

namespace driftless::state {

bool IsPostgresLocation(const std::string& location) { return IsPostgresUri(location); }

std::string DisplayLocation(const std::string& location) {
  return IsPostgresLocation(location) ? MaskPassword(location) : location;
}

Result<std::unique_ptr<StateStore>> OpenStateStore(const std::string& location) {
  if (IsPostgresLocation(location)) {
    Result<std::unique_ptr<PostgresStateStore>> pg = PostgresStateStore::Open(location);
    if (!pg.ok()) return pg.error();
    return std::unique_ptr<StateStore>(std::move(*pg));
  }
  Result<std::unique_ptr<SqliteStateStore>> sqlite = SqliteStateStore::Open(location);
  if (!sqlite.ok()) return sqlite.error();
  return std::unique_ptr<StateStore>(std::move(*sqlite));
}

}  // namespace driftless::state
