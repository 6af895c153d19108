// GET /api/v1/events over a real SQLite state and a real http::Server on a loopback port: the
// stream, its resume with Last-Event-ID, the reset past retention, the filters, a scoped token,
// the JSON page, the heartbeat and many streams at once.

#include "server/api/events.h"

#include <gtest/gtest.h>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "auth/sessions.h"
#include "auth/tokens.h"
#include "server/http/testing/raw_client.h"
#include "state/open.h"
#include "support/shell.h"
#include "value/value.h"

namespace driftless::server::api {
namespace {

using http::testing::RawClient;
using namespace std::chrono_literals;

constexpr auto kPatience = 60s;  // a failure detector, never a measurement

class EventsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = test::GitTestDir("events_test");
    ASSERT_FALSE(dir_.empty());
    state_path_ = dir_ + "/state.db";
    Result<std::unique_ptr<state::StateStore>> opened = state::OpenStateStore(state_path_);
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    writer_ = std::move(*opened);
    admin_ = Token("admin", "**");
  }

  void TearDown() override {
    if (server_) server_->Stop();
    if (hub_) hub_->Stop();
    server_.reset();
    hub_.reset();
    writer_.reset();
    std::filesystem::remove_all(dir_);
  }

  std::string Token(const std::string& role, const std::string& envs) {
    auth::TokenRequest r;
    r.role = role;
    r.envs = envs;
    r.created_by = "test";
    Result<auth::CreatedToken> made = auth::CreateApiToken(*writer_, r);
    EXPECT_TRUE(made.ok()) << made.error().message;
    return made.ok() ? made->text : "";
  }

  void StartServer(EventHubOptions options = {}, size_t max_stream_buffer = 1024 * 1024) {
    stores_ = std::make_unique<StorePool>(state_path_);
    hub_ = std::make_unique<EventHub>(stores_.get(), &registry_, options);
    ASSERT_TRUE(hub_->Start().ok());
    context_.stores = stores_.get();
    context_.metrics = &registry_;
    context_.events = hub_.get();
    http::Router router;
    ASSERT_TRUE(AddEventRoutes(router, context_).ok());
    http::ServerOptions so;
    so.tcp_address = "127.0.0.1";
    so.tcp_port = 0;
    so.max_stream_buffer = max_stream_buffer;
    so.authenticator = MakeAuthenticator(context_);
    server_ = std::make_unique<http::Server>(std::move(router), so);
    Status started = server_->Start();
    ASSERT_TRUE(started.ok()) << started.error().message;
  }

  int64_t Append(const std::string& type, const std::string& env, int64_t time = 0,
                 const std::string& padding = "") {
    state::EventRecord e;
    e.type = type;
    e.environment = env;
    e.time = time != 0 ? time
                       : std::chrono::duration_cast<std::chrono::seconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
    e.payload_json = value::ToJson(value::Value::MakeObject(
        {{"type", value::Value::String(type)}, {"environment", value::Value::String(env)}}));
    if (!padding.empty()) e.payload_json.insert(1, "\"padding\":\"" + padding + "\",");
    Result<int64_t> id = writer_->AppendEvent(e, {});
    EXPECT_TRUE(id.ok()) << id.error().message;
    return id.ok() ? *id : 0;
  }

  // Opens a stream; waits for the response header.
  RawClient Open(const std::string& target, const std::string& token,
                 const std::string& extra_headers = "") {
    Result<RawClient> c = RawClient::ConnectTcp(server_->tcp_port());
    EXPECT_TRUE(c.ok());
    RawClient client = std::move(*c);
    client.Send("GET " + target + " HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n" +
                "Authorization: Bearer " + token + "\r\n" + extra_headers + "\r\n");
    EXPECT_TRUE(client.ReadUntil("\r\n\r\n", kPatience)) << client.received();
    EXPECT_NE(client.received().find("200 OK"), std::string::npos) << client.received();
    EXPECT_NE(client.received().find("text/event-stream"), std::string::npos);
    return client;
  }

  // Waits until the hub holds `n` streams (a stream is subscribed after its header is sent).
  void WaitStreams(size_t n) {
    auto deadline = std::chrono::steady_clock::now() + kPatience;
    while (hub_->streams() != n && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(5ms);
    }
    ASSERT_EQ(hub_->streams(), n);
  }

