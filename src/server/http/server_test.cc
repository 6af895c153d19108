// The server over real sockets: libcurl for ordinary requests, a raw socket client where a test
// needs exact bytes (half a header, a lying Content-Length, a thousand idle streams).

#include "server/http/server.h"

#include <curl/curl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <condition_variable>
#include <filesystem>
#include <future>
#include <mutex>
#include <thread>

#include "server/http/testing/raw_client.h"
#include "value/value.h"

namespace driftless::server::http {
namespace {

using testing::RawClient;
using testing::RawResponse;
using namespace std::chrono_literals;

constexpr auto kPatience = 60s;  // a failure detector, never a measurement

struct CurlReply {
  long status = 0;
  std::string body;
  std::string headers;
  std::string error;
};

size_t Collect(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

CurlReply Fetch(const std::string& url, const std::string& method = "GET",
                const std::string& body = "", std::vector<std::string> headers = {},
                const std::string& unix_path = "") {
  CurlReply reply;
  CURL* curl = curl_easy_init();
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method.c_str());
  if (!body.empty() || method == "POST") {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  }
  curl_slist* list = nullptr;
  for (const auto& h : headers) list = curl_slist_append(list, h.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
  if (!unix_path.empty()) curl_easy_setopt(curl, CURLOPT_UNIX_SOCKET_PATH, unix_path.c_str());
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, Collect);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &reply.body);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, Collect);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &reply.headers);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 60L);
  curl_easy_setopt(curl, CURLOPT_PATH_AS_IS, 1L);  // send ".." as it is
  CURLcode rc = curl_easy_perform(curl);
  if (rc != CURLE_OK) reply.error = curl_easy_strerror(rc);
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &reply.status);
  curl_slist_free_all(list);
  curl_easy_cleanup(curl);
  return reply;
}

// The envelope's code, after checking its shape: {"error": {"code", "message", "request_id"}}.
std::string EnvelopeCode(const std::string& body, std::string* request_id = nullptr) {
  auto v = value::ParseJson(body);
  if (!v.ok()) return "not JSON: " + body;
  const value::Value* error = v->Find("error");
  if (error == nullptr || !error->is_object() || error->as_object().size() != 3) {
    return "not an envelope: " + body;
  }
  const value::Value* code = error->Find("code");
  const value::Value* message = error->Find("message");
  const value::Value* id = error->Find("request_id");
  if (code == nullptr || message == nullptr || id == nullptr || !id->is_string() ||
      id->as_string().empty() || message->as_string().empty()) {
    return "incomplete envelope: " + body;
  }
  if (request_id != nullptr) *request_id = id->as_string();
  return code->as_string();
}

