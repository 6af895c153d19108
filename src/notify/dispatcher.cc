#include "notify/dispatcher.h"

#include <signal.h>

#include <chrono>
#include <set>

#include "base/identity.h"

namespace driftless::notify {

Dispatcher::Dispatcher(state::StateStore& store, std::vector<SinkConfig> sinks, std::string project,
                       SecretLookup secret, Transport transport)
    : store_(store),
      sinks_(std::move(sinks)),
      project_(std::move(project)),
      secret_(std::move(secret)),
      transport_(std::move(transport)) {
  if (!transport_) {
    transport_ = [](const ResolvedSink& s, const std::string& json, const DeliveryLimits& l) {
      return Deliver(s, json, l);
    };
  }
  // An exec sink that exits without reading its input must not kill driftless.
  signal(SIGPIPE, SIG_IGN);
}

const SinkConfig* Dispatcher::Find(const std::string& name) const {
  for (const auto& s : sinks_) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

int64_t Dispatcher::Backoff(int64_t attempts) {
  if (attempts <= 1) return 1;
  if (attempts > 12) return 3600;
  int64_t seconds = int64_t{1} << (attempts - 1);
  return seconds > 3600 ? 3600 : seconds;
}

Status Dispatcher::Publish(const Event& event) {
  std::vector<state::OutboxEntry> entries;
  const std::string json = event.ToJson();
  for (const auto& s : sinks_) {
    if (!s.Wants(event.type, event.environment)) continue;
    state::OutboxEntry e;
    e.sink = s.name;
    e.environment = event.environment;
    e.event_type = event.type;
    e.event_id = event.id;
    e.subject = event.Subject();
    e.event_json = json;
    e.created_at = event.time;
    e.next_attempt_at = event.time;
    entries.push_back(std::move(e));
  }
  state::EventRecord record;
  record.type = event.type;
  record.environment = event.environment;
  record.payload_json = json;
  record.time = event.time;
  Result<int64_t> id = store_.AppendEvent(record, entries);
  if (!id.ok()) return id.error();
  const int64_t now = NowUnix();
  if (now >= next_prune_at_) {
    next_prune_at_ = now + 3600;
    Result<int64_t> pruned = store_.PruneEvents(now - event_retention_);
    if (!pruned.ok()) return pruned.error();
  }
  return Status::Ok();
}

Result<int64_t> Dispatcher::Remind(const std::string& env, int64_t now) {
  bool any = false;
  for (const auto& s : sinks_)
    any = any || (s.remind_seconds > 0 && s.Wants("drift.reminder", env));
  if (!any) return int64_t{0};
  Result<std::vector<state::DriftRecord>> open = store_.ListDrift(env, false, 100000);
  if (!open.ok()) return open.error();
  std::vector<state::OutboxEntry> entries;
  int64_t next = 0;  // the soonest reminder due after this call
  auto due_at = [&next](int64_t at) { next = next == 0 ? at : std::min(next, at); };
  for (const state::DriftRecord& d : *open) {
    for (const auto& s : sinks_) {
      if (s.remind_seconds <= 0 || !s.Wants("drift.reminder", env)) continue;
      Event e = MakeEvent("drift.reminder", env, d.address,
                          {{"diff", value::Value::String(d.diff)},
                           {"actor", value::Value::String(d.actor)},
                           {"onset", value::Value::String(FormatTime(d.onset))},
                           {"open_seconds", value::Value::Int(now - d.onset)}});
      e.time = now;
      Result<int64_t> last = store_.LastEnqueuedAt(s.name, e.Subject());
      if (!last.ok()) return last.error();
      int64_t since = std::max(*last, d.onset);
      if (now - since < s.remind_seconds) {
        due_at(since + s.remind_seconds);
        continue;
      }
      due_at(now + s.remind_seconds);
      state::OutboxEntry o;
      o.sink = s.name;
      o.environment = env;
      o.event_type = e.type;
      o.event_id = e.id;
      o.subject = e.Subject();
      o.event_json = e.ToJson();
      o.created_at = now;
      o.next_attempt_at = now;
      entries.push_back(std::move(o));
    }
  }
  if (Status s = store_.Enqueue(entries); !s.ok()) return s.error();
  return next;
}

Result<Dispatcher::Report> Dispatcher::DeliverDue(double budget_seconds,
                                                  const std::atomic<bool>* cancel) {
  using Clock = std::chrono::steady_clock;
  const Clock::time_point deadline =
      Clock::now() + std::chrono::milliseconds(static_cast<int64_t>(budget_seconds * 1000));
  DeliveryLimits limits;
  limits.deadline = deadline;
  limits.cancel = cancel;
  Report report;
  if (sinks_.empty()) return report;
  std::set<std::string> failed_sinks;
  Result<std::vector<state::OutboxEntry>> due = store_.DueDeliveries(NowUnix(), 1000);
  if (!due.ok()) return due.error();
  for (const state::OutboxEntry& entry : *due) {
    if (Clock::now() >= deadline || (cancel != nullptr && cancel->load())) break;
    if (failed_sinks.count(entry.sink)) continue;
    Status sent = Status::Ok();
    if (const SinkConfig* sink = Find(entry.sink)) {
      Result<ResolvedSink> resolved = Resolve(*sink, entry.environment, project_, secret_);
      if (!resolved.ok()) {
        sent = resolved.error();
      } else {
        sent = transport_(*resolved, entry.event_json, limits);
        // A command's output or a library message may echo a secret: never store it.
        if (!sent.ok()) sent = MakeError(resolved->Redact(sent.error().message));
      }
    } else {
      sent = MakeError("sink " + entry.sink +
                       " is not in driftless.yaml's `notify:` (any more); the entry is kept");
    }
    const int64_t now = NowUnix();
    if (sent.ok()) {
      Status marked = store_.MarkDelivered(entry.id, now);
      if (!marked.ok()) return marked.error();
      ++report.delivered;
    } else {
      Status marked =
          store_.MarkFailed(entry.id, sent.error().message, now + Backoff(entry.attempts + 1));
      if (!marked.ok()) return marked.error();
      ++report.failed;
      failed_sinks.insert(entry.sink);
    }
  }
  if (retention_ > 0 && Clock::now() >= next_prune_) {
    // Best effort: what is not removed now is removed by a later run.
    (void)store_.PruneOutbox(NowUnix() - retention_);
    next_prune_ = Clock::now() + std::chrono::hours(1);
  }
  return report;
}

}  // namespace driftless::notify
