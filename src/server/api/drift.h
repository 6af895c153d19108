#pragma once

#include "base/result.h"
#include "server/api/api.h"

namespace driftless::server::api {

/// Registers the drift routes (right `read`): GET /api/v1/environments/{env}/drift (the open
/// drifts) and GET /api/v1/environments/{env}/drift/timeline (every drift, resolved ones too,
/// newest first: onset, last seen, resolution).
Status AddDriftRoutes(http::Router& router, const ApiContext& context);

}  // namespace driftless::server::api