  // Waits until the metrics page has the line `line` (a delivery is counted once the stream
  // took it, which may be just after the client read it).
  bool WaitMetric(const std::string& line) {
    auto deadline = std::chrono::steady_clock::now() + kPatience;
    while (registry_.Render().find(line + "\n") == std::string::npos) {
      if (std::chrono::steady_clock::now() > deadline) {
        ADD_FAILURE() << "no '" << line << "' in\n" << registry_.Render();
        return false;
      }
      std::this_thread::sleep_for(5ms);
    }
    return true;
  }

  std::optional<http::testing::RawResponse> GetJson(const std::string& target,
                                                    const std::string& token) {
    Result<RawClient> c = RawClient::ConnectTcp(server_->tcp_port());
    if (!c.ok()) return std::nullopt;
    c->Send("GET " + target + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" +
            "Authorization: Bearer " + token + "\r\n\r\n");
    return c->ReadResponse(kPatience);
  }

  std::string dir_;
  std::string state_path_;
  std::unique_ptr<state::StateStore> writer_;
  std::string admin_;
  metrics::Registry registry_;
  std::unique_ptr<StorePool> stores_;
  std::unique_ptr<EventHub> hub_;
  ApiContext context_;
  std::unique_ptr<http::Server> server_;
};

// The ids of the events in an SSE text, in order (a `reset` included as "reset:ID").
std::vector<std::string> Ids(const std::string& text) {
  std::vector<std::string> ids;
  size_t at = 0;
  while ((at = text.find("id: ", at)) != std::string::npos) {
    size_t end = text.find('\n', at);
    std::string id = text.substr(at + 4, end - at - 4);
    size_t ev = text.find("event: ", end);
    if (ev == end + 1 && text.compare(ev + 7, 5, "reset") == 0) id = "reset:" + id;
    ids.push_back(id);
    at = end;
  }
  return ids;
}

std::string Frame(int64_t id, const std::string& type) {
  return "id: " + std::to_string(id) + "\nevent: " + type + "\ndata: ";
}

TEST_F(EventsTest, EventsAppendedAfterOpeningArriveInOrderWithTheirTypeAndJson) {
  Append("apply.succeeded", "prod");  // before: not replayed to a stream without an id
  StartServer();
  RawClient c = Open("/api/v1/events", admin_);
  WaitStreams(1);
  int64_t a = Append("drift.detected", "prod");
  int64_t b = Append("drift.resolved", "stage");
  ASSERT_TRUE(c.ReadUntil(Frame(b, "drift.resolved"), kPatience)) << c.received();
  EXPECT_EQ(Ids(c.received()), (std::vector<std::string>{std::to_string(a), std::to_string(b)}));
  EXPECT_NE(c.received().find(Frame(a, "drift.detected") +
                              "{\"environment\":\"prod\",\"type\":\"drift.detected\"}\n\n"),
            std::string::npos)
      << c.received();
  EXPECT_TRUE(WaitMetric("driftless_event_streams 1"));
  EXPECT_TRUE(WaitMetric("driftless_event_deliveries_total 2"));
}

TEST_F(EventsTest, ResumingWithLastEventIdGetsExactlyTheMissedEvents) {
  StartServer();
  int64_t first = 0;
  {
    RawClient c = Open("/api/v1/events", admin_);
    WaitStreams(1);
    first = Append("run.queued", "prod");
    ASSERT_TRUE(c.ReadUntil(Frame(first, "run.queued"), kPatience));
  }  // the client goes away
  std::vector<std::string> missed;
  for (int i = 0; i < 5; ++i) missed.push_back(std::to_string(Append("run.applied", "prod")));
  // The header, and the query parameter (for EventSource, which cannot set headers).
  for (bool header : {true, false}) {
    {
      RawClient c = header ? Open("/api/v1/events", admin_,
                                  "Last-Event-ID: " + std::to_string(first) + "\r\n")
                           : Open("/api/v1/events?last_event_id=" + std::to_string(first), admin_);
      ASSERT_TRUE(c.ReadUntil("id: " + missed.back() + "\n", kPatience)) << c.received();
      WaitStreams(1);
      // One more after the catch-up: no gap between the replay and the live events.
      int64_t live = Append("run.planned", "prod");
      ASSERT_TRUE(c.ReadUntil(Frame(live, "run.planned"), kPatience)) << c.received();
      std::vector<std::string> want = missed;
      want.push_back(std::to_string(live));
      EXPECT_EQ(Ids(c.received()), want);
      missed.push_back(std::to_string(live));
    }  // closes the stream
    WaitStreams(0);
  }
}

