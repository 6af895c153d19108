#include "cli/notifications.h"

#include <algorithm>
#include <cstdio>
#include <map>

#include "config/interpolate.h"
#include "state/open.h"
#include "value/value.h"

namespace driftless::cli {

using value::Value;

void CheckSinks(const config::Declarations& decls, Diagnostics& diags) {
  (void)notify::ParseSinks(decls.project.notify, decls.project.file, diags);
}

Result<std::unique_ptr<notify::Dispatcher>> MakeDispatcher(Workspace& ws, Diagnostics& diags) {
  const config::Environment* env = ws.environment();
  if (env == nullptr) return MakeError("internal: no environment evaluated before notifications");
  const config::Project& project = env->decls().project;
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
  return d;
}

Result<std::unique_ptr<BackgroundDelivery>> BackgroundDelivery::Start(Workspace& ws,
                                                                      const notify::Dispatcher& d,
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
    if (!sent.ok()) {
      std::fprintf(stderr, "warning: notifications: %s\n", sent.error().message.c_str());
    }
    if (stopping) return;
  }
}

int RunNotifyStatus(Workspace& ws) {
  Result<state::StateStore*> store = ws.State();
  if (!store.ok()) {
    std::fprintf(stderr, "error: %s\n", store.error().message.c_str());
    return 1;
  }
  Result<std::vector<state::SinkStatus>> rows = (*store)->OutboxStatus();
  if (!rows.ok()) {
    std::fprintf(stderr, "error: %s\n", rows.error().message.c_str());
    return 1;
  }
  // The sinks configured now, also those that never got an event (best effort: the status is
  // the outbox's, and reading it needs no valid declarations).
  std::map<std::string, std::string> kinds;
  if (ws.Select("").ok()) {
    Diagnostics ignored;
    const config::Project& project = ws.LoadDeclarations(ignored).project;
    for (const auto& s : notify::ParseSinks(project.notify, project.file, ignored)) {
      kinds[s.name] = std::string(notify::SinkKindName(s.kind));
    }
  }
  for (const auto& [name, kind] : kinds) {
    bool known = std::any_of(rows->begin(), rows->end(),
                             [&](const state::SinkStatus& r) { return r.sink == name; });
    if (!known) rows->push_back(state::SinkStatus{name});
  }
  std::sort(rows->begin(), rows->end(),
            [](const state::SinkStatus& a, const state::SinkStatus& b) { return a.sink < b.sink; });
  auto kind_of = [&](const std::string& sink) {
    auto it = kinds.find(sink);
    return it == kinds.end() ? std::string("(not configured)") : it->second;
  };
  auto time_or_null = [](int64_t t) { return t > 0 ? Value::String(FormatTime(t)) : Value(); };
  if (ws.flags().json) {
    Value::List list;
    for (const auto& r : *rows) {
      Value o = Value::MakeObject();
      o.Set("sink", Value::String(r.sink));
      o.Set("kind", Value::String(kind_of(r.sink)));
      o.Set("delivered", Value::Int(r.delivered));
      o.Set("pending", Value::Int(r.pending));
      o.Set("failing", Value::Int(r.failing));
      o.Set("last_error", r.last_error.empty() ? Value() : Value::String(r.last_error));
      o.Set("next_attempt", time_or_null(r.next_attempt_at));
      o.Set("last_delivered", time_or_null(r.last_delivered_at));
      list.push_back(std::move(o));
    }
    Value root = Value::MakeObject();
    root.Set("sinks", Value::MakeList(std::move(list)));
    std::printf("%s\n", value::ToPrettyJson(root).c_str());
    return 0;
  }
  if (rows->empty()) {
    std::printf(
        "No notification sinks: add a `notify:` list to driftless.yaml (docs/events.md).\n");
    return 0;
  }
  std::printf("%-16s %-16s %9s %7s %7s  %-20s  %s\n", "SINK", "KIND", "DELIVERED", "PENDING",
              "FAILING", "NEXT ATTEMPT", "LAST ERROR");
  for (const auto& r : *rows) {
    std::string next = r.next_attempt_at > 0 ? FormatTime(r.next_attempt_at) : "-";
    std::printf("%-16s %-16s %9lld %7lld %7lld  %-20s  %s\n", r.sink.c_str(),
                kind_of(r.sink).c_str(), static_cast<long long>(r.delivered),
                static_cast<long long>(r.pending), static_cast<long long>(r.failing), next.c_str(),
                r.last_error.empty() ? "-" : r.last_error.c_str());
  }
  return 0;
}

}  // namespace driftless::cli
