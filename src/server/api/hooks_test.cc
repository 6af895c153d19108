// POST /api/v1/hooks/git through the server's own parser and router (HandleRawRequest) on a real
// SQLite state, and once through a real Server on a loopback port with a real Controller on a
// real Git repository: signatures of every provider, refusals (audited), de-duplication, ping,
// the body cap, and the fetch a valid hook triggers.
#include "server/api/hooks.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "base/file_util.h"
#include "base/hash.h"
#include "server/http/server.h"
#include "server/http/testing/raw_client.h"
#include "state/open.h"
#include "support/shell.h"

namespace driftless::server::api {
namespace {

namespace fs = std::filesystem;

constexpr char kSecret[] = "It's a Secret to Everybody";

class ApiHooksTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = test::GitTestDir("driftless-hooks-test");
    ASSERT_FALSE(dir_.empty());
    pool_ = std::make_unique<StorePool>(dir_ + "/state.db");
    context_.stores = pool_.get();
    context_.metrics = &metrics_;
    context_.webhook_secret = kSecret;
    context_.now = [this] { return now_; };
  }
  void TearDown() override {
    controller_.reset();
    fs::remove_all(dir_);
  }
  http::Router Routes() {
    http::Router router;
    Status added = AddHookRoutes(router, context_);
    EXPECT_TRUE(added.ok());
    return router;
  }
  // A POST of the hook with `headers` (each "Name: value") and `body`.
  static std::string Raw(const std::vector<std::string>& headers, const std::string& body) {
    std::string raw = "POST /api/v1/hooks/git HTTP/1.1\r\nHost: x\r\n";
    for (const std::string& h : headers) raw += h + "\r\n";
    raw += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
    return raw;
  }
  // Posts through the routes made from context_ at the first Post (or after Reroute).
  http::Response Post(const std::vector<std::string>& headers, const std::string& body) {
    if (!router_) router_ = std::make_unique<http::Router>(Routes());
    return http::HandleRawRequest(*router_, options_, Raw(headers, body), true);
  }
  // Makes the routes again from context_ (without metrics: the registry has them already).
  void Reroute() {
    context_.metrics = nullptr;
    router_.reset();
  }
  std::vector<state::AuditEntry> AuditLog() {
    auto store = pool_->Acquire();
    EXPECT_TRUE(store.ok());
    auto page = (*store)->ListAudit({}, 0, 100);
    EXPECT_TRUE(page.ok());
    return page.ok() ? page->items : std::vector<state::AuditEntry>{};
  }
  static std::string Sig(const std::string& body, const std::string& secret = kSecret) {
    return "sha256=" + HmacSha256Hex(secret, body);
  }

  std::string dir_;
  std::unique_ptr<StorePool> pool_;
  metrics::Registry metrics_;
  ApiContext context_;
  http::ServerOptions options_;
  int64_t now_ = 1'700'000'000;
  std::unique_ptr<controller::Controller> controller_;
  std::unique_ptr<http::Router> router_;
};

TEST(ApiHmacTest, MatchesGitHubsDocumentedExample) {
  // The example of GitHub's "Validating webhook deliveries".
  EXPECT_EQ(HmacSha256Hex(kSecret, "Hello, World!"),
            "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17");
  EXPECT_TRUE(ValidSha256Signature(
      "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17", kSecret,
      "Hello, World!"));
  EXPECT_TRUE(ValidSha256Signature(
      "SHA256=757107EA0EB2509FC211221CCE984B8A37570B6D7586C22C46F4379C8B043E17", kSecret,
      "Hello, World!"));
  // One digit off, one digit short, one too many, not hex, another scheme.
  EXPECT_FALSE(ValidSha256Signature(
      "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e18", kSecret,
      "Hello, World!"));
  EXPECT_FALSE(
      ValidSha256Signature("sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e1",
                           kSecret, "Hello, World!"));
  EXPECT_FALSE(ValidSha256Signature(
      "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e170", kSecret,
      "Hello, World!"));
  EXPECT_FALSE(ValidSha256Signature(
      "sha256=zz7107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17", kSecret,
      "Hello, World!"));
  EXPECT_FALSE(
      ValidSha256Signature("sha1=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
                           kSecret, "Hello, World!"));
  EXPECT_TRUE(ConstantTimeEquals("token", "token"));
  EXPECT_FALSE(ConstantTimeEquals("token", "tokem"));
  EXPECT_FALSE(ConstantTimeEquals("token", "token "));
  EXPECT_FALSE(ConstantTimeEquals("", "token"));
}