TEST_F(EventsTest, AReplayLargerThanTheStreamBufferReachesAClientThatReads) {
  const std::string padding(4000, 'x');
  std::vector<std::string> want;
  for (int i = 0; i < 300; ++i)
    want.push_back(std::to_string(Append("run.applied", "prod", 0, padding)));
  EventHubOptions options;
  options.replay_unsent = 16 * 1024;
  StartServer(options, 64 * 1024);  // 1.2 MB to replay through a 64 KiB buffer
  RawClient c = Open("/api/v1/events", admin_, "Last-Event-ID: 0\r\n");
  ASSERT_TRUE(c.ReadUntil("id: " + want.back() + "\n", kPatience)) << c.received().size();
  ASSERT_TRUE(c.ReadUntil("\n\n", kPatience));
  WaitStreams(1);
  int64_t live = Append("run.queued", "prod");
  ASSERT_TRUE(c.ReadUntil(Frame(live, "run.queued"), kPatience));
  want.push_back(std::to_string(live));
  EXPECT_EQ(Ids(c.received()), want);
}

TEST_F(EventsTest, AnIdPastRetentionGetsAResetAndThenTheNewEvents) {
  int64_t old = Append("run.queued", "prod", 1000);
  Append("run.applied", "prod", 1001);
  int64_t kept = Append("run.applied", "prod");
  ASSERT_TRUE(writer_->PruneEvents(2000).ok());
  StartServer();
  RawClient c = Open("/api/v1/events", admin_, "Last-Event-ID: " + std::to_string(old) + "\r\n");
  ASSERT_TRUE(c.ReadUntil("event: reset", kPatience)) << c.received();
  WaitStreams(1);
  int64_t next = Append("drift.detected", "prod");
  ASSERT_TRUE(c.ReadUntil(Frame(next, "drift.detected"), kPatience)) << c.received();
  EXPECT_EQ(Ids(c.received()),
            (std::vector<std::string>{"reset:" + std::to_string(kept), std::to_string(next)}));
  EXPECT_NE(c.received().find("\"last_event_id\":" + std::to_string(old)), std::string::npos);
  // An id this log never gave is a reset too.
  RawClient d = Open("/api/v1/events", admin_, "Last-Event-ID: 999999\r\n");
  ASSERT_TRUE(d.ReadUntil("event: reset", kPatience)) << d.received();
}

TEST_F(EventsTest, TheHubPrunesPastItsRetentionAndStoppingClosesEveryStream) {
  int64_t old = Append("run.queued", "prod", 1000);
  int64_t kept = Append("run.applied", "prod");
  EventHubOptions options;
  options.retention_seconds = 3600;
  StartServer(options);  // prunes at once
  Result<std::vector<state::EventRecord>> left = writer_->EventsAfter(0, {}, 100);
  ASSERT_TRUE(left.ok());
  ASSERT_EQ(left->size(), 1u);
  EXPECT_EQ(left->front().id, kept);
  // A client that saw `old` missed nothing; one that saw nothing missed `old`.
  RawClient c = Open("/api/v1/events", admin_, "Last-Event-ID: " + std::to_string(old) + "\r\n");
  ASSERT_TRUE(c.ReadUntil(Frame(kept, "run.applied"), kPatience)) << c.received();
  RawClient z = Open("/api/v1/events", admin_, "Last-Event-ID: 0\r\n");
  ASSERT_TRUE(z.ReadUntil("event: reset", kPatience)) << z.received();
  WaitStreams(2);
  hub_->Stop();
  EXPECT_TRUE(z.WaitClosed(kPatience));
  EXPECT_TRUE(c.WaitClosed(kPatience));
  EXPECT_EQ(hub_->streams(), 0u);
  EXPECT_TRUE(WaitMetric("driftless_event_streams 0"));
}

