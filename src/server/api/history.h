#pragma once

#include "base/result.h"
#include "server/api/api.h"

namespace driftless::server::api {

/// Registers the history routes (right `read`): GET /api/v1/environments/{env}/history (the
/// state's apply records, newest first) and GET /api/v1/environments/{env}/history/{id} (one,
/// with its changes and their diffs).
Status AddHistoryRoutes(http::Router& router, const ApiContext& context);

}  // namespace driftless::server::api