TEST_F(ApiHooksTest, ValidSignaturesOfEveryProviderAreQueuedOnAnyBody) {
  // The body is never parsed: a valid signature on anything (here not JSON) is a fetch.
  const std::string body = "not json at all {";
  http::Response r =
      Post({"X-GitHub-Event: push", "X-GitHub-Delivery: d-1", "X-Hub-Signature-256: " + Sig(body)},
           body);
  EXPECT_EQ(r.status, 202) << r.body;
  EXPECT_NE(r.body.find("\"status\":\"queued\""), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("\"provider\":\"github\""), std::string::npos) << r.body;
  r = Post({"X-Gitlab-Event: Push Hook", std::string("X-Gitlab-Token: ") + kSecret}, body);
  EXPECT_EQ(r.status, 202) << r.body;
  EXPECT_NE(r.body.find("\"provider\":\"gitlab\""), std::string::npos) << r.body;
  r = Post({"X-Driftless-Delivery: g-1", "X-Driftless-Signature: " + Sig(body)}, body);
  EXPECT_EQ(r.status, 202) << r.body;
  EXPECT_NE(r.body.find("\"provider\":\"generic\""), std::string::npos) << r.body;
  std::vector<state::AuditEntry> log = AuditLog();
  ASSERT_EQ(log.size(), 3u);
  for (const state::AuditEntry& e : log) {
    EXPECT_EQ(e.action, "webhook.git");
    EXPECT_EQ(e.result, "allowed");
  }
  std::string rendered = metrics_.Render();
  EXPECT_NE(rendered.find("driftless_webhook_requests_total{provider=\"github\",result="
                          "\"accepted\"} 1"),
            std::string::npos)
      << rendered;
  EXPECT_NE(rendered.find("driftless_webhook_requests_total{provider=\"gitlab\",result="
                          "\"accepted\"} 1"),
            std::string::npos)
      << rendered;
}

TEST_F(ApiHooksTest, BadMissingOrMisshapenSignaturesAre401AndAudited) {
  const std::string body = "{\"ref\":\"refs/heads/main\"}";
  struct Case {
    std::vector<std::string> headers;
    std::string says;
  };
  std::vector<Case> cases = {
      {{"X-GitHub-Event: push", "X-Hub-Signature-256: " + Sig(body, "another secret")},
       "X-Hub-Signature-256 is not"},
      {{"X-GitHub-Event: push"}, "needs an X-Hub-Signature-256"},
      {{"X-GitHub-Event: push", "X-Hub-Signature-256: " + Sig(body).substr(0, 20)},
       "X-Hub-Signature-256 is not"},
      {{"X-GitHub-Event: push", "X-Hub-Signature-256: " + Sig(body) + "00"},
       "X-Hub-Signature-256 is not"},
      {{"X-GitHub-Event: push", "X-Hub-Signature: sha1=0123"}, "needs an X-Hub-Signature-256"},
      {{"X-Gitlab-Event: Push Hook", "X-Gitlab-Token: wrong"}, "X-Gitlab-Token is not"},
      {{"X-Gitlab-Event: Push Hook"}, "needs an X-Gitlab-Token"},
      {{"X-Driftless-Signature: " + Sig(body + "x")}, "X-Driftless-Signature is not"},
      {{}, "no signature"},
  };
  for (const Case& c : cases) {
    http::Response r = Post(c.headers, body);
    EXPECT_EQ(r.status, 401) << c.says << ": " << r.body;
    EXPECT_NE(r.body.find("\"code\":\"bad_signature\""), std::string::npos) << r.body;
    EXPECT_NE(r.body.find(c.says), std::string::npos) << r.body;
  }
  std::vector<state::AuditEntry> log = AuditLog();
  ASSERT_EQ(log.size(), cases.size());
  for (const state::AuditEntry& e : log) {
    EXPECT_EQ(e.result, "refused");
    EXPECT_EQ(e.action, "webhook.git");
    EXPECT_FALSE(e.reason.empty());
  }
  EXPECT_NE(metrics_.Render().find("driftless_webhook_requests_total{provider=\"github\",result="
                                   "\"unauthorized\"} 5"),
            std::string::npos)
      << metrics_.Render();
}