TEST_F(EventsTest, FiltersByEnvironmentAndTypeWithAPrefixForm) {
  StartServer();
  RawClient c = Open("/api/v1/events?environment=prod,preview-*&type=drift.*,run.applied", admin_);
  WaitStreams(1);
  Append("drift.detected", "stage");                // other environment
  int64_t a = Append("drift.detected", "prod");     // yes
  Append("run.queued", "prod");                     // other type
  int64_t b = Append("run.applied", "preview-12");  // yes
  int64_t last = Append("drift.resolved", "prod");  // yes
  ASSERT_TRUE(c.ReadUntil(Frame(last, "drift.resolved"), kPatience)) << c.received();
  EXPECT_EQ(Ids(c.received()),
            (std::vector<std::string>{std::to_string(a), std::to_string(b), std::to_string(last)}));
  Result<RawClient> bad = RawClient::ConnectTcp(server_->tcp_port());
  ASSERT_TRUE(bad.ok());
  bad->Send(
      "GET /api/v1/events?type=a***b HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n"
      "Authorization: Bearer " +
      admin_ + "\r\n\r\n");
  std::optional<http::testing::RawResponse> r = bad->ReadResponse(kPatience);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 400);
  EXPECT_NE(r->body.find("?type="), std::string::npos) << r->body;
}

TEST_F(EventsTest, AScopedTokenSeesOnlyTheEventsOfItsEnvironments) {
  std::string scoped = Token("viewer", "preview-*");
  StartServer();
  RawClient c = Open("/api/v1/events", scoped);
  WaitStreams(1);
  Append("run.applied", "prod");
  Append("watch.started", "");  // about no environment: only for "**" tokens
  int64_t a = Append("run.applied", "preview-1");
  // A filter cannot widen what the token sees.
  RawClient f = Open("/api/v1/events?environment=prod,preview-1", scoped);
  WaitStreams(2);
  Append("drift.detected", "prod");
  int64_t b = Append("drift.detected", "preview-1");
  ASSERT_TRUE(c.ReadUntil(Frame(b, "drift.detected"), kPatience)) << c.received();
  EXPECT_EQ(Ids(c.received()), (std::vector<std::string>{std::to_string(a), std::to_string(b)}));
  ASSERT_TRUE(f.ReadUntil(Frame(b, "drift.detected"), kPatience)) << f.received();
  EXPECT_EQ(Ids(f.received()), (std::vector<std::string>{std::to_string(b)}));
  std::optional<http::testing::RawResponse> page = GetJson("/api/v1/events", scoped);
  ASSERT_TRUE(page.has_value());
  EXPECT_EQ(page->body.find("\"prod\""), std::string::npos) << page->body;
  EXPECT_NE(page->body.find("\"preview-1\""), std::string::npos) << page->body;
  std::optional<http::testing::RawResponse> none = GetJson("/api/v1/events", "nope");
  ASSERT_TRUE(none.has_value());
  EXPECT_EQ(none->status, 401);
}

TEST_F(EventsTest, WithoutTheStreamHeaderTheSameEventsComeAsJsonPages) {
  StartServer();
  std::vector<int64_t> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(Append(i % 2 ? "run.queued" : "run.applied", "prod"));
  std::optional<http::testing::RawResponse> r = GetJson("/api/v1/events?limit=2", admin_);
  ASSERT_TRUE(r.has_value());
  ASSERT_EQ(r->status, 200) << r->body;
  Result<value::Value> page = value::ParseJson(r->body);
  ASSERT_TRUE(page.ok());
  const value::Value* events = page->Find("events");
  ASSERT_NE(events, nullptr);
  ASSERT_EQ(events->as_list().size(), 2u);
  EXPECT_EQ(events->as_list()[0].Find("id")->as_int(), ids[0]);
  EXPECT_EQ(events->as_list()[1].Find("type")->as_string(), "run.queued");
  EXPECT_EQ(events->as_list()[1].Find("event")->Find("environment")->as_string(), "prod");
  ASSERT_EQ(page->Find("next_cursor")->as_string(), std::to_string(ids[1]));
  r = GetJson("/api/v1/events?type=run.applied&after=" + std::to_string(ids[1]), admin_);
  ASSERT_TRUE(r.has_value());
  page = value::ParseJson(r->body);
  ASSERT_TRUE(page.ok()) << r->body;
  ASSERT_EQ(page->Find("events")->as_list().size(), 2u) << r->body;
  EXPECT_EQ(page->Find("events")->as_list()[0].Find("id")->as_int(), ids[2]);
  EXPECT_EQ(page->Find("events")->as_list()[1].Find("id")->as_int(), ids[4]);
  EXPECT_TRUE(page->Find("next_cursor")->is_null());
  r = GetJson("/api/v1/events?limit=0", admin_);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 400);
}

