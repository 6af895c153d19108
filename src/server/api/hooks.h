#pragma once

// The Git webhook of `driftless serve`: POST /api/v1/hooks/git. It needs no bearer token: the
// hook's own signature over the raw body is its authentication (GitHub's X-Hub-Signature-256,
// GitLab's X-Gitlab-Token, or the generic X-Driftless-Signature). A valid hook only asks the
// controller to fetch now; nothing in its body is trusted or even parsed.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/result.h"
#include "server/api/api.h"
#include "server/http/router.h"

namespace driftless::server::api {

/// The largest hook body accepted (1 MiB, the server's default body cap): a push event is a
/// few kilobytes per commit. A server with a larger body cap still refuses bigger hooks (413).
inline constexpr size_t kMaxHookBodyBytes = 1024 * 1024;

/// Deliveries are remembered this long (seconds) for de-duplication, then pruned.
inline constexpr int64_t kDeliveryRetentionSeconds = 7 * 24 * 3600;

/// The webhook secret in file `path`: its content without one trailing newline ("\n" or
/// "\r\n"). An error naming the file when it cannot be read, is empty, or can be read by every
/// user of the machine (mode o+r).
Result<std::string> ReadWebhookSecret(const std::string& path);

/// True when `header` is "sha256=<64 hex digits>" (any case) and the digits are the
/// HMAC-SHA256 of `body` with `secret` (base/hash.h); compared in constant time.
bool ValidSha256Signature(std::string_view header, std::string_view secret, std::string_view body);

/// True when `a` and `b` are equal, in a time that tells nothing of where they differ (nor, to
/// a useful extent, of their lengths): their SHA-256 digests are compared with CRYPTO_memcmp.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

/// Registers POST /api/v1/hooks/git (public: its signature is checked against
/// context.webhook_secret; without a secret it answers 403 `webhooks_disabled`).
Status AddHookRoutes(http::Router& router, const ApiContext& context);

}  // namespace driftless::server::api
