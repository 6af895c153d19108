#pragma once

#include "base/result.h"
#include "server/api/api.h"

namespace driftless::server::api {

/// Registers the token routes (right `tokens`: an admin token for every environment):
/// GET /api/v1/tokens (never a hash or a secret), POST /api/v1/tokens
/// `{"role", "name", "envs", "ttl"}` (201 with the new token's text, shown once) and
/// DELETE /api/v1/tokens/{name} (revokes it). Creations and revocations are audited.
Status AddTokenRoutes(http::Router& router, const ApiContext& context);

}  // namespace driftless::server::api
