// Client over real sockets: a server of the HTTP layer (src/server/http) with a few routes and
// an authenticator of its own, on a unix socket and on loopback TCP. It checks what the client
// sends (the bearer token, the JSON body), what it makes of errors, and that a request under
// way is abandoned when the cancel flag is set. It waits only for what the server reports.

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>

#include "client/client.h"
#include "server/http/server.h"

namespace driftless::client {
namespace {

namespace http = server::http;
using value::Value;

class TransportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("dl-client-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
    http::Router router(16);
    ASSERT_TRUE(router
                    .AddSync("POST", "/api/v1/runs/{id}/approve",
                             [](const http::Request& r) {
                               Value v = Value::MakeObject();
                               v.Set("id", Value::String(std::string(r.Param("id"))));
                               v.Set("who", Value::String(r.principal));
                               v.Set("body", Value::String(r.body));
                               return http::Response::Json(200, v);
                             },
                             {"approve"})
                    .ok());
    ASSERT_TRUE(router
                    .AddSync("GET", "/api/v1/slow",
                             [this](const http::Request&) {
                               std::unique_lock lock(mu_);
                               entered_ = true;
                               cv_.notify_all();
                               cv_.wait(lock, [this] { return released_; });
                               return http::Response::Json(200, std::string("{}"));
                             },
                             {"read"})
                    .ok());
    http::ServerOptions o;
    o.tcp_address = "127.0.0.1";
    o.tcp_port = 0;
    o.unix_path = (dir_ / "api.sock").string();
    o.authenticator = [](const http::Request& request, std::string_view) {
      http::AuthDecision d;
      if (request.Header("authorization") == "Bearer dl_good") {
        d.principal = "ci";
        return d;
      }
      d.status = 401;
      d.message = "token refused: unknown";
      return d;
    };
    server_ = std::make_unique<http::Server>(std::move(router), o);
    ASSERT_TRUE(server_->Start().ok());
    socket_ = o.unix_path;
  }
  void TearDown() override {
    {
      std::lock_guard lock(mu_);
      released_ = true;
    }
    cv_.notify_all();
    server_->Stop();
    server_.reset();
    std::filesystem::remove_all(dir_);
  }

  Client Over(const std::string& url, const std::string& token) {
    Result<ServerUrl> parsed = ParseServerUrl(url);
    EXPECT_TRUE(parsed.ok()) << parsed.error().message;
    return Client(*parsed, token);
  }

  std::filesystem::path dir_;
  std::unique_ptr<http::Server> server_;
  std::string socket_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool entered_ = false;
  bool released_ = false;
};

TEST_F(TransportTest, SendsTheTokenAndTheBodyOverAUnixSocketAndOverTcp) {
  for (const std::string& url :
       {"unix://" + socket_, "http://127.0.0.1:" + std::to_string(server_->tcp_port())}) {
    Client c = Over(url, "dl_good");
    Value body = Value::MakeObject();
    body.Set("comment", Value::String("looks right"));
    Result<Value> got = c.Post("/api/v1/runs/7/approve", body);
    ASSERT_TRUE(got.ok()) << url << ": " << got.error().message;
    EXPECT_EQ(got->Find("id")->as_string(), "7");
    EXPECT_EQ(got->Find("who")->as_string(), "ci");
    EXPECT_EQ(got->Find("body")->as_string(), "{\"comment\":\"looks right\"}");
  }
}

TEST_F(TransportTest, ErrorsNameTheRouteTheStatusAndTheReasonButNeverTheToken) {
  Client refused = Over("unix://" + socket_, "dl_wrong_secret");
  Result<Value> r = refused.Post("/api/v1/runs/7/approve", Value::MakeObject());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("POST /api/v1/runs/7/approve: HTTP 401"), std::string::npos)
      << r.error().message;
  EXPECT_NE(r.error().message.find("token refused: unknown"), std::string::npos);
  EXPECT_EQ(r.error().message.find("dl_wrong_secret"), std::string::npos) << r.error().message;
  Client good = Over("unix://" + socket_, "dl_good");
  Result<Value> missing = good.Get("/api/v1/nothing");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("GET /api/v1/nothing: HTTP 404 not_found"),
            std::string::npos)
      << missing.error().message;
  Client nowhere = Over("unix://" + (dir_ / "none.sock").string(), "dl_good");
  Result<Value> unreachable = nowhere.Get("/api/v1/slow");
  ASSERT_FALSE(unreachable.ok());
  EXPECT_NE(unreachable.error().message.find("cannot reach the server unix://"), std::string::npos)
      << unreachable.error().message;
}

TEST_F(TransportTest, ARequestUnderWayIsAbandonedWhenCanceled) {
  Client c = Over("unix://" + socket_, "dl_good");
  std::atomic<bool> cancel{false};
  c.set_cancel(&cancel);
  std::thread canceler([&] {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [this] { return entered_; });
    cancel.store(true);
  });
  Result<Value> r = c.Get("/api/v1/slow");
  canceler.join();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "GET /api/v1/slow: interrupted");
}

}  // namespace
}  // namespace driftless::client
