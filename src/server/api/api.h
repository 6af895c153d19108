#pragma once

// The API of `driftless serve`: what every route needs (ApiContext: the controller, a pool of
// state connections, the metrics registry, the clock), the authenticator behind every route
// with a required right, and AddRoutes, which registers every route of the server. Each area has
// its own file (health.cc, and the areas listed in README.md); cli/serve_command.cc only wires.

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "server/controller/controller.h"
#include "server/http/router.h"
#include "server/http/server.h"
#include "server/metrics/metrics.h"
#include "state/state_store.h"

namespace driftless::server::api {

/// Connections to the state, shared by the handlers (each used by one thread at a time, as
/// StateStore requires). Thread-safe.
class StorePool {
 public:
  /// A pool on the state at `location` (a SQLite path or a postgres:// DSN).
  explicit StorePool(std::string location) : location_(std::move(location)) {}

  /// A connection, returned to the pool when the lease is destroyed.
  class Lease {
   public:
    Lease(StorePool* pool, std::unique_ptr<state::StateStore> store)
        : pool_(pool), store_(std::move(store)) {}
    Lease(Lease&&) noexcept = default;
    Lease& operator=(Lease&&) noexcept = default;
    ~Lease();
    state::StateStore& operator*() const { return *store_; }
    state::StateStore* operator->() const { return store_.get(); }

   private:
    StorePool* pool_;
    std::unique_ptr<state::StateStore> store_;
  };

  /// An idle connection, or a new one; an error when the state cannot be opened.
  Result<Lease> Acquire();
  /// Where the state is.
  const std::string& location() const { return location_; }

 private:
  std::string location_;
  std::mutex mu_;
  std::vector<std::unique_ptr<state::StateStore>> idle_;
};

class EventHub;  // events.h

/// What the routes work on. Everything it points to outlives the server.
class EnvironmentListCache;  // environments.cc
/// A new, empty cache of the environment list (environments.cc).
std::shared_ptr<EnvironmentListCache> MakeEnvironmentListCache();

struct ApiContext {
  controller::Controller* controller = nullptr;
  StorePool* stores = nullptr;
  metrics::Registry* metrics = nullptr;  ///< nullptr: no metrics are counted
  EventHub* events = nullptr;            ///< the event streams (events.h); nullptr: JSON pages only
  /// Unix seconds now (token expiry, audit times); the system clock when empty.
  std::function<int64_t()> now;
  /// The secret of POST /api/v1/hooks/git (--webhook-secret-file); "": webhooks are disabled.
  std::string webhook_secret;
  /// GET /api/v1/environments' rows, computed once per change of the event log or fetch and
  /// shared by the copies of this context.
  std::shared_ptr<EnvironmentListCache> environment_list = MakeEnvironmentListCache();

  /// now(), or the system clock.
  int64_t Now() const;
};

/// The authenticator of every route with a required right (a right's name: "read", "plan",
/// "apply", "destroy", "approve", "unlock", "tokens"). It reads `Authorization: Bearer TOKEN`
/// (401 when it is missing, malformed, unknown, revoked or expired), finds the environment the
/// request is about (the route's {env}, or the environment of the run {id}), and asks
/// auth::Authorize (403 when the token's role or environment glob does not allow it). Every
/// refusal is appended to the audit log with the route, the reason and the request id.
http::Authenticator MakeAuthenticator(const ApiContext& context);

/// The secret of an `Authorization: Bearer ...` header (the scheme in any case), or nullopt.
std::optional<std::string_view> BearerToken(std::string_view header);

/// The environment a request is about, or why it cannot be told.
struct RequestScope {
  std::string environment;  ///< "" for a request about no one environment (lists, tokens)
  int status = 200;         ///< 400 (malformed run id), 404 (no such run), 503 (state failed)
  std::string code;         ///< the envelope's code when status is not 200
  std::string message;      ///< what was wrong, when status is not 200
};

/// The environment a request is about: the route's {env}, or the environment of run {id}.
RequestScope RequestEnvironment(const ApiContext& context, const http::Request& request);

/// Run id `text` as a number, or std::nullopt when it is not a positive decimal that fits.
std::optional<int64_t> ParseRunId(std::string_view text);

/// Appends one audit entry for `request` (who: its principal; the request id), logging nothing
/// else; a failure of the store is returned, never thrown.
Status Audit(const ApiContext& context, const http::Request& request, state::AuditEntry entry);

/// Registers /livez and /readyz (public).
Status AddHealthRoutes(http::Router& router, const ApiContext& context);

/// Registers every route of the server.
Status AddRoutes(http::Router& router, const ApiContext& context);

}  // namespace driftless::server::api
