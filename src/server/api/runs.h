#pragma once

#include "base/result.h"
#include "server/api/api.h"

namespace driftless::server::api {

/// Registers the run routes: POST /api/v1/environments/{env}/runs (right `plan`; an apply also
/// needs `apply` and a destroy `destroy`), GET /api/v1/environments/{env}/runs and
/// GET /api/v1/runs/{id} (`read`), POST /api/v1/runs/{id}/cancel (`apply`).
Status AddRunRoutes(http::Router& router, const ApiContext& context);

}  // namespace driftless::server::api
