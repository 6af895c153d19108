#pragma once

#include "base/result.h"
#include "server/api/api.h"

namespace driftless::server::api {

/// Registers GET /api/v1/audit (right `tokens`: admin tokens for every environment): the audit
/// log, newest first, filtered by `?environment=` and `?who=`.
Status AddAuditRoutes(http::Router& router, const ApiContext& context);

}  // namespace driftless::server::api
