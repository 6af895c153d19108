#pragma once

#include "base/result.h"
#include "server/api/api.h"

namespace driftless::server::api {

/// Registers the environment and resource routes (right `read`):
/// GET /api/v1/environments, GET /api/v1/environments/{env},
/// GET /api/v1/environments/{env}/resources and
/// GET /api/v1/environments/{env}/resources/{kind}/{name}.
Status AddEnvironmentRoutes(http::Router& router, const ApiContext& context);

}  // namespace driftless::server::api
