#pragma once

#include <string>
#include <string_view>

namespace driftless::state {

/// True when `location` names a PostgreSQL state: a postgres:// or postgresql:// URI.
bool IsPostgresUri(std::string_view location);

/// `location` (a URI or libpq key=value pairs) with any password replaced by "***", for every
/// message that names it: `postgres://app:***@db/state`, `host=db password=*** dbname=state`.
std::string MaskPassword(std::string_view location);

}  // namespace driftless::state
