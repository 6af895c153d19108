#pragma once

// Serving the web UI from `driftless serve`: index.html for `/` and every client route (a GET
// that no API route takes), the hashed bundle under /assets/, with caching headers, ETags and
// 304s, gzip when the client accepts it, and the security headers of every UI answer.

#include <span>
#include <string_view>

#include "base/result.h"
#include "server/http/message.h"
#include "server/http/router.h"
#include "server/ui/assets.h"

namespace driftless::server::ui {

/// Cache-Control of index.html and the other unhashed files: always revalidated.
inline constexpr std::string_view kNoCache = "no-cache";
/// Cache-Control of the hashed files under /assets/: their name changes with their content.
inline constexpr std::string_view kImmutable = "public, max-age=31536000, immutable";
/// Content-Security-Policy of every UI answer: nothing loads from another origin, no inline
/// script or style, no framing.
inline constexpr std::string_view kContentSecurityPolicy =
    "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Whether an Accept-Encoding value allows gzip (a "gzip" or "*" coding whose q is not 0).
bool AcceptsGzip(std::string_view accept_encoding);

/// The answer to a GET of `request.path` from `assets`: the asset of that path, index.html for
/// any other path (a client route), a 404 envelope for an unknown /assets/ file and for paths
/// under /api/, /metrics, /livez and /readyz that no route took.
http::Response Serve(std::span<const Asset> assets, const http::Request& request);

/// Registers `GET /` and the router's GET fallback to Serve(assets, …). Call it after the API
/// routes (they win anyway: the fallback only takes what no route matches). `assets` must
/// outlive the router.
Status AddUiRoutes(http::Router& router, std::span<const Asset> assets);

}  // namespace driftless::server::ui