TEST_F(ApiHooksTest, DuplicateDeliveriesAreSaidSoAndPingIsAnswered) {
  const std::string body = "{}";
  std::vector<std::string> headers = {"X-GitHub-Event: push", "X-GitHub-Delivery: 72d3162e",
                                      "X-Hub-Signature-256: " + Sig(body)};
  EXPECT_EQ(Post(headers, body).status, 202);
  http::Response again = Post(headers, body);
  EXPECT_EQ(again.status, 200) << again.body;
  EXPECT_NE(again.body.find("\"status\":\"duplicate\""), std::string::npos) << again.body;
  // The same id from another provider is another delivery.
  EXPECT_EQ(
      Post({"X-Driftless-Delivery: 72d3162e", "X-Driftless-Signature: " + Sig(body)}, body).status,
      202);
  // A bad signature never marks a delivery as seen.
  EXPECT_EQ(Post({"X-GitHub-Event: push", "X-GitHub-Delivery: d-2",
                  "X-Hub-Signature-256: " + Sig(body, "x")},
                 body)
                .status,
            401);
  EXPECT_EQ(
      Post({"X-GitHub-Event: push", "X-GitHub-Delivery: d-2", "X-Hub-Signature-256: " + Sig(body)},
           body)
          .status,
      202);
  http::Response ping =
      Post({"X-GitHub-Event: ping", "X-GitHub-Delivery: p-1", "X-Hub-Signature-256: " + Sig(body)},
           body);
  EXPECT_EQ(ping.status, 200) << ping.body;
  EXPECT_NE(ping.body.find("\"status\":\"pong\""), std::string::npos) << ping.body;
  EXPECT_EQ(Post({"X-GitHub-Event: push", "X-GitHub-Delivery: bad id!",
                  "X-Hub-Signature-256: " + Sig(body)},
                 body)
                .status,
            400);
  // Deliveries are pruned after their retention: the first id is new again much later.
  now_ += kDeliveryRetentionSeconds + 7200;
  EXPECT_EQ(
      Post({"X-GitHub-Event: push", "X-GitHub-Delivery: d-3", "X-Hub-Signature-256: " + Sig(body)},
           body)
          .status,
      202);
  EXPECT_EQ(Post(headers, body).status, 202);
}

TEST_F(ApiHooksTest, OversizedBodiesAre413AndNoSecretMeans403) {
  // Past the server's body cap, refused by the server before the body is read.
  std::string big(options_.max_body_bytes + 1, 'x');
  EXPECT_EQ(Post({"X-Driftless-Signature: " + Sig(big)}, big).status, 413);
  // A server with a larger cap still refuses a hook past the hook's own.
  options_.max_body_bytes = 4 * kMaxHookBodyBytes;
  std::string bigger(kMaxHookBodyBytes + 1, 'x');
  http::Response r = Post({"X-Driftless-Signature: " + Sig(bigger)}, bigger);
  EXPECT_EQ(r.status, 413) << r.body;
  EXPECT_NE(r.body.find("payload_too_large"), std::string::npos) << r.body;
  context_.webhook_secret.clear();
  Reroute();
  r = Post({"X-Driftless-Signature: " + Sig("{}")}, "{}");
  EXPECT_EQ(r.status, 403) << r.body;
  EXPECT_NE(r.body.find("--webhook-secret-file"), std::string::npos) << r.body;
}

