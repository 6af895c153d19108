#pragma once

#include <string_view>

#include "base/result.h"
#include "server/api/api.h"

namespace driftless::server::api {

/// The OpenAPI 3.0 document of every route of the server (src/server/api/openapi.json,
/// embedded at build time).
std::string_view OpenApiDocument();

/// Registers GET /api/v1/openapi.json (right `read`).
Status AddOpenApiRoutes(http::Router& router, const ApiContext& context);

}  // namespace driftless::server::api
