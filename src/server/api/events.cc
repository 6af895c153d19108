#include "server/api/events.h"

#include <algorithm>
#include <map>
#include <optional>
#include <string_view>
#include <utility>

#include "auth/glob.h"
#include "auth/rights.h"
#include "auth/token.h"
#include "base/identity.h"
#include "base/strings.h"
#include "server/api/sessions.h"
#include "state/control_common.h"
#include "value/value.h"

namespace driftless::server::api {

using value::Value;

namespace {

constexpr std::chrono::milliseconds kMaxHeartbeat{15000};
constexpr auto kPruneEvery = std::chrono::hours(1);

bool AnyGlobMatches(const std::vector<std::string>& globs, std::string_view name) {
  for (const std::string& g : globs) {
    if (auth::GlobMatch(g, name)) return true;
  }
  return false;
}

int64_t NowUnix() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

bool EventSelection::Matches(const state::EventRecord& event) const {
  if (event.environment.empty()) {
    if (token_envs != "**") return false;
  } else if (!auth::GlobMatch(token_envs, event.environment)) {
    return false;
  }
  if (!environments.empty() && !AnyGlobMatches(environments, event.environment)) return false;
  if (!types.empty() && !AnyGlobMatches(types, event.type)) return false;
  if (run_id != 0) {
    // The payload is canonical JSON: a top-level member reads `"run_id":ID` after `{` or `,`
    // (inside a string the quotes would be escaped).
    const std::string member = "\"run_id\":" + std::to_string(run_id);
    const std::string& p = event.payload_json;
    bool found = false;
    for (size_t at = p.find(member); at != std::string::npos && !found;
         at = p.find(member, at + 1)) {
      const size_t end = at + member.size();
      found = at > 0 && (p[at - 1] == '{' || p[at - 1] == ',') &&
              (end == p.size() || p[end] == ',' || p[end] == '}');
    }
    if (!found) return false;
  }
  return true;
}

Result<std::vector<std::string>> ParseEventFilterList(std::string_view parameter,
                                                      std::string_view text) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string_view::npos) comma = text.size();
    std::string_view part = text.substr(start, comma - start);
    while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
    while (!part.empty() && part.back() == ' ') part.remove_suffix(1);
    if (!part.empty()) {
      Status ok = auth::CheckGlob(part);
      if (!ok.ok()) {
        return MakeError("?" + std::string(parameter) + "=" + http::Printable(part) + ": " +
                         ok.error().message);
      }
      parts.emplace_back(part);
    }
    start = comma + 1;
  }
  std::sort(parts.begin(), parts.end());
  parts.erase(std::unique(parts.begin(), parts.end()), parts.end());
  return parts;
}

// --- EventHub ---

EventHub::EventHub(StorePool* stores, metrics::Registry* metrics, EventHubOptions options)
    : stores_(stores), options_(std::move(options)) {
  if (options_.heartbeat <= std::chrono::milliseconds(0) || options_.heartbeat > kMaxHeartbeat) {
    options_.heartbeat = kMaxHeartbeat;
  }
  if (options_.wait_ms <= 0) options_.wait_ms = 1000;
  if (metrics != nullptr) {
    streams_gauge_ = &metrics->AddGauge("driftless_event_streams",
                                        "Event streams (GET /api/v1/events) open now.");
    deliveries_ = &metrics->AddCounter("driftless_event_deliveries_total",
                                       "Events written to event streams.");
    streams_gauge_->Set({}, 0);
    deliveries_->Add({}, 0);
  }
}

EventHub::~EventHub() { Stop(); }

Status EventHub::Start() {
  Result<StorePool::Lease> store = stores_->Acquire();
  if (!store.ok()) return store.error();
  // Subscribed before the first look: an event appended in between is announced.
  Result<std::unique_ptr<state::ChangeListener>> listener =
      (*store)->Listen({state::kEventsChannel});
  if (!listener.ok()) return listener.error();
  Result<int64_t> latest = (*store)->LatestEventId();
  if (!latest.ok()) return latest.error();
  MaybePrune(**store);
  std::lock_guard<std::mutex> lock(mu_);
  if (started_ || stopped_) return MakeError("the event hub was started already");
  started_ = true;
  position_ = *latest;
  listener_ = std::move(*listener);
  thread_ = std::thread([this] { Run(); });
  return Status::Ok();
}