TEST_F(EventsTest, TheStreamHeaderIsReadInAnyCase) {
  StartServer();
  Result<RawClient> c = RawClient::ConnectTcp(server_->tcp_port());
  ASSERT_TRUE(c.ok());
  c->Send(
      "GET /api/v1/events HTTP/1.1\r\nHost: x\r\naccept: Text/Event-Stream\r\n"
      "Authorization: Bearer " +
      admin_ + "\r\n\r\n");
  ASSERT_TRUE(c->ReadUntil("\r\n\r\n", kPatience)) << c->received();
  EXPECT_NE(c->received().find("Content-Type: text/event-stream"), std::string::npos)
      << c->received();
}

TEST_F(EventsTest, AStreamIsClosedOnceItsTokenIsRevokedAndTheOthersGoOn) {
  EventHubOptions options;
  options.token_check = 20ms;
  StartServer(options);
  auth::TokenRequest r;
  r.role = "viewer";
  r.name = "leaving";
  r.created_by = "test";
  Result<auth::CreatedToken> made = auth::CreateApiToken(*writer_, r);
  ASSERT_TRUE(made.ok()) << made.error().message;
  RawClient gone = Open("/api/v1/events", made->text);
  RawClient stays = Open("/api/v1/events", admin_);
  WaitStreams(2);
  ASSERT_TRUE(auth::RevokeApiToken(*writer_, "leaving", "test").ok());
  EXPECT_TRUE(gone.ReadUntil("closing: token leaving is revoked", kPatience)) << gone.received();
  EXPECT_TRUE(gone.WaitClosed(kPatience));
  Append("run.queued", "prod");
  EXPECT_TRUE(stays.ReadUntil("event: run.queued", kPatience)) << stays.received();
  // Reconnecting with it is refused like any request with a revoked token.
  std::optional<http::testing::RawResponse> again = GetJson("/api/v1/events", made->text);
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->status, 401) << again->body;
}

// A run page's log: ?run=ID keeps the events whose run_id member is that run (not one that only
// mentions it in a string, not run 42's for run 4).
TEST_F(EventsTest, TheRunFilterKeepsTheEventsOfOneRun) {
  StartServer();
  auto append = [&](const std::string& payload) {
    state::EventRecord e;
    e.type = "run.progress";
    e.environment = "prod";
    e.time = 1;
    e.payload_json = payload;
    Result<int64_t> id = writer_->AppendEvent(e, {});
    EXPECT_TRUE(id.ok());
    return id.ok() ? *id : 0;
  };
  const int64_t first = append(R"({"environment":"prod","run_id":4,"type":"run.progress"})");
  append(R"({"environment":"prod","run_id":42,"type":"run.progress"})");
  append(R"({"diff":"\"run_id\":4,","environment":"prod","type":"run.progress"})");
  const int64_t last = append(R"({"run_id":4})");
  std::optional<http::testing::RawResponse> r = GetJson("/api/v1/events?run=4", admin_);
  ASSERT_TRUE(r.has_value());
  ASSERT_EQ(r->status, 200) << r->body;
  Result<value::Value> page = value::ParseJson(r->body);
  ASSERT_TRUE(page.ok());
  const value::Value::List& events = page->Find("events")->as_list();
  ASSERT_EQ(events.size(), 2u) << r->body;
  EXPECT_EQ(events[0].Find("id")->as_int(), first);
  EXPECT_EQ(events[1].Find("id")->as_int(), last);
  for (const char* bad : {"?run=0", "?run=x", "?run=-1"}) {
    r = GetJson(std::string("/api/v1/events") + bad, admin_);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->status, 400) << bad;
  }
}