// A latch a test opens once.
class Gate {
 public:
  void Open() {
    {
      std::lock_guard lock(mu_);
      open_ = true;
    }
    cv_.notify_all();
  }
  void Wait() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [this] { return open_; });
  }
  bool WaitFor(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [this] { return open_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
};

// Polls `condition` until it holds or the patience runs out.
template <typename F>
bool Eventually(F condition) {
  auto deadline = std::chrono::steady_clock::now() + kPatience;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

// Event streams the handler of /events opened, for a test to broadcast to.
struct Streams {
  std::mutex mu;
  std::vector<std::shared_ptr<EventStream>> open;
  std::atomic<int> closed{0};

  size_t size() {
    std::lock_guard lock(mu);
    return open.size();
  }
  void Broadcast(const SseEvent& e) {
    std::lock_guard lock(mu);
    for (auto& s : open) s->Send(e);
  }
};

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("dl-http-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
    options_.unix_path = (dir_ / "api.sock").string();
    options_.access_log = [this](const AccessRecord& r) {
      std::lock_guard lock(log_mu_);
      log_.push_back(AccessLogLine(r));
    };
    options_.authenticator = [](const Request& request, std::string_view right) {
      std::string_view auth = request.Header("authorization");
      if (auth.empty()) return AuthDecision{401, "", "a bearer token is required"};
      if (auth == "Bearer viewer" && right == "runs:read") return AuthDecision{200, "viewer"};
      if (auth == "Bearer admin") return AuthDecision{200, "admin"};
      if (auth == "Bearer viewer")
        return AuthDecision{403, "", "viewer may not " + std::string(right)};
      return AuthDecision{401, "", "unknown token"};
    };
  }
  void TearDown() override {
    server_.reset();
    std::filesystem::remove_all(dir_);
  }

  // The routes every test shares.
  Router MakeRouter() {
    Router router(64);
    EXPECT_TRUE(router
                    .AddSync("GET", "/api/v1/runs/{id}",
                             [](const Request& r) {
                               return Response::Json(200, "{\"id\":\"" +
                                                              std::string(r.Param("id")) +
                                                              "\",\"by\":\"" + r.principal + "\"}");
                             },
                             {"runs:read", false})
                    .ok());
    EXPECT_TRUE(router
                    .AddSync("POST", "/api/v1/environments/{env}/runs",
                             [](const Request& r) {
                               auto body = r.JsonBody();
                               if (!body.ok()) {
                                 return Response::Error(400, "malformed_json",
                                                        body.error().message);
                               }
                               return Response::Json(202, *body);
                             },
                             {"runs:write", true})
                    .ok());
    EXPECT_TRUE(
        router.AddSync("GET", "/livez", [](const Request&) { return Response::Text(200, "ok\n"); })
            .ok());
    EXPECT_TRUE(router
                    .AddSync("GET", "/conflict",
                             [](const Request&) { return Response::Text(409, "already running"); })
                    .ok());
    EXPECT_TRUE(router.Add("GET", "/silent", [](const Request&, Responder) {}).ok());
    EXPECT_TRUE(
        router
            .Add("GET", "/throws",
                 [](const Request&, Responder) -> void { throw std::runtime_error("boom"); })
            .ok());
    // Answers later from a thread of its own: the asynchronous completion.
    EXPECT_TRUE(
        router
            .Add("GET", "/later",
                 [](const Request& r, Responder responder) {
                   std::thread([responder = std::move(responder), id = r.request_id]() mutable {
                     responder.Send(Response::Text(200, "later " + id));
                   }).detach();
                 },
                 {"", false})
            .ok());
    // Blocks its worker until the test opens the gate.
    EXPECT_TRUE(router
                    .AddSync("GET", "/block",
                             [this](const Request&) {
                               blocked_.Open();
                               release_.Wait();
                               return Response::Text(200, "released");
                             })
                    .ok());
    EXPECT_TRUE(router
                    .Add("GET", "/events",
                         [this](const Request& r, Responder responder) {
                           StreamOptions o;
                           o.heartbeat = heartbeat_;
                           auto stream = responder.OpenStream(o);
                           stream->Send({"0", "hello", std::string(r.Header("last-event-id"))});
                           stream->OnClose([this] { ++streams_.closed; });
                           std::lock_guard lock(streams_.mu);
                           streams_.open.push_back(std::move(stream));
                         },
                         {"", false})
                    .ok());
    return router;
  }

  void StartServer() {
    server_ = std::make_unique<Server>(MakeRouter(), options_);
    Status s = server_->Start();
    ASSERT_TRUE(s.ok()) << s.error().message;
    ASSERT_NE(server_->tcp_port(), 0);
  }

  std::string Url(const std::string& path) {
    return "http://127.0.0.1:" + std::to_string(server_->tcp_port()) + path;
  }
  RawClient Connect() {
    auto c = RawClient::ConnectTcp(server_->tcp_port());
    EXPECT_TRUE(c.ok()) << c.error().message;
    return std::move(*c);
  }
  std::vector<std::string> Log() {
    std::lock_guard lock(log_mu_);
    return log_;
  }

  std::filesystem::path dir_;
  ServerOptions options_;
  std::unique_ptr<Server> server_;
  std::mutex log_mu_;
  std::vector<std::string> log_;
  Gate blocked_, release_;
  Streams streams_;
  std::chrono::milliseconds heartbeat_{0};
};

TEST_F(ServerTest, RoutesOverTcpAndUnixSocketWithRequestIds) {
  StartServer();
  CurlReply r = Fetch(Url("/api/v1/runs/42"), "GET", "", {"Authorization: Bearer viewer"});
  ASSERT_EQ(r.error, "");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, R"({"id":"42","by":"viewer"})");
  EXPECT_NE(r.headers.find("X-Request-Id: "), std::string::npos);

  r = Fetch("http://localhost/api/v1/runs/7", "GET", "",
            {"Authorization: Bearer admin", "X-Request-Id: trace-77"}, options_.unix_path);
  ASSERT_EQ(r.error, "");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, R"({"id":"7","by":"admin"})");
  EXPECT_NE(r.headers.find("X-Request-Id: trace-77\r\n"), std::string::npos);

  // An unacceptable id is replaced by a generated one.
  r = Fetch(Url("/livez"), "GET", "", {"X-Request-Id: has spaces"});
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.headers.find("has spaces"), std::string::npos);

  r = Fetch(Url("/later"));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body.substr(0, 6), "later ");

  std::vector<std::string> log = Log();
  bool found = false;
  for (const auto& line : log) {
    auto v = value::ParseJson(line);
    ASSERT_TRUE(v.ok()) << line;
    if (v->Find("request_id")->as_string() == "trace-77") {
      found = true;
      EXPECT_EQ(v->Find("route")->as_string(), "/api/v1/runs/{id}");
      EXPECT_EQ(v->Find("method")->as_string(), "GET");
      EXPECT_EQ(v->Find("status")->as_int(), 200);
      EXPECT_EQ(v->Find("principal")->as_string(), "admin");
    }
  }
  EXPECT_TRUE(found);
}