void EventHub::Stop() {
  std::vector<std::shared_ptr<Subscriber>> closing;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_) return;
    stopped_ = true;
    closing.swap(subscribers_);
  }
  stop_ = true;
  if (listener_ != nullptr) listener_->Interrupt();
  if (thread_.joinable()) thread_.join();
  for (auto& sub : closing) sub->stream->Close();
  if (streams_gauge_ != nullptr) streams_gauge_->Set({}, 0);
}

size_t EventHub::streams() const {
  std::lock_guard<std::mutex> lock(mu_);
  return subscribers_.size();
}

void EventHub::Deliver(Subscriber& sub, const state::EventRecord& event) {
  if (event.id <= sub.cursor) return;
  sub.cursor = event.id;
  if (!sub.selection.Matches(event)) return;
  http::SseEvent e;
  e.id = std::to_string(event.id);
  e.type = event.type;
  e.data = event.payload_json;
  if (sub.stream->Send(e) && deliveries_ != nullptr) deliveries_->Add({}, 1);
}

void EventHub::DropClosed() {
  size_t before = subscribers_.size();
  subscribers_.erase(
      std::remove_if(subscribers_.begin(), subscribers_.end(),
                     [](const std::shared_ptr<Subscriber>& s) { return s->stream->closed(); }),
      subscribers_.end());
  if (streams_gauge_ != nullptr && before != subscribers_.size()) {
    streams_gauge_->Add({}, -static_cast<double>(before - subscribers_.size()));
  }
}

void EventHub::MaybePrune(state::ControlStore& store) {
  if (options_.retention_seconds <= 0) return;
  auto now = std::chrono::steady_clock::now();
  if (now < next_prune_) return;
  next_prune_ = now + kPruneEvery;
  // A failed prune is tried again at the next round of the hour; nothing is lost by waiting.
  (void)store.PruneEvents(NowUnix() - options_.retention_seconds);
}

void EventHub::CheckTokens(state::ControlStore& store) {
  const auto now = std::chrono::steady_clock::now();
  if (now < next_token_check_) return;
  next_token_check_ = now + options_.token_check;
  std::vector<std::shared_ptr<Subscriber>> subs;
  {
    std::lock_guard<std::mutex> lock(mu_);
    subs = subscribers_;
  }
  std::map<std::string, std::string> refused;  // token hash -> why ("" when live)
  for (const auto& sub : subs) {
    const std::string& hash = sub->selection.token_hash;
    if (hash.empty() || sub->stream->closed()) continue;
    auto it = refused.find(hash);
    if (it == refused.end()) {
      Result<auth::Authentication> who = auth::AuthenticateHash(store, hash, NowUnix());
      if (!who.ok()) return;  // the state failed: again at the next check
      it = refused.emplace(hash, who->token ? "" : who->reason).first;
    }
    std::string why = it->second;
    if (why.empty() && !sub->selection.session_hash.empty()) {
      Result<std::optional<state::Session>> session =
          store.FindSessionByHash(sub->selection.session_hash);
      if (!session.ok()) return;  // the state failed: again at the next check
      if (!session->has_value()) {
        // Revoking a token ends its sessions in the same transaction: when the token was
        // revoked since it was looked at above, that is the reason to give.
        Result<auth::Authentication> again = auth::AuthenticateHash(store, hash, NowUnix());
        if (!again.ok()) return;  // the state failed: again at the next check
        why = again->token ? "the session ended" : again->reason;
      } else if (NowUnix() >= (*session)->expires_at) {
        why = "the session expired";
      }
    }
    if (why.empty()) continue;
    sub->stream->Comment("closing: " + why);
    sub->stream->Close();
  }
}

Status EventHub::Subscribe(std::shared_ptr<http::EventStream> stream, EventSelection selection,
                           int64_t after_id) {
  auto sub = std::make_shared<Subscriber>();
  sub->stream = std::move(stream);
  sub->selection = std::move(selection);
  sub->cursor = after_id;
  std::lock_guard<std::mutex> lock(mu_);
  if (stopped_ || !started_) return MakeError("the server is stopping");
  sub->replaying = sub->cursor < position_;
  subscribers_.push_back(std::move(sub));
  if (streams_gauge_ != nullptr) streams_gauge_->Add({}, 1);
  return Status::Ok();
}