// A browser's EventSource sends its session cookie, not a header: the stream is served, and
// closed once the session's token is revoked.
TEST_F(EventsTest, AStreamOpenedWithASessionCookieClosesWhenItsTokenIsRevoked) {
  EventHubOptions options;
  options.token_check = 20ms;
  StartServer(options);
  auth::TokenRequest r;
  r.role = "viewer";
  r.name = "browser";
  r.created_by = "test";
  Result<auth::CreatedToken> made = auth::CreateApiToken(*writer_, r);
  ASSERT_TRUE(made.ok()) << made.error().message;
  Result<auth::CreatedSession> session =
      auth::CreateSession(*writer_, made->record, std::time(nullptr));
  ASSERT_TRUE(session.ok()) << session.error().message;
  Result<RawClient> c = RawClient::ConnectTcp(server_->tcp_port());
  ASSERT_TRUE(c.ok());
  c->Send(
      "GET /api/v1/events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n"
      "Cookie: driftless_session=" +
      session->id + "\r\n\r\n");
  ASSERT_TRUE(c->ReadUntil("\r\n\r\n", kPatience)) << c->received();
  EXPECT_NE(c->received().find("200 OK"), std::string::npos) << c->received();
  WaitStreams(1);
  Append("run.queued", "prod");
  EXPECT_TRUE(c->ReadUntil("event: run.queued", kPatience)) << c->received();
  ASSERT_TRUE(auth::RevokeApiToken(*writer_, "browser", "test").ok());
  EXPECT_TRUE(c->ReadUntil("closing: token browser is revoked", kPatience)) << c->received();
  EXPECT_TRUE(c->WaitClosed(kPatience));
}

// Signing out (the session's end) closes the streams it opened; another session's stays.
TEST_F(EventsTest, AStreamOpenedWithASessionCookieClosesWhenTheSessionEnds) {
  EventHubOptions options;
  options.token_check = 20ms;
  StartServer(options);
  auth::TokenRequest r;
  r.role = "viewer";
  r.name = "browser";
  r.created_by = "test";
  Result<auth::CreatedToken> made = auth::CreateApiToken(*writer_, r);
  ASSERT_TRUE(made.ok()) << made.error().message;
  auto open = [&](const std::string& id) {
    Result<RawClient> c = RawClient::ConnectTcp(server_->tcp_port());
    EXPECT_TRUE(c.ok());
    c->Send(
        "GET /api/v1/events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n"
        "Cookie: driftless_session=" +
        id + "\r\n\r\n");
    EXPECT_TRUE(c->ReadUntil("\r\n\r\n", kPatience)) << c->received();
    return std::move(*c);
  };
  Result<auth::CreatedSession> leaving =
      auth::CreateSession(*writer_, made->record, std::time(nullptr));
  Result<auth::CreatedSession> staying =
      auth::CreateSession(*writer_, made->record, std::time(nullptr));
  ASSERT_TRUE(leaving.ok() && staying.ok());
  RawClient gone = open(leaving->id);
  RawClient stays = open(staying->id);
  WaitStreams(2);
  Result<bool> ended = writer_->DeleteSession(leaving->record.hash);
  ASSERT_TRUE(ended.ok() && *ended);
  EXPECT_TRUE(gone.ReadUntil("closing: the session ended", kPatience)) << gone.received();
  EXPECT_TRUE(gone.WaitClosed(kPatience));
  Append("run.queued", "prod");
  EXPECT_TRUE(stays.ReadUntil("event: run.queued", kPatience)) << stays.received();
}

TEST_F(EventsTest, AnIdleStreamGetsAHeartbeatComment) {
  EventHubOptions options;
  options.heartbeat = 50ms;
  StartServer(options);
  RawClient c = Open("/api/v1/events", admin_);
  EXPECT_TRUE(c.ReadUntil("\n:", kPatience)) << c.received();
}

TEST_F(EventsTest, TwoHundredStreamsEachGetEveryEvent) {
  StartServer();
  std::vector<RawClient> clients;
  for (int i = 0; i < 200; ++i) clients.push_back(Open("/api/v1/events", admin_));
  WaitStreams(200);
  std::vector<std::string> want;
  for (int i = 0; i < 10; ++i) want.push_back(std::to_string(Append("run.applied", "prod")));
  for (RawClient& c : clients) {
    ASSERT_TRUE(c.ReadUntil(Frame(std::stoll(want.back()), "run.applied"), kPatience))
        << c.received();
    EXPECT_EQ(Ids(c.received()), want);
  }
  EXPECT_TRUE(WaitMetric("driftless_event_deliveries_total 2000"));
  clients.clear();
  WaitStreams(0);
  EXPECT_TRUE(WaitMetric("driftless_event_streams 0"));
}

}  // namespace
}  // namespace driftless::server::api
