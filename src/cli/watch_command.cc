// `driftless watch`: the watch loop of engine/watch.h, its events printed as JSON lines.

#include <csignal>
#include <cstdio>

#include "cli/commands.h"
#include "engine/watch.h"

namespace driftless::cli {

namespace {

// Set by SIGINT and SIGTERM: the watch stops after the check in progress.
engine::StopToken g_watch_stop;

extern "C" void OnStop(int) { g_watch_stop.Stop(); }

// Prints each event as one JSON line on standard output, at once.
class EventPrinter : public engine::Observer {
 public:
  void OnEvent(const notify::Event& event) override {
    std::printf("%s\n", event.ToJson().c_str());
    std::fflush(stdout);
  }
  void OnWarning(const std::string& message) override {
    std::fprintf(stderr, "warning: %s\n", message.c_str());
  }
};

}  // namespace

int RunWatch(Workspace& ws, const engine::WatchOptions& options) {
  std::signal(SIGINT, OnStop);
  std::signal(SIGTERM, OnStop);
  EventPrinter printer;
  Result<engine::WatchReport> watched = engine::Watch(ws, options, printer, g_watch_stop);
  if (!watched.ok()) {
    std::fprintf(stderr, "error: %s\n", watched.error().message.c_str());
    return 1;
  }
  return 0;
}

}  // namespace driftless::cli