bool EventHub::Replay(state::ControlStore& store, Subscriber& sub, int64_t target) {
  // A replay writes more only once the client has read most of what came before, so that a
  // client catching up on a long absence is never mistaken for one that does not read.
  constexpr int kReplayBatch = 200;
  while (sub.stream->unsent() < options_.replay_unsent && !sub.stream->closed()) {
    Result<std::vector<state::EventRecord>> batch = store.EventsAfter(sub.cursor, {}, kReplayBatch);
    if (!batch.ok()) return false;  // again at the next round
    for (const state::EventRecord& e : *batch) {
      if (e.id > target) break;
      if (sub.stream->unsent() >= options_.replay_unsent) return false;  // the rest later
      Deliver(sub, e);
    }
    if (batch->size() < static_cast<size_t>(kReplayBatch) || batch->empty() ||
        batch->back().id >= target) {
      // Everything up to `target` that the log holds has been considered.
      sub.cursor = std::max(sub.cursor, target);
      return true;
    }
  }
  return false;
}

void EventHub::Run() {
  std::optional<StorePool::Lease> store;
  int64_t position = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    position = position_;
  }
  bool replays_waiting = false;
  bool rescan = false;  // a read failed, or a wait: read the log even without an announcement
  while (!stop_) {
    if (!store.has_value()) {
      Result<StorePool::Lease> acquired = stores_->Acquire();
      if (!acquired.ok()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(options_.wait_ms));
        continue;
      }
      store.emplace(std::move(*acquired));
    }
    MaybePrune(**store);
    CheckTokens(**store);
    // Nothing is read until the log announces an event (or that one may have been missed: the
    // listener's connection was lost); while a replay waits for its client, look again soon.
    Result<state::Wakeup> woken = listener_->Wait(replays_waiting ? 20 : options_.wait_ms);
    if (!woken.ok()) {
      // The listener connects again by itself, pausing between attempts; its first success
      // answers `missed`, and the log is read then.
      rescan = true;
      continue;
    }
    std::vector<state::EventRecord> events;
    bool failed = false;
    if (woken->Touches(state::kEventsChannel) || rescan) {
      // Every event after the position, in batches: one announcement may stand for many.
      int64_t after = position;
      for (;;) {
        Result<std::vector<state::EventRecord>> batch =
            (*store)->EventsAfter(after, {}, state::kDefaultEventBatch);
        if (!batch.ok()) {
          failed = true;
          break;
        }
        const bool full = batch->size() == static_cast<size_t>(state::kDefaultEventBatch);
        if (!batch->empty()) after = batch->back().id;
        events.insert(events.end(), std::make_move_iterator(batch->begin()),
                      std::make_move_iterator(batch->end()));
        if (!full) break;
      }
    }
    if (failed) {
      // The state failed: a new connection next time, after a pause (no busy loop); what the
      // announcement stood for is read then.
      store.reset();
      rescan = true;
      std::this_thread::sleep_for(std::chrono::milliseconds(options_.wait_ms));
      continue;
    }
    rescan = false;
    std::vector<std::shared_ptr<Subscriber>> replaying;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (const state::EventRecord& e : events) {
        for (auto& sub : subscribers_) {
          if (!sub->replaying) Deliver(*sub, e);
        }
        position = e.id;
      }
      position_ = position;
      DropClosed();
      for (auto& sub : subscribers_) {
        if (sub->replaying) replaying.push_back(sub);
      }
    }
    // Replays read the log without the lock: new streams can subscribe meanwhile. A replay
    // that reaches `position` joins the fan-out of the next event.
    replays_waiting = false;
    for (auto& sub : replaying) {
      if (Replay(**store, *sub, position)) {
        std::lock_guard<std::mutex> lock(mu_);
        sub->replaying = false;
      } else {
        replays_waiting = true;
      }
    }
  }
}

// --- the route ---