TEST_F(ApiHooksTest, SecretFilesArePrivateAndNotEmpty) {
  const std::string path = dir_ + "/secret";
  ASSERT_TRUE(WriteFileAtomic(path, "s3cret\n").ok());
  ASSERT_EQ(chmod(path.c_str(), 0600), 0);
  Result<std::string> secret = ReadWebhookSecret(path);
  ASSERT_TRUE(secret.ok()) << secret.error().message;
  EXPECT_EQ(*secret, "s3cret");
  ASSERT_TRUE(WriteFileAtomic(path, "s3cret\r\n").ok());
  ASSERT_EQ(chmod(path.c_str(), 0600), 0);
  EXPECT_EQ(*ReadWebhookSecret(path), "s3cret");
  ASSERT_EQ(chmod(path.c_str(), 0644), 0);
  Result<std::string> open = ReadWebhookSecret(path);
  ASSERT_FALSE(open.ok());
  EXPECT_NE(open.error().message.find(path), std::string::npos);
  EXPECT_NE(open.error().message.find("every user"), std::string::npos);
  ASSERT_TRUE(WriteFileAtomic(path, "\n").ok());
  ASSERT_EQ(chmod(path.c_str(), 0600), 0);
  Result<std::string> empty = ReadWebhookSecret(path);
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.error().message.find("is empty"), std::string::npos);
  Result<std::string> missing = ReadWebhookSecret(dir_ + "/nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find(dir_ + "/nope"), std::string::npos);
}

TEST_F(ApiHooksTest, AValidHookOnARealServerMakesTheControllerFetch) {
  const std::string repo = dir_ + "/repo";
  ASSERT_TRUE(MakeDirs(repo).ok());
  ASSERT_TRUE(WriteFileAtomic(repo + "/driftless.yaml",
                              "project: shop\nenvironments:\n  - branch: main\n    name: "
                              "production\n    sync: manual\ntargets:\n  host: {provider: file, "
                              "root: \"" +
                                  dir_ + "/root/${env}\"}\n")
                  .ok());
  test::Sh("git -C '" + repo + "' -c init.defaultBranch=main init -q && git -C '" + repo +
           "' add -A && git -C '" + repo +
           "' -c user.name=Dev -c user.email=dev@example.com commit -q -m one");
  controller::ControllerOptions o;
  o.workspace.dir = repo;
  o.workspace.state = dir_ + "/state.db";
  o.poll_seconds = 3600;  // only a hook fetches after the first fetch
  o.watch = false;
  controller_ = std::make_unique<controller::Controller>(o);
  ASSERT_TRUE(controller_->Start().ok());
  context_.controller = controller_.get();
  context_.now = nullptr;
  context_.metrics = nullptr;
  auto wait_fetches = [&](uint64_t n) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (controller_->fetches() < n && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return controller_->fetches() >= n;
  };
  ASSERT_TRUE(wait_fetches(1));
  http::ServerOptions so;
  so.tcp_port = 0;
  http::Server server(Routes(), so);
  ASSERT_TRUE(server.Start().ok());
  const std::string body = "{\"after\":\"0000000000000000000000000000000000000000\"}";
  auto post = [&](const std::string& signature) {
    Result<http::testing::RawClient> client =
        http::testing::RawClient::ConnectTcp(server.tcp_port());
    EXPECT_TRUE(client.ok());
    if (!client.ok()) return 0;
    EXPECT_TRUE(client->Send(Raw(
        {"X-GitHub-Event: push", "X-Hub-Signature-256: " + signature, "Connection: close"}, body)));
    std::optional<http::testing::RawResponse> r = client->ReadResponse(std::chrono::seconds(60));
    return r.has_value() ? r->status : 0;
  };
  // Other servers on the state hear of an accepted hook on the "fetch" channel.
  Result<StorePool::Lease> other = pool_->Acquire();
  ASSERT_TRUE(other.ok());
  Result<std::unique_ptr<state::ChangeListener>> listener =
      (*other)->Listen({state::kFetchChannel});
  ASSERT_TRUE(listener.ok()) << listener.error().message;
  EXPECT_EQ(post(Sig(body, "x")), 401);
  EXPECT_EQ(controller_->fetches(), 1u);
  EXPECT_EQ(post(Sig(body)), 202);
  EXPECT_TRUE(wait_fetches(2));
  std::vector<std::string> heard;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (heard.empty() && std::chrono::steady_clock::now() < deadline) {
    Result<state::Wakeup> w = (*listener)->Wait(60000);
    ASSERT_TRUE(w.ok()) << w.error().message;
    for (const state::Notification& n : w->notifications) heard.push_back(n.payload);
  }
  EXPECT_EQ(heard, std::vector<std::string>{"github push"});  // the refused one is not told
  server.Stop();
}

}  // namespace
}  // namespace driftless::server::api
