#include "server/api/openapi.h"

#include <string>

namespace driftless::server::api {

Status AddOpenApiRoutes(http::Router& router, const ApiContext&) {
  return router.AddSync("GET", "/api/v1/openapi.json",
                        [](const http::Request&) {
                          return http::Response::Json(200, std::string(OpenApiDocument()));
                        },
                        {"read", false});
}

}  // namespace driftless::server::api