namespace {

struct EventQuery {
  EventSelection selection;
  std::optional<int64_t> last_id;  // the stream's resume point, or the page's `after`
  int limit = state::kDefaultPage;
};

// An event id: 0 (before every event) or a run-id-shaped positive decimal.
std::optional<int64_t> ParseEventId(std::string_view text) {
  if (text == "0") return 0;
  return ParseRunId(text);
}

// Parses the query (and Last-Event-ID for a stream); a 400 response when it is wrong.
std::optional<http::Response> ParseQuery(const http::Request& request, bool stream,
                                         EventQuery* out) {
  auto bad = [&](const std::string& message) {
    return http::Response::Error(400, "bad_request", "GET /api/v1/events: " + message);
  };
  for (const char* name : {"environment", "type"}) {
    std::optional<std::string> text = request.QueryParam(name);
    if (!text.has_value()) continue;
    Result<std::vector<std::string>> list = ParseEventFilterList(name, *text);
    if (!list.ok()) return bad(list.error().message);
    (std::string_view(name) == "type" ? out->selection.types : out->selection.environments) =
        std::move(*list);
  }
  if (std::optional<std::string> run = request.QueryParam("run")) {
    std::optional<int64_t> id = ParseRunId(*run);
    if (!id.has_value()) return bad("?run=" + http::Printable(*run) + " is not a run number");
    out->selection.run_id = *id;
  }
  if (stream) {
    std::string_view header = request.Header("last-event-id");
    std::optional<std::string> query = request.QueryParam("last_event_id");
    std::string text = !header.empty() ? std::string(header) : query.value_or("");
    if (!text.empty()) {
      out->last_id = ParseEventId(text);
      if (!out->last_id.has_value()) {
        return bad("Last-Event-ID '" + http::Printable(text) + "' is not an event id");
      }
    }
    return std::nullopt;
  }
  std::optional<std::string> after = request.QueryParam("after");
  if (!after.has_value()) after = request.QueryParam("cursor");
  if (after.has_value()) {
    out->last_id = ParseEventId(*after);
    if (!out->last_id.has_value()) {
      return bad("?after=" + http::Printable(*after) + " is not an event id");
    }
  }
  std::optional<std::string> limit = request.QueryParam("limit");
  if (limit.has_value()) {
    std::optional<int64_t> n = ParseEventId(*limit);
    if (!n.has_value() || *n < 1 || *n > state::kMaxPage) {
      return bad("?limit=" + http::Printable(*limit) + " must be a number from 1 to " +
                 std::to_string(state::kMaxPage));
    }
    out->limit = static_cast<int>(*n);
  }
  return std::nullopt;
}

Value EventJson(const state::EventRecord& e) {
  Result<Value> payload = value::ParseJson(e.payload_json);
  return Value::MakeObject({{"id", Value::Int(e.id)},
                            {"type", Value::String(e.type)},
                            {"environment", Value::String(e.environment)},
                            {"time", Value::Int(e.time)},
                            {"event", payload.ok() ? *payload : Value::String(e.payload_json)}});
}

// One JSON page: at most `limit` matching events after `after`, scanning at most a bounded
// number of events so that a filter matching nothing cannot make one request read the whole
// log; `next_cursor` then says where to go on.
http::Response Page(state::ControlStore& store, const EventQuery& q) {
  constexpr int kScanBatches = 10;
  const int64_t after = q.last_id.value_or(0);
  Value::List events;
  int64_t cursor = after;
  bool more = false;
  for (int round = 0; round < kScanBatches; ++round) {
    Result<std::vector<state::EventRecord>> batch =
        store.EventsAfter(cursor, {}, state::kDefaultEventBatch);
    if (!batch.ok()) {
      return http::Response::Error(503, "state_unavailable",
                                   "the state cannot be reached: " + batch.error().message);
    }
    more = batch->size() == static_cast<size_t>(state::kDefaultEventBatch);
    for (const state::EventRecord& e : *batch) {
      cursor = e.id;
      if (q.selection.Matches(e)) events.push_back(EventJson(e));
      if (static_cast<int>(events.size()) == q.limit) {
        more = e.id != batch->back().id || more;
        break;
      }
    }
    if (static_cast<int>(events.size()) == q.limit || !more) break;
  }
  Result<bool> reset = after > 0 ? store.EventIdPastRetention(after) : Result<bool>(false);
  if (!reset.ok()) {
    return http::Response::Error(503, "state_unavailable",
                                 "the state cannot be reached: " + reset.error().message);
  }
  Value::Object page = {{"events", Value::MakeList(std::move(events))},
                        {"next_cursor", more ? Value::String(std::to_string(cursor)) : Value()}};
  if (*reset) page.emplace_back("reset", Value::Bool(true));
  return http::Response::Json(200, Value::MakeObject(std::move(page)));
}

void Stream(const ApiContext& context, state::ControlStore& store, EventQuery q,
            http::Responder responder) {
  Result<int64_t> latest = store.LatestEventId();
  Result<bool> past = Result<bool>(false);
  if (latest.ok() && q.last_id.has_value() && *q.last_id <= *latest) {
    past = store.EventIdPastRetention(*q.last_id);
  }
  if (!latest.ok() || !past.ok()) {
    const Error& e = !latest.ok() ? latest.error() : past.error();
    responder.Send(http::Response::Error(503, "state_unavailable",
                                         "the state cannot be reached: " + e.message));
    return;
  }
  // Past retention, or an id this log never gave (another state, a log restored from a backup):
  // the client missed what cannot be replayed, so it is told to start again from now.
  bool reset = q.last_id.has_value() && (*past || *q.last_id > *latest);
  int64_t after = q.last_id.has_value() && !reset ? *q.last_id : *latest;
  http::StreamOptions so;
  so.heartbeat = context.events->options().heartbeat;
  std::shared_ptr<http::EventStream> stream = responder.OpenStream(so);
  if (reset) {
    http::SseEvent e;
    e.id = std::to_string(*latest);
    e.type = "reset";
    e.data = value::ToJson(Value::MakeObject(
        {{"last_event_id", Value::Int(*q.last_id)},
         {"latest_event_id", Value::Int(*latest)},
         {"message",
          Value::String("the events after the id you sent are no longer kept; read the current "
                        "state again and follow the stream from here")}}));
    stream->Send(e);
  }
  Status subscribed = context.events->Subscribe(stream, std::move(q.selection), after);
  if (!subscribed.ok()) {
    stream->Comment("closing: " + subscribed.error().message);
    stream->Close();
  }
}

}  // namespace

