#include "engine/notifications.h"

#include <algorithm>
#include <map>

#include "config/interpolate.h"
#include "state/open.h"
#include "value/value.h"

namespace driftless::engine {

using value::Value;

void CheckSinks(const config::Declarations& decls, Diagnostics& diags) {
  (void)notify::ParseSinks(decls.project.notify, decls.project.file, diags);
}

Result<std::unique_ptr<notify::Dispatcher>> MakeDispatcher(Workspace& ws, Diagnostics& diags) {
  const config::Environment* env = ws.environment();
  Diagnostics loaded;
  const config::Project& project =
      env != nullptr ? env->decls().project : ws.LoadDeclarations(loaded).project;
  diags.Append(loaded);
  if (loaded.HasErrors()) return MakeError("the declarations cannot be read");
  Diagnostics found;
  std::vector<notify::SinkConfig> sinks = notify::ParseSinks(project.notify, project.file, found);
  diags.Append(found);
  if (found.HasErrors()) return MakeError("invalid `notify:` in " + project.file);
  // Also without sinks: every published event goes to the state's event log.
  Result<state::StateStore*> store = ws.State();
  if (!store.ok()) return store.error();
  auto d = std::make_unique<notify::Dispatcher>(
      **store, std::move(sinks), project.name,
      [&ws](const std::string& name) { return ws.Secret(name); });
  d->set_retention(project.notification_retention);
  if (ws.options().event_retention_seconds > 0) {
    d->set_event_retention(ws.options().event_retention_seconds);
  }
  return d;
}

Result<std::unique_ptr<BackgroundDelivery>> BackgroundDelivery::Start(
    Workspace& ws, const notify::Dispatcher& d, std::function<void(const std::string&)> on_warning,
    int period_ms) {
  // Every secret the sinks name, looked up here: Workspace is not thread-safe.
  std::map<std::string, std::optional<std::string>> secrets;
  for (const notify::SinkConfig& sink : d.sinks()) {
    std::vector<const Value*> strings;
    if (sink.target.is_list()) {
      for (const Value& a : sink.target.as_list()) strings.push_back(&a);
    } else {
      strings.push_back(&sink.target);
    }
    strings.push_back(&sink.secret);
    for (const Value* v : strings) {
      if (!v->is_string()) continue;
      Diagnostics ignored;
      for (const config::Reference& r :
           config::ParseReferences(v->as_string(), sink.pos, ignored)) {
        if (r.type == config::Reference::Type::kSecret) secrets[r.name] = ws.Secret(r.name);
      }
    }
  }
  // A connection of its own (a store is used by one thread at a time), to the same backend.
  Result<std::unique_ptr<state::StateStore>> store = state::OpenStateStore(ws.StatePath());
  if (!store.ok()) return store.error();
  std::unique_ptr<BackgroundDelivery> b(new BackgroundDelivery());
  b->store_ = std::move(*store);
  b->period_ms_ = period_ms;
  b->on_warning_ = std::move(on_warning);
  for (const notify::SinkConfig& sink : d.sinks()) {
    b->round_seconds_ = std::max(b->round_seconds_, static_cast<double>(sink.timeout_seconds));
  }
  b->dispatcher_ = std::make_unique<notify::Dispatcher>(
      *b->store_, d.sinks(), d.project(),
      [secrets = std::move(secrets)](const std::string& name) -> std::optional<std::string> {
        auto it = secrets.find(name);
        return it == secrets.end() ? std::nullopt : it->second;
      });
  b->dispatcher_->set_retention(d.retention());
  b->thread_ = std::thread([raw = b.get()] { raw->Run(); });
  return b;
}

BackgroundDelivery::~BackgroundDelivery() {
  {
    std::unique_lock<std::mutex> lock(mu_);
    stop_ = true;
    cv_.notify_all();
    // A delivery in flight gets a moment to finish (its request may already have arrived and
    // only the answer be on its way); one that hangs is abandoned, and retried by the next run.
    if (!cv_.wait_for(lock, std::chrono::seconds(2), [this] { return !in_round_; })) {
      cancel_ = true;
    }
  }
  if (thread_.joinable()) thread_.join();
}

void BackgroundDelivery::Wake() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    woken_ = true;
  }
  cv_.notify_all();
}

void BackgroundDelivery::Run() {
  while (true) {
    bool stopping;
    {
      std::unique_lock<std::mutex> lock(mu_);
      in_round_ = false;
      cv_.notify_all();
      cv_.wait_for(lock, std::chrono::milliseconds(period_ms_), [this] { return stop_ || woken_; });
      stopping = stop_;
      woken_ = false;
      in_round_ = !stopping;
    }
    // Rounds in the background may take a sink's full timeouts; the last one is short.
    Result<notify::Dispatcher::Report> sent =
        stopping ? dispatcher_->DeliverDue(3) : dispatcher_->DeliverDue(round_seconds_, &cancel_);
    if (!sent.ok() && on_warning_) on_warning_("notifications: " + sent.error().message);
    if (stopping) return;
  }
}

}  // namespace driftless::engine