TEST_F(ServerTest, EveryErrorIsAnEnvelope) {
  StartServer();
  struct Case {
    std::string method, path, body;
    std::vector<std::string> headers;
    long status;
    std::string code;
  };
  std::vector<Case> cases = {
      {"GET", "/nowhere", "", {}, 404, "not_found"},
      {"DELETE", "/api/v1/runs/1", "", {}, 405, "method_not_allowed"},
      {"GET", "/api/v1/runs/..", "", {"Authorization: Bearer admin"}, 400, "invalid_parameter"},
      {"GET", "/api/v1/runs/a%00b", "", {}, 400, "invalid_parameter"},
      {"GET", "/api/v1/runs/%22x%22", "", {}, 400, "invalid_parameter"},
      {"GET", "/api/v1/runs/" + std::string(65, 'x'), "", {}, 400, "invalid_parameter"},
      {"GET", "/api/v1/runs/1", "", {}, 401, "unauthorized"},
      {"GET", "/api/v1/runs/1", "", {"Authorization: Bearer bogus"}, 401, "unauthorized"},
      {"POST",
       "/api/v1/environments/prod/runs",
       "{}",
       {"Authorization: Bearer viewer"},
       403,
       "forbidden"},
      {"POST",
       "/api/v1/environments/prod/runs",
       "{\"action\": ",
       {"Authorization: Bearer admin"},
       400,
       "malformed_json"},
      {"GET", "/conflict", "", {}, 409, "conflict"},
      {"GET", "/silent", "", {}, 500, "internal"},
      {"GET", "/throws", "", {}, 500, "internal"},
  };
  for (const auto& c : cases) {
    CurlReply r = Fetch(Url(c.path), c.method, c.body, c.headers);
    ASSERT_EQ(r.error, "") << c.path;
    EXPECT_EQ(r.status, c.status) << c.method << " " << c.path << ": " << r.body;
    std::string id;
    EXPECT_EQ(EnvelopeCode(r.body, &id), c.code) << c.path;
    EXPECT_NE(r.headers.find("X-Request-Id: " + id + "\r\n"), std::string::npos) << r.headers;
    EXPECT_NE(r.headers.find("Content-Type: application/json"), std::string::npos);
  }
  CurlReply r = Fetch(Url("/api/v1/runs/1"), "DELETE");
  EXPECT_NE(r.headers.find("Allow: GET\r\n"), std::string::npos);
  r = Fetch(Url("/api/v1/runs/1"));
  EXPECT_NE(r.headers.find("WWW-Authenticate: Bearer"), std::string::npos);

  // A valid JSON body reaches the handler.
  r = Fetch(Url("/api/v1/environments/prod/runs"), "POST", R"({"action": "plan"})",
            {"Authorization: Bearer admin"});
  EXPECT_EQ(r.status, 202);
  EXPECT_EQ(r.body, R"({"action":"plan"})");

  // The server has kept serving.
  EXPECT_EQ(Fetch(Url("/livez")).status, 200);
}