Status AddEventRoutes(http::Router& router, const ApiContext& context) {
  return router.Add(
      "GET", "/api/v1/events",
      [context](const http::Request& request, http::Responder responder) {
        // Media types are case-insensitive (RFC 9110 8.3.1).
        const bool stream =
            AsciiLower(request.Header("accept")).find("text/event-stream") != std::string::npos;
        EventQuery q;
        if (std::optional<http::Response> bad = ParseQuery(request, stream, &q)) {
          responder.Send(std::move(*bad));
          return;
        }
        if (stream && context.events == nullptr) {
          responder.Send(http::Response::Error(503, "streams_unavailable",
                                               "this server has no event streams"));
          return;
        }
        Result<StorePool::Lease> store = context.stores->Acquire();
        if (!store.ok()) {
          responder.Send(http::Response::Error(
              503, "state_unavailable", "the state cannot be reached: " + store.error().message));
          return;
        }
        // The token's glob, as the authenticator found it live for this request; its hash, for
        // the hub to check again while the stream stays open.
        q.selection.token_envs = request.principal_scope;
        if (std::optional<std::string_view> secret = BearerToken(request.Header("authorization"))) {
          if (Result<std::string> hash = auth::HashToken(*secret); hash.ok()) {
            q.selection.token_hash = std::move(*hash);
          }
        } else if (request.Header("authorization").empty()) {
          // A browser's EventSource sends its session cookie: the stream is checked against the
          // session's token, so that revoking the token closes it.
          SessionCheck check = CheckSessionCookie(context, request);
          if (check.session.has_value()) {
            q.selection.token_hash = check.session->token_hash;
            q.selection.session_hash = check.session->hash;
          }
        }
        if (!stream) {
          responder.Send(Page(**store, q));
          return;
        }
        Stream(context, **store, std::move(q), std::move(responder));
      },
      http::RouteOptions{"read"});
}

}  // namespace driftless::server::api
