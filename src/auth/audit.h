#pragma once

#include "state/control_store.h"
#include "value/value.h"

namespace driftless::auth {

/// An audit entry as `GET /api/v1/audit` and `driftless audit --json` show it: id, time
/// (unix seconds, as every time of the API), who, action, subject, environment, run_id (null when
/// none), plan_hash, result ("allowed" or "refused"), reason, request_id.
value::Value AuditEntryValue(const state::AuditEntry& entry);

}  // namespace driftless::auth