TEST_F(ServerTest, MalformedAndOversizedRequests) {
  options_.max_header_bytes = 1024;
  StartServer();
  RawClient c = Connect();
  ASSERT_TRUE(c.Send("NOT HTTP AT ALL\r\n\r\n"));
  auto r = c.ReadResponse(kPatience);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_EQ(EnvelopeCode(r->body), "bad_request");
  EXPECT_TRUE(c.WaitClosed(kPatience));

  RawClient big = Connect();
  ASSERT_TRUE(
      big.Send("GET /livez HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(2000, 'a') + "\r\n\r\n"));
  r = big.ReadResponse(kPatience);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 431);
  EXPECT_EQ(EnvelopeCode(r->body), "header_too_large");
}

TEST_F(ServerTest, BodyCapOnContentLengthAndWhileReading) {
  options_.max_body_bytes = 1000;
  StartServer();
  // The header alone announces too much: 413 before any of the body is sent.
  RawClient c = Connect();
  ASSERT_TRUE(
      c.Send("POST /api/v1/environments/prod/runs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
             "admin\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n"));
  auto r = c.ReadResponse(kPatience);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
  EXPECT_EQ(EnvelopeCode(r->body), "payload_too_large");
  EXPECT_NE(r->body.find("Content-Length is above the cap of 1000 bytes"), std::string::npos);
  EXPECT_EQ(r->Header("connection"), "close");

  // A chunked body passes the cap while it is read.
  RawClient chunked = Connect();
  ASSERT_TRUE(chunked.Send(
      "POST /api/v1/environments/prod/runs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
      "admin\r\nTransfer-Encoding: chunked\r\n\r\n"));
  std::string chunk(600, 'x');
  ASSERT_TRUE(chunked.Send("258\r\n" + chunk + "\r\n"));  // 600 bytes: under the cap
  chunked.Send("258\r\n" + chunk + "\r\n");               // 1,200: over it
  r = chunked.ReadResponse(kPatience);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
  EXPECT_EQ(EnvelopeCode(r->body), "payload_too_large");
  EXPECT_NE(r->body.find("larger than 1000 bytes"), std::string::npos);

  // curl with a large body (it sends Expect: 100-continue) gets the 413 too.
  CurlReply big = Fetch(Url("/api/v1/environments/prod/runs"), "POST", std::string(5000, ' '),
                        {"Authorization: Bearer admin"});
  EXPECT_EQ(big.status, 413);
  EXPECT_EQ(EnvelopeCode(big.body), "payload_too_large");
  // A body under the cap, with Expect: 100-continue, is read and handled.
  CurlReply fits = Fetch(Url("/api/v1/environments/prod/runs"), "POST",
                         "{\"pad\": \"" + std::string(900, 'p') + "\"}",
                         {"Authorization: Bearer admin", "Expect: 100-continue"});
  EXPECT_EQ(fits.status, 202) << fits.body;
}

TEST_F(ServerTest, KeepAliveServesRequestsInTurn) {
  StartServer();
  RawClient c = Connect();
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(c.Send("GET /livez HTTP/1.1\r\nHost: x\r\nX-Request-Id: k" + std::to_string(i) +
                       "\r\n\r\n"));
    auto r = c.ReadResponse(kPatience);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->Header("connection"), "keep-alive");
    EXPECT_EQ(r->Header("x-request-id"), "k" + std::to_string(i));
  }
  // Two pipelined requests.
  ASSERT_TRUE(
      c.Send("GET /livez HTTP/1.1\r\nHost: x\r\n\r\nGET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto first = c.ReadResponse(kPatience);
  auto second = c.ReadResponse(kPatience);
  ASSERT_TRUE(first && second);
  EXPECT_EQ(first->status, 200);
  EXPECT_EQ(second->status, 404);
  EXPECT_EQ(server_->open_connections(), 1u);
}

TEST_F(ServerTest, SlowClientIsDroppedWhileOthersAreServed) {
  // Small, so that the test does not wait long; large enough that a loaded machine still
  // delivers a fast client's header (sent in one write) in time.
  options_.header_timeout = 1000ms;
  options_.idle_timeout = 1000ms;
  StartServer();
  // Half a header, then nothing (slowloris).
  RawClient slow = Connect();
  ASSERT_TRUE(slow.Send("GET /livez HTTP/1.1\r\nHost: x\r\nX-Slow: "));
  // Others are served meanwhile (the server does not wait for the slow one).
  for (int i = 0; i < 5; ++i) {
    auto r = testing::Get(server_->tcp_port(), "/livez");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
  }
  // The slow one gets 408 in the envelope and is closed.
  ASSERT_TRUE(slow.WaitClosed(kPatience));
  ASSERT_NE(slow.received().find("HTTP/1.1 408"), std::string::npos) << slow.received();
  EXPECT_NE(slow.received().find("\"request_timeout\""), std::string::npos);

  // A kept-alive connection that stays idle is closed too.
  RawClient idle = Connect();
  ASSERT_TRUE(idle.Send("GET /livez HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(idle.ReadResponse(kPatience));
  EXPECT_TRUE(idle.WaitClosed(kPatience));
  EXPECT_TRUE(Eventually([&] { return server_->open_connections() == 0; }));
}

TEST_F(ServerTest, ConnectionCap) {
  options_.max_connections = 2;
  StartServer();
  RawClient a = Connect(), b = Connect();
  ASSERT_TRUE(Eventually([&] { return server_->open_connections() == 2; }));
  RawClient c = Connect();
  auto r = c.ReadResponse(kPatience);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(EnvelopeCode(r->body), "too_many_connections");
  EXPECT_TRUE(c.WaitClosed(kPatience));
  // The two held connections are still served.
  ASSERT_TRUE(a.Send("GET /livez HTTP/1.1\r\nHost: x\r\n\r\n"));
  r = a.ReadResponse(kPatience);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

TEST_F(ServerTest, BlockingHandlersLeaveTheIoThreadFree) {
  options_.worker_threads = 1;
  StartServer();
  std::promise<std::optional<RawResponse>> blocked;
  auto blocked_reply = blocked.get_future();
  std::thread t([&] { blocked.set_value(testing::Get(server_->tcp_port(), "/block")); });
  ASSERT_TRUE(blocked_.WaitFor(kPatience));
  // The only worker is busy; routes that run on the I/O thread still answer.
  CurlReply r = Fetch(Url("/api/v1/runs/3"), "GET", "", {"Authorization: Bearer viewer"});
  EXPECT_EQ(r.status, 200);
  r = Fetch(Url("/later"));
  EXPECT_EQ(r.status, 200);
  release_.Open();
  t.join();
  auto reply = blocked_reply.get();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->body, "released");
}

TEST_F(ServerTest, EventStreamSendsEventsAndHeartbeatsAndSeesTheClientLeave) {
  heartbeat_ = 50ms;
  StartServer();
  {
    RawClient c = Connect();
    ASSERT_TRUE(c.Send("GET /events HTTP/1.1\r\nHost: x\r\nLast-Event-ID: 41\r\n\r\n"));
    ASSERT_TRUE(c.ReadUntil("data: 41\n\n", kPatience)) << c.received();
    EXPECT_NE(c.received().find("Content-Type: text/event-stream"), std::string::npos);
    EXPECT_NE(c.received().find("id: 0\nevent: hello\n"), std::string::npos);
    ASSERT_TRUE(Eventually([&] { return streams_.size() == 1; }));
    streams_.Broadcast({"42", "drift.detected", "{\"resource\":\"file.file/a\"}\nsecond line"});
    ASSERT_TRUE(
        c.ReadUntil("id: 42\nevent: drift.detected\ndata: {\"resource\":\"file.file/a\"}\n"
                    "data: second line\n\n",
                    kPatience));
    ASSERT_TRUE(c.ReadUntil(": heartbeat\n\n", kPatience));
    EXPECT_EQ(streams_.closed, 0);
  }  // the client goes away
  ASSERT_TRUE(Eventually([&] { return streams_.closed == 1; }));
  std::lock_guard lock(streams_.mu);
  EXPECT_TRUE(streams_.open[0]->closed());
  EXPECT_FALSE(streams_.open[0]->Send({"43", "x", "y"}));
}

TEST_F(ServerTest, AStreamsUnsentBytesCountWhatTheClientHasNotTakenYet) {
  heartbeat_ = 20ms;  // heartbeats are counted too
  StartServer();
  RawClient c = Connect();
  ASSERT_TRUE(c.Send("GET /events HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(Eventually([&] { return streams_.size() == 1; }));
  std::shared_ptr<EventStream> stream;
  {
    std::lock_guard lock(streams_.mu);
    stream = streams_.open[0];
  }
  const std::string big(200 * 1024, 'x');
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(stream->Send({std::to_string(i), "big", big}));
  EXPECT_LE(stream->unsent(), 5 * (big.size() + 64) + 1024);
  ASSERT_TRUE(c.ReadUntil("id: 4\nevent: big\n", kPatience));
  ASSERT_TRUE(c.ReadUntil(": heartbeat\n\n", kPatience));
  // Everything queued was written: nothing is left, and nothing was counted twice or missed.
  ASSERT_TRUE(Eventually([&] { return stream->unsent() == 0; })) << stream->unsent();
}

TEST_F(ServerTest, AThousandIdleStreamsAllReceiveABroadcast) {
  constexpr int kStreams = 1000;
  rlimit limit{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &limit), 0);
  if (limit.rlim_cur < 2 * kStreams + 100) {
    limit.rlim_cur = std::min<rlim_t>(limit.rlim_max, 4 * kStreams);
    ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &limit), 0);
  }
  ASSERT_GE(limit.rlim_cur, 2 * kStreams + 100u) << "needs that many descriptors";
  StartServer();
  std::vector<RawClient> clients;
  for (int i = 0; i < kStreams; ++i) {
    clients.push_back(Connect());
    ASSERT_TRUE(clients.back().Send("GET /events HTTP/1.1\r\nHost: x\r\n\r\n"));
  }
  ASSERT_TRUE(Eventually([&] { return streams_.size() == kStreams; }));
  streams_.Broadcast({"1000", "apply.succeeded", "broadcast"});
  for (auto& c : clients) {
    ASSERT_TRUE(c.ReadUntil("id: 1000\nevent: apply.succeeded\ndata: broadcast\n\n", kPatience))
        << c.received();
  }
  EXPECT_EQ(server_->open_connections(), static_cast<size_t>(kStreams));
  clients.clear();
  EXPECT_TRUE(Eventually([&] { return streams_.closed == kStreams; }));
}

TEST_F(ServerTest, GracefulStopFinishesInFlightAndClosesStreams) {
  StartServer();
  uint16_t port = server_->tcp_port();
  RawClient stream = Connect();
  ASSERT_TRUE(stream.Send("GET /events HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(stream.ReadUntil("event: hello", kPatience));
  RawClient idle = Connect();
  ASSERT_TRUE(idle.Send("GET /livez HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(idle.ReadResponse(kPatience));
  RawClient busy = Connect();
  ASSERT_TRUE(busy.Send("GET /block HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(blocked_.WaitFor(kPatience));

  std::thread stopper([&] { server_->Stop(); });
  // New connections are refused; the idle one and the stream are closed.
  EXPECT_TRUE(Eventually([&] { return !RawClient::ConnectTcp(port).ok(); }));
  EXPECT_TRUE(idle.WaitClosed(kPatience));
  EXPECT_TRUE(stream.WaitClosed(kPatience));
  EXPECT_TRUE(Eventually([&] { return streams_.closed == 1; }));
  EXPECT_FALSE(std::filesystem::exists(options_.unix_path));
  // The request in flight finishes, with Connection: close.
  release_.Open();
  auto r = busy.ReadResponse(kPatience);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "released");
  EXPECT_EQ(r->Header("connection"), "close");
  stopper.join();
  EXPECT_EQ(server_->open_connections(), 0u);
}

TEST_F(ServerTest, SigtermStopsAServerThatWaits) {
  StartServer();
  server_.reset();  // a fresh one, with the signal set installed before Start
  server_ = std::make_unique<Server>(MakeRouter(), options_);
  server_->StopOnSignals();
  ASSERT_TRUE(server_->Start().ok());
  uint16_t port = server_->tcp_port();
  auto r = testing::Get(port, "/livez");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  std::thread waiter([&] { server_->Wait(); });
  ::kill(::getpid(), SIGTERM);
  waiter.join();
  EXPECT_FALSE(RawClient::ConnectTcp(port).ok());
}

TEST_F(ServerTest, ResponderOutlivingTheServerIsHarmless) {
  std::promise<Responder> kept;
  auto future = kept.get_future();
  Router router;
  ASSERT_TRUE(router
                  .Add("GET", "/keep",
                       [&kept](const Request&, Responder responder) {
                         kept.set_value(std::move(responder));
                       },
                       {"", false})
                  .ok());
  options_.stop_grace = 100ms;
  server_ = std::make_unique<Server>(std::move(router), options_);
  ASSERT_TRUE(server_->Start().ok());
  RawClient c = Connect();
  ASSERT_TRUE(c.Send("GET /keep HTTP/1.1\r\nHost: x\r\n\r\n"));
  Responder responder = future.get();
  server_.reset();  // the grace passes, the connection is cut
  EXPECT_TRUE(c.WaitClosed(kPatience));
  responder.Send(Response::Text(200, "too late"));  // nothing happens, nothing breaks
}

TEST(ServerStartTest, BadAddressesNameThemselves) {
  ServerOptions o;
  o.tcp_address = "not-an-ip";
  Server s(Router(), o);
  Status st = s.Start();
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().message, "listen on not-an-ip:0: not an IP address");

  ServerOptions u;
  u.tcp_address = "";
  u.unix_path = "/nonexistent-dir/x.sock";
  Server s2(Router(), u);
  st = s2.Start();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("listen on unix socket /nonexistent-dir/x.sock: "),
            std::string::npos);
}

}  // namespace
}  // namespace driftless::server::http
