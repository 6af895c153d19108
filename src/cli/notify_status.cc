// `driftless notify status`: the outbox per sink.

#include <algorithm>
#include <cstdio>
#include <map>

#include "base/identity.h"
#include "cli/commands.h"
#include "notify/sink.h"
#include "value/render.h"

namespace driftless::cli {

using value::Value;

int RunNotifyStatus(Workspace& ws, const Output& out) {
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
  if (out.json) {
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
