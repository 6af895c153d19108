// `driftless serve`: the controller (server/controller), the API routes (server/api) and the web
// UI (server/ui) behind the HTTP layer (server/http). Only flags and wiring live here.

#include <cstdio>
#include <memory>
#include <string>
#include <utility>

#include "base/memory.h"
#include "cli/commands.h"
#include "server/api/api.h"
#include "server/api/events.h"
#include "server/api/hooks.h"
#include "server/api/server_metrics.h"
#include "server/controller/controller.h"
#include "server/http/server.h"
#include "server/ui/ui.h"
#include "state/open.h"
#include "state/sqlite/server_lock.h"

namespace driftless::cli {

using value::Value;

int RunServe(const engine::WorkspaceOptions& workspace, const ServeFlags& flags) {
  server::controller::Log log;
  // unix:///PATH: a unix socket rather than TCP.
  const bool unix_socket = flags.listen.rfind("unix://", 0) == 0;
  const std::string socket_path = unix_socket ? flags.listen.substr(7) : "";
  if (unix_socket && (socket_path.empty() || socket_path[0] != '/')) {
    std::fprintf(stderr,
                 "error: --listen %s: a unix socket's path must be absolute (unix:///PATH)\n",
                 flags.listen.c_str());
    return 1;
  }
  size_t colon = unix_socket ? std::string::npos : flags.listen.rfind(':');
  int port = -1;
  if (colon != std::string::npos) {
    try {
      port = std::stoi(flags.listen.substr(colon + 1));
    } catch (...) {
      port = -1;
    }
  }
  if (!unix_socket && (colon == std::string::npos || colon == 0 || port < 0 || port > 65535)) {
    std::fprintf(stderr,
                 "error: --listen %s: use HOST:PORT (127.0.0.1:8080; port 0 picks one) or "
                 "unix:///PATH\n",
                 flags.listen.c_str());
    return 1;
  }
  // The server's threads (a watch per environment, the runners, the HTTP workers) share two
  // heaps rather than one per thread, each keeping its own free memory.
  LimitMallocArenas(2);
  server::metrics::Registry metrics;
  server::api::ServerMetrics server_metrics(metrics);
  std::string webhook_secret;
  if (!flags.webhook_secret_file.empty()) {
    Result<std::string> secret = server::api::ReadWebhookSecret(flags.webhook_secret_file);
    if (!secret.ok()) {
      std::fprintf(stderr, "error: %s\n", secret.error().message.c_str());
      return 1;
    }
    webhook_secret = std::move(*secret);
  }
  // A SQLite state takes one server (state/sqlite/server_lock.h): locked before anything opens
  // the state, so that a second server is refused without disturbing the first.
  std::unique_ptr<state::ServerLock> sqlite_lock;
  if (const std::string path = engine::Workspace(workspace).StatePath();
      !state::IsPostgresLocation(path)) {
    Result<std::unique_ptr<state::ServerLock>> lock = state::ServerLock::Acquire(path);
    if (!lock.ok()) {
      std::fprintf(stderr, "error: %s\n", lock.error().message.c_str());
      return 1;
    }
    sqlite_lock = std::move(*lock);
  }
  server::controller::ControllerOptions co;
  co.workspace = workspace;
  co.workspace.event_retention_seconds = flags.event_retention_seconds;
  co.poll_seconds = flags.poll_seconds;
  co.run_poll_seconds = flags.run_poll_seconds;
  co.lease_seconds = static_cast<double>(workspace.lease_seconds);
  co.log = &log;
  co.on_run_status = [&server_metrics](const state::Run& run, const std::string& status) {
    server_metrics.OnRunStatus(run, status);
  };
  server::controller::Controller controller(co);

  server::api::StorePool stores(engine::Workspace(workspace).StatePath());
  server::api::ApiContext context;
  context.controller = &controller;
  context.stores = &stores;
  context.metrics = &metrics;
  server::api::EventHubOptions eo;
  eo.retention_seconds = flags.event_retention_seconds;
  server::api::EventHub events(&stores, &metrics, eo);
  context.events = &events;
  server_metrics.AddScrapeGauges(context);
  context.webhook_secret = webhook_secret;
  server::http::Router router;
  Status added = server::api::AddRoutes(router, context);
  if (added.ok()) added = server::ui::AddUiRoutes(router, server::ui::EmbeddedAssets());
  if (!added.ok()) {
    std::fprintf(stderr, "error: %s\n", added.error().message.c_str());
    return 1;
  }
  server::http::ServerOptions so;
  so.authenticator = server::api::MakeAuthenticator(context);
  if (unix_socket) {
    so.tcp_address = "";
    so.unix_path = socket_path;
  } else {
    so.tcp_address = flags.listen.substr(0, colon);
    so.tcp_port = static_cast<uint16_t>(port);
  }
  so.access_log = [&log, &server_metrics](const server::http::AccessRecord& r) {
    server_metrics.OnRequest(r);
    log.Write("info", "request",
              {{"method", Value::String(r.method)},
               {"route", Value::String(r.route)},
               {"status", Value::Int(r.status)},
               {"request_id", Value::String(r.request_id)},
               {"duration_ms", Value::Double(r.duration_ms)}});
  };
  server::http::Server http(std::move(router), so);
  http.StopOnSignals();
  Status started = controller.Start();
  if (!started.ok()) {
    log.Write("error", "cannot start", {{"error", Value::String(started.error().message)}});
    return 1;
  }
  Status hub = events.Start();
  if (!hub.ok()) {
    log.Write("error", "cannot read the event log",
              {{"error", Value::String(hub.error().message)}});
    controller.Stop();
    return 1;
  }
  Status listening = http.Start();
  if (!listening.ok()) {
    log.Write("error", "cannot listen", {{"error", Value::String(listening.error().message)}});
    events.Stop();
    controller.Stop();
    return 1;
  }
  const std::string address =
      unix_socket ? flags.listen : so.tcp_address + ":" + std::to_string(http.tcp_port());
  if (sqlite_lock) {
    Status recorded = sqlite_lock->SetListen(address);
    if (!recorded.ok()) {
      log.Write("warning", "cannot record the listen address",
                {{"error", Value::String(recorded.error().message)}});
    }
  }
  log.Write("info", "listening", {{"address", Value::String(address)}});
  http.Wait();
  log.Write("info", "stopping", {});
  events.Stop();
  controller.Stop();
  log.Write("info", "stopped", {});
  return 0;
}

}  // namespace driftless::cli
