#pragma once

#include <memory>

#include "provider/provider.h"

namespace driftless::providers::postgres {

/// The `postgres` provider: roles, databases, schemas, grants and extensions of one PostgreSQL
/// server per target (`dsn`). See README.md beside this file and docs/postgres.md.
std::unique_ptr<provider::Provider> NewPostgresProvider();

}  // namespace driftless::providers::postgres
