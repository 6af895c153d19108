// The REST routes of `driftless serve` over a real Server (loopback, port 0), a real Controller
// on a real Git repository (git CLI), real files and a real SQLite state, with tokens made by
// auth::CreateApiToken (what `driftless token create` calls): every route against every kind
// of token, the audit log of what was refused and allowed, pagination, the bad inputs of the
// issue (each answered by a 4xx envelope while another client is served), and the OpenAPI
// document checked by a real validator and against the routes the router holds.

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "auth/rights.h"
#include "auth/sessions.h"
#include "auth/token.h"
#include "auth/tokens.h"
#include "base/file_util.h"
#include "base/hash.h"
#include "base/identity.h"
#include "base/strings.h"
#include "server/api/api.h"
#include "server/api/openapi.h"
#include "server/http/testing/raw_client.h"
#include "state/open.h"
#include "support/shell.h"
#include "value/value.h"

namespace driftless::server::api {
namespace {

namespace fs = std::filesystem;
using http::testing::RawClient;
using http::testing::RawResponse;
using namespace std::chrono_literals;

constexpr auto kPatience = 60s;  // a failure detector, never a measurement

class RestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = test::GitTestDir("driftless-rest-test");
    ASSERT_FALSE(dir_.empty());
    ASSERT_TRUE(MakeDirs(repo()).ok());
    Git("init -q");
    Write("driftless.yaml",
          "project: shop\nenvironments:\n  - branch: main\n    name: production\n    sync: auto\n"
          "    protected: true\n"
          "  - branch: \"manual/*\"\n    name: \"m-{1}\"\n    sync: manual\n"
          "targets:\n  host: {provider: file, root: \"" +
              dir_ + "/root/${env}\"}\n");
    Write("app.yaml",
          "kind: file.file\nname: app\ntarget: host\nspec: {path: app.conf, content: \"1\"}\n");
    Git("add -A");
    Git("commit -q -m one");
    Git("branch manual/x");
    Git("branch manual/y");
    Git("branch manual/z");
    head_ = Git("rev-parse HEAD");
  }
  void TearDown() override {
    if (server_) server_->Stop();
    server_.reset();
    if (controller_) controller_->Stop();
    controller_.reset();
    store_.reset();
    pool_.reset();
    fs::remove_all(dir_);
  }
  std::string repo() const { return dir_ + "/repo"; }
  std::string Git(const std::string& args) { return test::GitIn(repo(), args); }
  void Write(const std::string& rel, const std::string& content) {
    test::WriteIn(repo(), rel, content);
  }

  // Starts the controller and the server with every route; waits until production is applied
  // (approved) and m-x, m-y and m-z are planned.
  // `started` false: the controller is made but not started (no fetch has happened).
  void StartServer(std::chrono::milliseconds header_timeout = 10s, bool started = true) {
    controller::ControllerOptions o;
    o.workspace.dir = repo();
    o.workspace.state = dir_ + "/state.db";
    o.poll_seconds = 3600;
    o.watch = false;
    controller_ = std::make_unique<controller::Controller>(o);
    Status s = started ? controller_->Start() : Status::Ok();
    ASSERT_TRUE(s.ok()) << s.error().message;
    auto opened = state::OpenStateStore(dir_ + "/state.db");
    ASSERT_TRUE(opened.ok());
    store_ = std::move(*opened);
    pool_ = std::make_unique<StorePool>(dir_ + "/state.db");
    context_.controller = controller_.get();
    context_.stores = pool_.get();
    http::Router router;
    s = AddRoutes(router, context_);
    ASSERT_TRUE(s.ok()) << s.error().message;
    for (const auto& r : router.routes()) {
      routes_.insert(r->method + " " + r->pattern);
      route_rights_[r->method + " " + r->pattern] = r->options.required_right;
    }
    http::ServerOptions so;
    so.authenticator = MakeAuthenticator(context_);
    so.header_timeout = header_timeout;
    server_ = std::make_unique<http::Server>(std::move(router), so);
    s = server_->Start();
    ASSERT_TRUE(s.ok()) << s.error().message;
    if (!started) return;
    // production is protected: its first apply waits for an approval by someone else.
    const state::Run waiting = WaitRun("production", "awaiting_approval");
    Result<controller::RunDecision> approved =
        controller_->DecideRun(waiting.id, "setup", "approved", "");
    ASSERT_TRUE(approved.ok() && approved->outcome == controller::RunDecision::Outcome::kRecorded);
    WaitRun("production", "applied");
    WaitRun("m-x", "planned");
    WaitRun("m-y", "planned");
    WaitRun("m-z", "planned");
  }

  // A new token (as `driftless token create` makes it); returns its text.
  std::string Token(const std::string& name, const std::string& role,
                    const std::string& envs = "**") {
    auth::TokenRequest r;
    r.name = name;
    r.role = role;
    r.envs = envs;
    r.created_by = "test";
    auto made = auth::CreateApiToken(*store_, r);
    EXPECT_TRUE(made.ok()) << (made.ok() ? "" : made.error().message);
    return made.ok() ? made->text : "";
  }

  // Waits (a failure detector) for a run of `env` with `status`; returns it.
  state::Run WaitRun(const std::string& env, const std::string& status, int64_t id = 0) {
    state::Run last;
    auto deadline = std::chrono::steady_clock::now() + 2 * kPatience;
    while (std::chrono::steady_clock::now() < deadline) {
      state::RunFilter f;
      f.environment = env;
      auto page = store_->ListRuns(f, 0, 100);
      if (page.ok()) {
        for (const auto& r : page->items) {
          if ((id == 0 || r.id == id) && r.status == status) return r;
          if (id == 0 || r.id == id) last = r;
        }
      }
      std::this_thread::sleep_for(20ms);
    }
    ADD_FAILURE() << "no run of " << env << " became " << status << "; last: " << last.status << " "
                  << last.message;
    return last;
  }

  // One request on a new connection (Connection: close).
  RawResponse Call(const std::string& method, const std::string& target,
                   const std::string& token = "", const std::string& body = "") {
    auto client = RawClient::ConnectTcp(server_->tcp_port());
    EXPECT_TRUE(client.ok());
    if (!client.ok()) return {};
    std::string req = method + " " + target + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n";
    if (!token.empty()) req += "Authorization: Bearer " + token + "\r\n";
    if (method == "POST") {
      req += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
             "\r\n";
    }
    req += "\r\n" + body;
    EXPECT_TRUE(client->Send(req));
    std::optional<RawResponse> r = client->ReadResponse(kPatience);
    EXPECT_TRUE(r.has_value()) << method << " " << target;
    return r.value_or(RawResponse{});
  }

  // One request on a new connection with `headers` ("Name: value\r\n" each) as given.
  RawResponse CallWith(const std::string& method, const std::string& target,
                       const std::string& headers, const std::string& body = "",
                       uint16_t port = 0) {
    auto client = RawClient::ConnectTcp(port != 0 ? port : server_->tcp_port());
    EXPECT_TRUE(client.ok());
    if (!client.ok()) return {};
    std::string req =
        method + " " + target + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + headers;
    if (!body.empty() || method == "POST") {
      req += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
             "\r\n";
    }
    req += "\r\n" + body;
    EXPECT_TRUE(client->Send(req));
    std::optional<RawResponse> r = client->ReadResponse(kPatience);
    EXPECT_TRUE(r.has_value()) << method << " " << target;
    return r.value_or(RawResponse{});
  }

  static value::Value Parse(const RawResponse& r) {
    auto v = value::ParseJson(r.body);
    EXPECT_TRUE(v.ok()) << r.body;
    return v.ok() ? *v : value::Value();
  }
  // Checks that `r` is the envelope with X-Request-Id as its request id; returns its code.
  static std::string EnvelopeCode(const RawResponse& r) {
    value::Value v = Parse(r);
    const value::Value* e = v.Find("error");
    if (e == nullptr || !e->is_object()) return "not an envelope: " + r.body;
    const value::Value* code = e->Find("code");
    const value::Value* message = e->Find("message");
    const value::Value* id = e->Find("request_id");
    if (code == nullptr || message == nullptr || id == nullptr || !id->is_string() ||
        id->as_string() != r.Header("x-request-id") || e->as_object().size() != 3) {
      return "bad envelope: " + r.body;
    }
    return code->as_string();
  }
  static std::string Message(const RawResponse& r) {
    value::Value v = Parse(r);
    const value::Value* m = v.FindPath("error.message");
    return m != nullptr && m->is_string() ? m->as_string() : "";
  }

  std::string dir_;
  std::string head_;
  std::unique_ptr<controller::Controller> controller_;
  std::unique_ptr<state::StateStore> store_;
  std::unique_ptr<StorePool> pool_;
  ApiContext context_;
  std::unique_ptr<http::Server> server_;
  std::set<std::string> routes_;
  std::map<std::string, std::string> route_rights_;  ///< "METHOD /pattern" -> its right

  // "METHOD pattern" of the route that `target` matches ("" when none): {x} matches a segment.
  std::string RouteOf(const std::string& method, const std::string& target) const {
    const std::string path = target.substr(0, target.find('?'));
    const std::vector<std::string> want = Split(path, '/');
    for (const std::string& route : routes_) {
      const size_t space = route.find(' ');
      if (route.compare(0, space, method) != 0) continue;
      const std::vector<std::string> have = Split(route.substr(space + 1), '/');
      if (have.size() != want.size()) continue;
      bool same = true;
      for (size_t i = 0; i < have.size() && same; ++i) {
        same = (!have[i].empty() && have[i].front() == '{') || have[i] == want[i];
      }
      if (same) return route;
    }
    return "";
  }
};

TEST_F(RestTest, EveryRouteAgainstEveryKindOfToken) {
  StartServer();
  const std::string viewer = Token("viewer1", "viewer");
  const std::string editor = Token("editor1", "editor");
  const std::string admin = Token("admin1", "admin");
  const std::string other = Token("other1", "editor", "other-*");
  const std::string revoked = Token("gone1", "admin");
  ASSERT_TRUE(auth::RevokeApiToken(*store_, "gone1", "test").ok());
  const state::Run planned = WaitRun("m-x", "planned");
  auto applies = store_->ListApplies("production", 1);
  ASSERT_TRUE(applies.ok() && !applies->empty());
  const std::string apply_id = std::to_string(applies->front().id);

  // A fresh run for every cancel that stays queued: an apply of m-z waits for the lock this
  // test holds, so the plans queued behind it wait too.
  auto holder = state::OpenStateStore(dir_ + "/state.db");
  ASSERT_TRUE(holder.ok());
  auto lock = (*holder)->AcquireLock("m-z", CurrentIdentity(), "test", 3600);
  ASSERT_TRUE(lock.ok()) << lock.error().message;
  RawResponse stuck =
      Call("POST", "/api/v1/environments/m-z/runs", admin, "{\"action\":\"apply\"}");
  ASSERT_EQ(stuck.status, 202) << stuck.body;
  WaitRun("m-z", "planning", Parse(stuck).Find("id")->as_int());
  auto fresh_run = [&] {
    RawResponse r = Call("POST", "/api/v1/environments/m-z/runs", admin, "{\"action\":\"plan\"}");
    EXPECT_EQ(r.status, 202) << r.body;
    const value::Value run = Parse(r);
    const value::Value* id = run.Find("id");
    return id != nullptr && id->is_int() ? std::to_string(id->as_int()) : std::string("0");
  };

  struct Case {
    std::string method, target, body;
    // Expected status for: viewer, editor, admin, a token for other environments.
    int viewer, editor, admin, other;
    bool fresh_run = false;    // target's "{id}" is a new run
    bool fresh_token = false;  // target's "{token}" is a new token
  };
  const std::string run = "/api/v1/runs/" + std::to_string(planned.id);
  const std::vector<Case> cases = {
      {"GET", "/api/v1/openapi.json", "", 200, 200, 200, 200},
      {"GET", "/api/v1/environments", "", 200, 200, 200, 200},
      {"GET", "/api/v1/environments/production", "", 200, 200, 200, 403},
      {"GET", "/api/v1/environments/m-x/resources", "", 200, 200, 200, 403},
      {"GET", "/api/v1/environments/production/resources/file.file/app", "", 200, 200, 200, 403},
      {"GET", "/api/v1/environments/production/runs", "", 200, 200, 200, 403},
      {"GET", "/api/v1/environments/production/history", "", 200, 200, 200, 403},
      {"GET", "/api/v1/environments/production/history/" + apply_id, "", 200, 200, 200, 403},
      {"GET", "/api/v1/environments/production/drift", "", 200, 200, 200, 403},
      {"GET", "/api/v1/environments/production/drift/timeline", "", 200, 200, 200, 403},
      {"POST", "/api/v1/environments/production/drift/check", "", 403, 200, 200, 403},
      {"GET", run, "", 200, 200, 200, 403},
      {"GET", "/api/v1/audit", "", 403, 403, 200, 403},
      {"GET", "/api/v1/events", "", 200, 200, 200, 200},  // the JSON page; a glob filters it
      {"GET", "/api/v1/tokens", "", 403, 403, 200, 403},
      {"POST", "/api/v1/tokens", "{\"role\":\"viewer\"}", 403, 403, 201, 403},
      {"DELETE", "/api/v1/tokens/{token}", "", 403, 403, 200, 403, false, true},
      {"GET", "/api/v1/environments/nope", "", 404, 404, 404, 403},
      {"GET", "/api/v1/environments/nope/runs", "", 404, 404, 404, 403},
      {"POST", "/api/v1/environments/nope/runs", "{\"action\":\"plan\"}", 403, 404, 404, 403},
      {"GET", "/api/v1/runs/999999", "", 404, 404, 404, 404},
      {"POST", "/api/v1/environments/m-x/runs", "{\"action\":\"plan\"}", 403, 202, 202, 403},
      {"POST", "/api/v1/environments/m-x/runs", "{\"action\":\"apply\"}", 403, 202, 202, 403},
      {"POST", "/api/v1/environments/production/runs", "{\"action\":\"apply\"}", 403, 403, 202,
       403},
      {"POST", "/api/v1/environments/production/runs", "{\"action\":\"destroy\"}", 403, 403, 202,
       403},
      {"POST", "/api/v1/environments/m-y/runs", "{\"action\":\"destroy\"}", 403, 202, 202, 403},
      {"POST", "/api/v1/runs/{id}/cancel", "", 403, 202, 202, 403, true},
      // A queued run awaits no approval: whoever may decide is let through and told so (409).
      {"POST", "/api/v1/runs/{id}/approve", "", 403, 409, 409, 403, true},
      {"POST", "/api/v1/runs/{id}/reject", "{\"comment\":\"no\"}", 403, 409, 409, 403, true},
      // m-x holds no lock: the admin is let through and told so (409).
      {"POST", "/api/v1/environments/m-x/unlock", "{\"lock\":1}", 403, 403, 409, 403},
  };
  // Every route that needs a token is in the matrix: a new one cannot be left out.
  std::set<std::string> covered;
  for (const Case& c : cases) covered.insert(RouteOf(c.method, c.target));
  for (const std::string& route : routes_) {
    // No token: the probes and /metrics are open, the webhook is signed instead (hooks_test),
    // the session routes check a token in the body or a cookie (BrowserSessions... below).
    if (route == "GET /livez" || route == "GET /readyz" || route == "GET /metrics" ||
        route == "POST /api/v1/hooks/git" || route.ends_with(" /api/v1/session"))
      continue;
    EXPECT_EQ(covered.count(route), 1u) << route << " is not in the matrix";
  }
  std::vector<std::string> refused_ids;
  for (const Case& c : cases) {
    const std::vector<std::pair<std::string, int>> tokens = {{"", 401},          {revoked, 401},
                                                             {viewer, c.viewer}, {editor, c.editor},
                                                             {admin, c.admin},   {other, c.other}};
    for (const auto& [token, want] : tokens) {
      std::string target = c.target;
      if (c.fresh_run) target.replace(target.find("{id}"), 4, fresh_run());
      if (c.fresh_token) {
        static int tokens = 0;
        const std::string name = "doomed" + std::to_string(++tokens);
        Token(name, "viewer");
        target = "/api/v1/tokens/" + name;
      }
      RawResponse r = Call(c.method, target, token, c.body);
      const std::string who = token.empty()      ? "no token"
                              : token == revoked ? "revoked"
                              : token == viewer  ? "viewer"
                              : token == editor  ? "editor"
                              : token == admin   ? "admin"
                                                 : "other";
      EXPECT_EQ(r.status, want) << c.method << " " << target << " as " << who << ": " << r.body;
      if (r.status >= 400) {
        EXPECT_EQ(EnvelopeCode(r),
                  r.status == 401   ? "unauthorized"
                  : r.status == 403 ? "forbidden"
                  : r.status == 409 ? (target.find("/api/v1/runs/") == 0 ? "not_awaiting_approval"
                                                                         : "lock_conflict")
                                    : "not_found")
            << r.body;
        if (r.status == 401 || r.status == 403) refused_ids.push_back(r.Header("x-request-id"));
      }
    }
  }
  // A token for other environments lists none of these.
  value::Value listed = Parse(Call("GET", "/api/v1/environments", other));
  ASSERT_NE(listed.Find("items"), nullptr);
  EXPECT_TRUE(listed.Find("items")->as_list().empty()) << value::ToJson(listed);
  // Every refusal is in the audit log, with its request id.
  std::set<std::string> audited;
  int64_t cursor = 0;
  do {
    auto page = store_->ListAudit({}, cursor, 500);
    ASSERT_TRUE(page.ok());
    for (const auto& e : page->items) {
      if (e.result == "refused") audited.insert(e.request_id);
    }
    cursor = page->next_cursor;
  } while (cursor != 0);
  for (const std::string& id : refused_ids) EXPECT_EQ(audited.count(id), 1u) << id;
  // What was allowed and mutating is audited too: run.create and run.cancel by the editor.
  state::AuditFilter by_editor;
  by_editor.who = "editor1";
  auto mine = store_->ListAudit(by_editor, 0, 500);
  ASSERT_TRUE(mine.ok());
  std::set<std::string> actions;
  for (const auto& e : mine->items) {
    if (e.result == "allowed") actions.insert(e.action);
  }
  EXPECT_EQ(actions, (std::set<std::string>{"run.cancel", "run.create"}));
  ASSERT_TRUE((*holder)->ReleaseLock(*lock).ok());
}

TEST_F(RestTest, AnAdminReleasesAStuckLockByItsIdAndTheHolderIsFenced) {
  StartServer();
  const std::string admin = Token("admin1", "admin");
  auto holder = state::OpenStateStore(dir_ + "/state.db");
  ASSERT_TRUE(holder.ok());
  auto lock = (*holder)->AcquireLock("m-y", CurrentIdentity(), "apply", 0, 3600);
  ASSERT_TRUE(lock.ok()) << lock.error().message;
  value::Value shown = Parse(Call("GET", "/api/v1/environments/m-y", admin));
  const value::Value* held = shown.Find("lock");
  ASSERT_TRUE(held != nullptr && held->is_object()) << value::ToJson(shown);
  EXPECT_EQ(held->Find("id")->as_int(), lock->token);
  EXPECT_EQ(held->Find("operation")->as_string(), "apply");
  const std::string id = std::to_string(lock->token);

  RawResponse wrong = Call("POST", "/api/v1/environments/m-y/unlock", admin,
                           "{\"lock\":" + std::to_string(lock->token + 1) + "}");
  EXPECT_EQ(wrong.status, 409) << wrong.body;
  EXPECT_NE(wrong.body.find("not by lock " + std::to_string(lock->token + 1)), std::string::npos)
      << wrong.body;
  for (const char* bad : {"{}", "{\"lock\":\"1\"}", "{\"lock\":0}", "{\"lock\":1,\"x\":2}"}) {
    RawResponse r = Call("POST", "/api/v1/environments/m-y/unlock", admin, bad);
    EXPECT_EQ(r.status, 400) << bad << ": " << r.body;
  }
  RawResponse released =
      Call("POST", "/api/v1/environments/m-y/unlock", admin, "{\"lock\":" + id + "}");
  ASSERT_EQ(released.status, 200) << released.body;
  EXPECT_EQ(Parse(released).Find("released")->Find("id")->as_int(), lock->token);
  // The holder is fenced: its lease cannot be renewed, and the lock is gone.
  EXPECT_FALSE((*holder)->RenewLock(*lock).ok());
  shown = Parse(Call("GET", "/api/v1/environments/m-y", admin));
  EXPECT_TRUE(shown.Find("lock")->is_null()) << value::ToJson(shown);
  // Both attempts are in the audit log, by the admin, with their request ids.
  state::AuditFilter filter;
  filter.who = "admin1";
  auto entries = store_->ListAudit(filter, 0, 100);
  ASSERT_TRUE(entries.ok());
  std::vector<std::string> results;
  for (const state::AuditEntry& e : entries->items) {
    if (e.action != "lock.break") continue;
    results.push_back(e.result);
    EXPECT_EQ(e.environment, "m-y");
    EXPECT_FALSE(e.request_id.empty());
  }
  EXPECT_EQ(results, (std::vector<std::string>{"allowed", "refused"}));
}

TEST_F(RestTest, RunsThroughTheApiAndShowThemWithTheirPlan) {
  StartServer();
  const std::string editor = Token("editor1", "editor");
  RawResponse r = Call("POST", "/api/v1/environments/m-x/runs", editor, "{\"action\":\"apply\"}");
  ASSERT_EQ(r.status, 202) << r.body;
  value::Value run = Parse(r);
  ASSERT_NE(run.Find("id"), nullptr);
  const int64_t id = run.Find("id")->as_int();
  EXPECT_EQ(r.Header("location"), "/api/v1/runs/" + std::to_string(id));
  EXPECT_EQ(run.Find("author")->as_string(), "editor1");
  EXPECT_EQ(run.Find("commit")->as_string(), head_);
  WaitRun("m-x", "applied", id);
  value::Value shown = Parse(Call("GET", "/api/v1/runs/" + std::to_string(id), editor));
  EXPECT_EQ(shown.Find("status")->as_string(), "applied") << value::ToJson(shown);
  EXPECT_NE(shown.Find("plan_text")->as_string().find("file.file/app"), std::string::npos)
      << value::ToJson(shown);
  EXPECT_TRUE(shown.Find("plan")->is_object()) << value::ToJson(shown);
  ASSERT_NE(shown.FindPath("plan.steps"), nullptr) << value::ToJson(shown);
  EXPECT_TRUE(shown.Find("approvals")->is_list());
  EXPECT_EQ(shown.Find("approvals_required")->as_int(), 0) << value::ToJson(shown);
  // The protected environment's run shows the approval it needed and got.
  state::RunFilter protected_runs;
  protected_runs.environment = "production";
  auto production = store_->ListRuns(protected_runs, 0, 1);
  ASSERT_TRUE(production.ok() && !production->items.empty());
  value::Value approved =
      Parse(Call("GET", "/api/v1/runs/" + std::to_string(production->items.front().id), editor));
  EXPECT_EQ(approved.Find("approvals_required")->as_int(), 1) << value::ToJson(approved);
  EXPECT_EQ(approved.Find("approvals")->as_list().size(), 1u) << value::ToJson(approved);
  auto live = ReadFileToString(dir_ + "/root/m-x/app.conf");
  ASSERT_TRUE(live.ok());
  EXPECT_EQ(*live, "1");
  // The environment shows what was applied, its resources their last change.
  value::Value env = Parse(Call("GET", "/api/v1/environments/m-x", editor));
  EXPECT_EQ(env.Find("applied_commit")->as_string(), head_) << value::ToJson(env);
  EXPECT_EQ(env.Find("branch")->as_string(), "manual/x");
  EXPECT_EQ(env.Find("sync")->as_string(), "manual");
  EXPECT_EQ(env.Find("commits_behind")->as_int(), 0);
  EXPECT_EQ(env.Find("drift_status")->as_string(), "in_sync");
  EXPECT_EQ(env.FindPath("last_run.id")->as_int(), id);
  // Two commits on the branch: after a fetch, the environment is two commits behind.
  Git("checkout -q manual/x");
  Write("app.yaml",
        "kind: file.file\nname: app\ntarget: host\nspec: {path: app.conf, content: \"2\"}\n");
  Git("commit -q -am two");
  Write("other.txt", "x");
  Git("add -A");
  Git("commit -q -m three");
  const std::string three = Git("rev-parse HEAD");
  Git("checkout -q main");
  const uint64_t fetched = controller_->fetches();
  controller_->TriggerFetch();
  auto deadline = std::chrono::steady_clock::now() + kPatience;
  while (controller_->fetches() == fetched && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
  }
  env = Parse(Call("GET", "/api/v1/environments/m-x", editor));
  EXPECT_EQ(env.Find("branch_head")->as_string(), three) << value::ToJson(env);
  EXPECT_EQ(env.Find("applied_commit")->as_string(), head_);
  EXPECT_EQ(env.Find("commits_behind")->as_int(), 2) << value::ToJson(env);
  value::Value resources = Parse(Call("GET", "/api/v1/environments/m-x/resources", editor));
  ASSERT_EQ(resources.Find("items")->as_list().size(), 1u) << value::ToJson(resources);
  const value::Value& app = resources.Find("items")->as_list()[0];
  EXPECT_EQ(app.Find("address")->as_string(), "file.file/app");
  EXPECT_EQ(app.FindPath("last_change.action")->as_string(), "create") << value::ToJson(app);
  EXPECT_NE(app.FindPath("last_change.diff")->as_string().find("1"), std::string::npos);
  // A finished run cannot be canceled: 409 in the envelope.
  RawResponse cancel = Call("POST", "/api/v1/runs/" + std::to_string(id) + "/cancel", editor);
  EXPECT_EQ(cancel.status, 409) << cancel.body;
  EXPECT_EQ(EnvelopeCode(cancel), "conflict");
  // A hand edit opens a drift that the drift routes show once a check records it.
  auto observed = store_->ObserveDrift("m-x", {{"file.file/app", "-1\n+2\n", ""}}, {}, "", 100);
  ASSERT_TRUE(observed.ok());
  value::Value open = Parse(Call("GET", "/api/v1/environments/m-x/drift", editor));
  ASSERT_EQ(open.Find("items")->as_list().size(), 1u) << value::ToJson(open);
  EXPECT_EQ(open.Find("items")->as_list()[0].Find("status")->as_string(), "open");
  ASSERT_TRUE(store_->ObserveDrift("m-x", {}, {"file.file/app"}, "undone", 200).ok());
  EXPECT_TRUE(Parse(Call("GET", "/api/v1/environments/m-x/drift", editor))
                  .Find("items")
                  ->as_list()
                  .empty());
  value::Value timeline = Parse(Call("GET", "/api/v1/environments/m-x/drift/timeline", editor));
  ASSERT_EQ(timeline.Find("items")->as_list().size(), 1u);
  EXPECT_EQ(timeline.Find("items")->as_list()[0].Find("resolution")->as_string(), "undone");
}

TEST_F(RestTest, BeforeTheFirstFetchAnEnvironmentRouteSaysNotReadyRatherThanForbidden) {
  StartServer(10s, false);
  const std::string editor = Token("editor1", "editor");
  // m-x is unprotected, but nothing is mapped yet: not a refusal (403), a "not yet" (503).
  RawResponse r = Call("POST", "/api/v1/environments/m-x/runs", editor, "{\"action\":\"apply\"}");
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_EQ(EnvelopeCode(r), "not_ready") << r.body;
  EXPECT_NE(r.body.find("GET /readyz"), std::string::npos) << r.body;
  EXPECT_EQ(Call("GET", "/readyz", "").status, 503);
  // A token is still checked first: none is 401, as always.
  EXPECT_EQ(Call("GET", "/api/v1/environments/m-x", "").status, 401);
}

TEST_F(RestTest, AnAdminManagesTokensThroughTheApi) {
  StartServer();
  const std::string admin = Token("admin1", "admin");
  RawResponse made = Call("POST", "/api/v1/tokens", admin,
                          "{\"role\":\"editor\",\"name\":\"ci\",\"envs\":\"m-*\","
                          "\"ttl\":\"1h\"}");
  ASSERT_EQ(made.status, 201) << made.body;
  value::Value token = Parse(made);
  const std::string text = token.Find("token")->as_string();
  EXPECT_EQ(token.Find("envs")->as_string(), "m-*");
  EXPECT_EQ(token.Find("created_by")->as_string(), "admin1");
  EXPECT_FALSE(token.Find("expires_at")->is_null());
  // The new token works, within its glob.
  EXPECT_EQ(Call("GET", "/api/v1/environments/m-x", text).status, 200);
  EXPECT_EQ(Call("GET", "/api/v1/environments/production", text).status, 403);
  // The list never shows a secret or a hash.
  RawResponse listed = Call("GET", "/api/v1/tokens", admin);
  ASSERT_EQ(listed.status, 200);
  EXPECT_EQ(listed.body.find(text), std::string::npos);
  auto stored = store_->ListTokens();
  ASSERT_TRUE(stored.ok());
  for (const auto& t : *stored) EXPECT_EQ(listed.body.find(t.hash), std::string::npos);
  // Bad requests name the field.
  RawResponse bad = Call("POST", "/api/v1/tokens", admin, "{\"role\":\"boss\"}");
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(Message(bad).find("field 'role'"), std::string::npos) << bad.body;
  bad = Call("POST", "/api/v1/tokens", admin, "{\"role\":\"viewer\",\"ttl\":\"soon\"}");
  EXPECT_NE(Message(bad).find("field 'ttl'"), std::string::npos) << bad.body;
  bad = Call("POST", "/api/v1/tokens", admin, "{\"role\":\"viewer\",\"ttl\":3}");
  EXPECT_EQ(EnvelopeCode(bad), "bad_field");
  bad = Call("POST", "/api/v1/tokens", admin, "{\"role\":\"viewer\",\"secret\":\"x\"}");
  EXPECT_EQ(EnvelopeCode(bad), "unknown_field");
  // Revoked, it is refused at once; revoking it again is a 404.
  EXPECT_EQ(Call("DELETE", "/api/v1/tokens/ci", admin).status, 200);
  EXPECT_EQ(Call("GET", "/api/v1/environments/m-x", text).status, 401);
  EXPECT_EQ(Call("DELETE", "/api/v1/tokens/ci", admin).status, 404);
  // Both are in the audit log, by the admin, with their request ids.
  state::AuditFilter by_admin;
  by_admin.who = "admin1";
  auto entries = store_->ListAudit(by_admin, 0, 100);
  ASSERT_TRUE(entries.ok());
  std::set<std::string> actions;
  for (const auto& e : entries->items) {
    if (!e.request_id.empty()) actions.insert(e.action + " " + e.subject);
  }
  EXPECT_EQ(actions.count("token.create ci"), 1u);
  EXPECT_EQ(actions.count("token.revoke ci"), 1u);
}

// The environment list is served from rows computed once per event-log id and fetch: an event
// shows a change at once, and a change that appends no event shows within a second.
TEST_F(RestTest, TheEnvironmentListFollowsEventsAndWritesWithoutThem) {
  StartServer();
  const std::string viewer = Token("viewer1", "viewer");
  auto open_drift = [&]() -> int64_t {
    value::Value listed = Parse(Call("GET", "/api/v1/environments", viewer));
    for (const value::Value& e : listed.Find("items")->as_list()) {
      if (e.Find("name")->as_string() == "m-x") return e.Find("open_drift")->as_int();
    }
    return -1;
  };
  ASSERT_EQ(open_drift(), 0);
  ASSERT_TRUE(store_->ObserveDrift("m-x", {{"file.file/app", "-1\n+2\n", ""}}, {}, "", 100).ok());
  state::EventRecord event;
  event.type = "drift.detected";
  event.environment = "m-x";
  event.payload_json = "{}";
  event.time = 100;
  ASSERT_TRUE(store_->AppendEvent(event, {}).ok());
  EXPECT_EQ(open_drift(), 1);  // the event moved the key: computed again at once
  // Resolved without an event (as `driftless drift` run by hand does): seen within a second.
  ASSERT_TRUE(store_->ObserveDrift("m-x", {}, {"file.file/app"}, "undone", 200).ok());
  auto deadline = std::chrono::steady_clock::now() + kPatience;
  while (open_drift() != 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(open_drift(), 0);
}

TEST_F(RestTest, ListsArePagedWithCursors) {
  StartServer();
  const std::string admin = Token("admin1", "admin");
  for (int i = 0; i < 4; ++i) Token("t" + std::to_string(i), "viewer");
  for (int i = 0; i < 5; ++i) {
    ASSERT_EQ(Call("POST", "/api/v1/environments/m-x/runs", admin, "{\"action\":\"plan\"}").status,
              202);
  }
  // Every route that lists: pages of 2 until next_cursor is null, never a repeat.
  for (const std::string base :
       {"/api/v1/environments/m-x/runs", "/api/v1/audit", "/api/v1/environments", "/api/v1/tokens",
        "/api/v1/environments/production/history", "/api/v1/environments/production/resources",
        "/api/v1/environments/production/drift/timeline"}) {
    std::set<std::string> seen;
    std::string cursor;
    int pages = 0;
    do {
      std::string target = base + "?limit=2" + (cursor.empty() ? "" : "&cursor=" + cursor);
      RawResponse r = Call("GET", target, admin);
      ASSERT_EQ(r.status, 200) << target << ": " << r.body;
      value::Value page = Parse(r);
      ASSERT_LE(page.Find("items")->as_list().size(), 2u);
      for (const auto& item : page.Find("items")->as_list()) {
        const value::Value* key = item.Find("id") != nullptr ? item.Find("id") : item.Find("name");
        if (item.Find("address") != nullptr) key = item.Find("address");
        EXPECT_TRUE(seen.insert(key->ScalarText()).second) << target << " repeats";
      }
      const value::Value* next = page.Find("next_cursor");
      ASSERT_NE(next, nullptr);
      cursor = next->is_null() ? "" : next->as_string();
      ASSERT_LT(++pages, 100);
    } while (!cursor.empty());
    if (base == "/api/v1/environments/m-x/runs") {
      EXPECT_GE(seen.size(), 6u);
    }
    if (base == "/api/v1/environments") {
      EXPECT_EQ(seen, (std::set<std::string>{"m-x", "m-y", "m-z", "production"}));
    }
  }
  RawResponse bad = Call("GET", "/api/v1/environments/m-x/runs?limit=0", admin);
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(EnvelopeCode(bad), "bad_limit");
  bad = Call("GET", "/api/v1/audit?cursor=abc", admin);
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(EnvelopeCode(bad), "bad_cursor");
}

TEST_F(RestTest, BadInputGetsAClearEnvelopeWhileOthersAreServed) {
  StartServer(/*header_timeout=*/5s);
  const std::string admin = Token("admin1", "admin");
  // A slow client sends half a header and stays; everyone else is served meanwhile.
  auto slow = RawClient::ConnectTcp(server_->tcp_port());
  ASSERT_TRUE(slow.ok());
  ASSERT_TRUE(slow->Send("GET /api/v1/environments HTTP/1.1\r\nHost: x\r\nAuthori"));
  struct Bad {
    std::string method, target, body;
    int status;
    std::string code, message_has;
  };
  const std::string runs = "/api/v1/environments/m-x/runs";
  const std::vector<Bad> cases = {
      {"POST", runs, "{\"action\": \"plan\",\n  \"x\": }", 400, "malformed_json", "body:2:"},
      {"POST", runs, "", 400, "malformed_json", "empty"},
      {"POST", runs, "[1]", 400, "bad_body", "object"},
      {"POST", runs, "{\"action\":\"plan\",\"force\":true}", 400, "unknown_field", "'force'"},
      {"POST", runs, "{\"action\":\"sync\"}", 400, "bad_action", "sync"},
      {"POST", runs, "{}", 400, "bad_action", "action"},
      {"POST", "/api/v1/runs/1/cancel", "{\"why\":1}", 400, "unknown_field", "'why'"},
      {"POST", runs, std::string(2 * 1024 * 1024, ' '), 413, "payload_too_large", ""},
      {"GET", "/api/v1/nothing-here", "", 404, "not_found", ""},
      {"GET", "/api/v1/environments/nope", "", 404, "not_found", "nope"},
      {"GET", "/api/v1/environments/nope/runs", "", 404, "not_found", "nope"},
      {"POST", "/api/v1/environments/nope/runs", "{\"action\":\"plan\"}", 404, "not_found", ""},
      {"GET", "/api/v1/environments/production/resources/file.file/nope", "", 404, "not_found", ""},
      {"GET", "/api/v1/runs/999999", "", 404, "not_found", "999999"},
      {"GET", "/api/v1/runs/abc", "", 400, "bad_run_id", ""},
      {"GET", "/api/v1/environments/..%2F..%2Fetc", "", 400, "invalid_parameter", ""},
      {"GET", "/api/v1/environments/%2e%2e", "", 400, "invalid_parameter", ""},
      {"GET", "/api/v1/environments/a%22b", "", 400, "invalid_parameter", ""},
      {"GET", "/api/v1/environments/a%27b", "", 400, "invalid_parameter", ""},
      {"GET", "/api/v1/environments/a%00b", "", 400, "invalid_parameter", ""},
      {"GET", "/api/v1/environments/a%ZZ", "", 400, "invalid_parameter", ""},
      // Unencoded, ".." makes another number of segments: no route has that shape.
      {"GET", "/api/v1/environments/../etc", "", 404, "not_found", "no route"},
      {"GET", "/api/v1/environments/a\"b", "", 400, "", ""},
      {"GET", "/api/v1/environments/production/resources/file.file/../../x", "", 404, "not_found",
       "no route"},
      {"GET", "/api/v1/environments/production/resources/file.file/..%2Fapp", "", 400,
       "invalid_parameter", ""},
      {"GET", "/api/v1/environments/production/resources/file.file/a%00", "", 400,
       "invalid_parameter", ""},
      {"GET", "/api/v1/environments/production/resources/..%2F/app", "", 400, "invalid_parameter",
       ""},
      {"DELETE", "/api/v1/environments/production", "", 405, "method_not_allowed", ""},
  };
  for (const Bad& c : cases) {
    RawResponse r = Call(c.method, c.target, admin, c.body);
    EXPECT_EQ(r.status, c.status) << c.method << " " << c.target << ": " << r.body;
    std::string code = EnvelopeCode(r);
    EXPECT_EQ(code.find("envelope"), std::string::npos) << c.target << ": " << code;
    if (!c.code.empty()) {
      EXPECT_EQ(code, c.code) << c.target;
    }
    EXPECT_NE(Message(r).find(c.message_has), std::string::npos) << c.target << ": " << Message(r);
  }
  // The slow client's connection was open all along; it ends with a 408, in the envelope.
  std::optional<RawResponse> timed_out = slow->ReadResponse(kPatience);
  ASSERT_TRUE(timed_out.has_value());
  EXPECT_EQ(timed_out->status, 408);
  EXPECT_EQ(EnvelopeCode(*timed_out), "request_timeout");
  // Nothing above queued a run.
  state::RunFilter f;
  f.environment = "m-x";
  auto listed = store_->ListRuns(f, 0, 100);
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(listed->items.size(), 1u);
}

// Checks an OpenAPI document (argument 1) with JSON::Validator, then every response listed in
// the file of argument 2 ("METHOD PATTERN STATUS FILE" lines) against it; prints "valid" or the
// errors.
constexpr char kCheckScript[] = R"perl(
use strict; use warnings;
use JSON::Validator::Schema::OpenAPIv3;
use Mojo::JSON qw(decode_json);
use Mojo::File qw(path);
my $s = JSON::Validator::Schema::OpenAPIv3->new($ARGV[0]);
my @e = map { "document: $_" } @{$s->errors};
for my $line (@e ? () : split /\n/, path($ARGV[1])->slurp) {
  my ($method, $route, $status, $file) = split / /, $line;
  my $body = decode_json(path($file)->slurp);
  push @e, map { "$method $route $status: $_" } $s->validate_response(
    [lc $method, $route, $status],
    {body => sub { return {exists => 1, value => $body, content_type => 'application/json'} }});
}
print "$_\n" for @e;
print "valid\n" unless @e;
)perl";

// The right an operation of the OpenAPI document names ("Right: `plan`." in its description),
// "" when it names none.
std::string DocumentedRight(const value::Value& op) {
  const value::Value* d = op.Find("description");
  if (d == nullptr || !d->is_string()) return "";
  const std::string& text = d->as_string();
  const size_t at = text.rfind("Right: `");
  if (at == std::string::npos) return "";
  const size_t end = text.find('`', at + 8);
  return end == std::string::npos ? "" : text.substr(at + 8, end - at - 8);
}

// Every operation of the OpenAPI document (so that a new route cannot be left out) against a
// token holding each single right (an admin narrowed by --rights), for every environment and
// for other environments only, and against an expired token: a right other than the route's is
// refused (403), the route's own is let through to the handler (anything but 401 and 403) unless
// the environment is outside the token's glob or the route manages tokens, which needs `**`.
// The cookie's value in a Set-Cookie header ("driftless_session=ID; HttpOnly; ...").
std::string CookieValueOf(const std::string& set_cookie) {
  const std::string prefix = "driftless_session=";
  if (set_cookie.rfind(prefix, 0) != 0) return "";
  return set_cookie.substr(prefix.size(), set_cookie.find(';') - prefix.size());
}

TEST_F(RestTest, BrowserSessionsSignInUseTheCookieAndRefuseForgedRequests) {
  StartServer();
  const std::string editor = Token("editor1", "editor");

  // Sign in.
  RawResponse in = CallWith("POST", "/api/v1/session", "", "{\"token\":\"" + editor + "\"}");
  ASSERT_EQ(in.status, 200) << in.body;
  const std::string set_cookie = in.Header("set-cookie");
  EXPECT_NE(set_cookie.find("; HttpOnly; SameSite=Strict; Path=/; Max-Age=43200"),
            std::string::npos)
      << set_cookie;
  EXPECT_EQ(set_cookie.find("Secure"), std::string::npos) << set_cookie;
  const std::string id = CookieValueOf(set_cookie);
  ASSERT_EQ(id.size(), 43u) << set_cookie;
  value::Value session = Parse(in);
  EXPECT_EQ(session.Find("name")->as_string(), "editor1");
  EXPECT_EQ(session.Find("role")->as_string(), "editor");
  EXPECT_EQ(session.Find("scope")->as_string(), "**");
  EXPECT_EQ(value::ToJson(*session.Find("rights")),
            "[\"read\",\"plan\",\"approve\",\"apply\",\"destroy\"]");
  const std::string csrf = session.Find("csrf")->as_string();
  EXPECT_EQ(csrf.size(), 43u);
  EXPECT_TRUE(session.Find("expires_at")->is_int());
  // Only the id's hash is kept.
  Result<std::string> hash = auth::HashSessionId(id);
  ASSERT_TRUE(hash.ok());
  auto kept = store_->FindSessionByHash(*hash);
  ASSERT_TRUE(kept.ok() && kept->has_value());
  EXPECT_NE((*kept)->hash, id);
  // Behind a TLS proxy the cookie is Secure.
  RawResponse tls = CallWith("POST", "/api/v1/session", "X-Forwarded-Proto: https\r\n",
                             "{\"token\":\"" + editor + "\"}");
  ASSERT_EQ(tls.status, 200) << tls.body;
  EXPECT_NE(tls.Header("set-cookie").find("; Secure"), std::string::npos);

  const std::string cookie = "Cookie: other=1; driftless_session=" + id + "; theme=dark\r\n";
  RawResponse again = CallWith("GET", "/api/v1/session", cookie);
  ASSERT_EQ(again.status, 200) << again.body;
  EXPECT_EQ(Parse(again).Find("csrf")->as_string(), csrf);
  EXPECT_EQ(CallWith("GET", "/api/v1/environments", cookie).status, 200);
  EXPECT_EQ(CallWith("GET", "/api/v1/events?after=0", cookie).status, 200);
  EXPECT_EQ(CallWith("GET", "/api/v1/environments/m-x/runs", cookie).status, 200);

  // Forged changes: no CSRF header, a wrong one, a cross-site Origin.
  const std::string plan = "{\"action\":\"plan\"}";
  const std::string target = "/api/v1/environments/m-x/runs";
  for (const std::string& extra : {std::string(""), std::string("X-CSRF-Token: wrong\r\n"),
                                   "X-CSRF-Token: " + csrf + "\r\nOrigin: http://evil.example\r\n",
                                   "X-CSRF-Token: " + csrf + "x\r\n"}) {
    RawResponse forged = CallWith("POST", target, cookie + extra, plan);
    EXPECT_EQ(forged.status, 403) << extra << forged.body;
    EXPECT_EQ(EnvelopeCode(forged), "csrf") << extra;
  }
  // The real thing: the secret, and the server's own origin (or none).
  RawResponse queued =
      CallWith("POST", target, cookie + "X-CSRF-Token: " + csrf + "\r\nOrigin: http://x\r\n", plan);
  EXPECT_EQ(queued.status, 202) << queued.body;
  // Bearer requests are not affected, and a bearer header wins over a cookie.
  EXPECT_EQ(Call("POST", target, editor, plan).status, 202);
  EXPECT_EQ(
      CallWith("POST", target,
               "Authorization: Bearer " + editor + "\r\nCookie: driftless_session=bad\r\n", plan)
          .status,
      202);
  // The cookie has its token's rights: an editor cannot manage tokens.
  EXPECT_EQ(CallWith("GET", "/api/v1/tokens", cookie).status, 403);

  // Refusals are audited, with their reason.
  state::AuditFilter filter;
  auto audit = store_->ListAudit(filter, 0, 200);
  ASSERT_TRUE(audit.ok());
  int csrf_refusals = 0, sign_ins = 0;
  for (const state::AuditEntry& e : audit->items) {
    if (e.result == "refused" && e.reason.rfind("csrf: ", 0) == 0) {
      ++csrf_refusals;
      EXPECT_EQ(e.who, "editor1");
      EXPECT_EQ(e.environment, "m-x");
    }
    if (e.action == "session.create" && e.result == "allowed") ++sign_ins;
  }
  EXPECT_EQ(csrf_refusals, 4);
  EXPECT_EQ(sign_ins, 2);

  // Bad sign-ins: a wrong token (401, as a bearer refusal says), bad bodies (400), a cross-site
  // Origin (403 csrf); each answered while other clients are served.
  RawResponse wrong = CallWith("POST", "/api/v1/session", "",
                               "{\"token\":\"dl_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}");
  EXPECT_EQ(wrong.status, 401);
  EXPECT_EQ(EnvelopeCode(wrong), "unauthorized");
  EXPECT_EQ(Message(wrong), "token refused: unknown token");
  EXPECT_EQ(CallWith("POST", "/api/v1/session", "", "{\"token\":\"nope\"}").status, 401);
  EXPECT_EQ(EnvelopeCode(CallWith("POST", "/api/v1/session", "", "{\"token\":1}")), "bad_field");
  EXPECT_EQ(EnvelopeCode(CallWith("POST", "/api/v1/session", "", "{\"tok\":\"x\"}")),
            "unknown_field");
  EXPECT_EQ(EnvelopeCode(CallWith("POST", "/api/v1/session", "", "{\"token\":")), "malformed_json");
  RawResponse cross = CallWith("POST", "/api/v1/session", "Origin: http://evil.example\r\n",
                               "{\"token\":\"" + editor + "\"}");
  EXPECT_EQ(cross.status, 403);
  EXPECT_EQ(EnvelopeCode(cross), "csrf");
  audit = store_->ListAudit(filter, 0, 200);
  ASSERT_TRUE(audit.ok());
  int refused_sign_ins = 0;
  for (const state::AuditEntry& e : audit->items) {
    refused_sign_ins += e.action == "session.create" && e.result == "refused";
  }
  EXPECT_EQ(refused_sign_ins, 3);

  // Malformed cookie headers: 401, never a crash, and the others are still served.
  for (const std::string& bad :
       {std::string("Cookie: driftless_session=abc\r\n"),
        std::string("Cookie: driftless_session=\r\n"), std::string("Cookie: ;;;=;=\r\n"),
        "Cookie: driftless_session=" + id + "; driftless_session=" + id + "\r\n",
        "Cookie: driftless_session=" + std::string(43, 'A') + "\r\n",
        "Cookie: driftless_session=" + std::string(5000, 'A') + "\r\n"}) {
    RawResponse r = CallWith("GET", "/api/v1/environments", bad);
    EXPECT_EQ(r.status, 401) << bad.substr(0, 80) << r.body;
    EXPECT_EQ(CallWith("GET", "/api/v1/session", bad).status, 401) << bad.substr(0, 80);
    EXPECT_EQ(CallWith("GET", "/api/v1/environments", cookie).status, 200);
  }

  // Another server on the same state takes the session (a restart, or a second replica).
  StorePool pool2(dir_ + "/state.db");
  ApiContext context2 = context_;
  context2.stores = &pool2;
  http::Router router2;
  ASSERT_TRUE(AddRoutes(router2, context2).ok());
  http::ServerOptions so2;
  so2.authenticator = MakeAuthenticator(context2);
  http::Server server2(std::move(router2), so2);
  ASSERT_TRUE(server2.Start().ok());
  EXPECT_EQ(CallWith("GET", "/api/v1/environments", cookie, "", server2.tcp_port()).status, 200);
  server2.Stop();

  // An expired session.
  std::string raw(32, '\x07');
  state::Session old;
  old.hash = Sha256Hex(raw);
  old.token_hash = (*kept)->token_hash;
  old.csrf = "c";
  old.created_at = 1000;
  old.expires_at = 2000;
  ASSERT_TRUE(store_->CreateSession(old).ok());
  RawResponse expired =
      CallWith("GET", "/api/v1/environments",
               "Cookie: driftless_session=" + auth::Base64UrlEncode(raw) + "\r\n");
  EXPECT_EQ(expired.status, 401);
  EXPECT_EQ(Message(expired), "the session expired; sign in again");

  // Signing out needs the secret, ends the session and clears the cookie.
  EXPECT_EQ(EnvelopeCode(CallWith("DELETE", "/api/v1/session", cookie)), "csrf");
  RawResponse out =
      CallWith("DELETE", "/api/v1/session", cookie + "X-CSRF-Token: " + csrf + "\r\n");
  ASSERT_EQ(out.status, 200) << out.body;
  EXPECT_NE(out.Header("set-cookie")
                .find("driftless_session=; HttpOnly; SameSite=Strict; Path=/; "
                      "Max-Age=0"),
            std::string::npos);
  EXPECT_EQ(CallWith("GET", "/api/v1/session", cookie).status, 401);
  EXPECT_EQ(CallWith("DELETE", "/api/v1/session", cookie).status, 200);

  // Revoking the token ends its sessions.
  RawResponse in2 = CallWith("POST", "/api/v1/session", "", "{\"token\":\"" + editor + "\"}");
  ASSERT_EQ(in2.status, 200);
  const std::string cookie2 =
      "Cookie: driftless_session=" + CookieValueOf(in2.Header("set-cookie")) + "\r\n";
  EXPECT_EQ(CallWith("GET", "/api/v1/environments", cookie2).status, 200);
  ASSERT_TRUE(auth::RevokeApiToken(*store_, "editor1", "test").ok());
  RawResponse gone = CallWith("GET", "/api/v1/environments", cookie2);
  EXPECT_EQ(gone.status, 401);
  // The revocation removed the session in the same transaction.
  EXPECT_EQ(Message(gone), "unknown or ended session; sign in again");
  EXPECT_EQ(CallWith("GET", "/api/v1/session", cookie2).status, 401);
}

// A session never outlives its token.
TEST_F(RestTest, ASessionEndsWhenItsTokenExpires) {
  StartServer();
  auth::TokenRequest r;
  r.name = "brief";
  r.role = "viewer";
  r.ttl_seconds = 600;
  r.created_by = "test";
  auto made = auth::CreateApiToken(*store_, r);
  ASSERT_TRUE(made.ok());
  RawResponse in = CallWith("POST", "/api/v1/session", "", "{\"token\":\"" + made->text + "\"}");
  ASSERT_EQ(in.status, 200) << in.body;
  EXPECT_EQ(Parse(in).Find("expires_at")->as_int(), made->record.expires_at);
  EXPECT_EQ(value::ToJson(*Parse(in).Find("rights")), "[\"read\"]");
  const std::string set_cookie = in.Header("set-cookie");
  const size_t at = set_cookie.find("Max-Age=");
  ASSERT_NE(at, std::string::npos);
  const int64_t max_age = std::stoll(set_cookie.substr(at + 8));
  EXPECT_GT(max_age, 0);
  EXPECT_LE(max_age, 600);
}

// A resource page: declared, applied and live side by side with the diffs, from the engine's own
// plan of that one resource.
TEST_F(RestTest, AResourceShowsDeclaredAppliedAndLiveWithTheDrift) {
  StartServer();
  const std::string viewer = Token("viewer1", "viewer");
  const std::string target = "/api/v1/environments/production/resources/file.file/app";
  RawResponse calm = Call("GET", target + "?live=true", viewer);
  ASSERT_EQ(calm.status, 200) << calm.body;
  value::Value v = Parse(calm);
  EXPECT_EQ(v.Find("drifted")->as_bool(), false) << calm.body;
  EXPECT_EQ(v.Find("commit")->as_string(), head_);
  EXPECT_EQ(v.Find("drift_diff")->as_string(), "");
  EXPECT_NE(v.Find("address"), nullptr);

  // A hand edit of the managed file.
  test::WriteIn(dir_ + "/root/production", "app.conf", "edited by hand\n");
  RawResponse drifted = Call("GET", target + "?live=true", viewer);
  ASSERT_EQ(drifted.status, 200) << drifted.body;
  v = Parse(drifted);
  EXPECT_EQ(v.Find("drifted")->as_bool(), true) << drifted.body;
  EXPECT_EQ(v.FindPath("declared.content")->as_string(), "1") << drifted.body;
  EXPECT_EQ(v.FindPath("applied.content")->as_string(), "1") << drifted.body;
  EXPECT_EQ(v.FindPath("live.content")->as_string(), "edited by hand\n") << drifted.body;
  EXPECT_NE(v.Find("drift_diff")->as_string().find("edited by hand"), std::string::npos)
      << drifted.body;
  // Without ?live the row is the state's alone, as before; bad input is a 400.
  RawResponse row = Call("GET", target, viewer);
  ASSERT_EQ(row.status, 200);
  EXPECT_EQ(Parse(row).Find("live"), nullptr);
  EXPECT_EQ(EnvelopeCode(Call("GET", target + "?live=maybe", viewer)), "bad_live");
  EXPECT_EQ(
      Call("GET", "/api/v1/environments/production/resources/file.file/nope?live=true", viewer)
          .status,
      404);
}

TEST_F(RestTest, RightsMatrixFromTheOpenApiDocument) {
  StartServer();
  const state::Run planned = WaitRun("m-x", "planned");
  auto applies = store_->ListApplies("production", 1);
  ASSERT_TRUE(applies.ok() && !applies->empty());
  auth::TokenRequest old;
  old.name = "expired1";
  old.role = "admin";
  old.ttl_seconds = 60;
  old.now = 1000;  // expired long ago
  old.created_by = "test";
  Result<auth::CreatedToken> expired = auth::CreateApiToken(*store_, old);
  ASSERT_TRUE(expired.ok()) << expired.error().message;
  struct Holder {
    std::string right, token;
    bool scoped;
  };
  std::vector<Holder> holders;
  for (auth::Right r : auth::AllRights()) {
    const std::string name(auth::RightName(r));
    for (bool scoped : {false, true}) {
      auth::TokenRequest req;
      req.name = "only-" + name + (scoped ? "-other" : "");
      req.role = "admin";
      req.rights = name;
      req.envs = scoped ? "other-*" : "**";
      req.created_by = "test";
      Result<auth::CreatedToken> made = auth::CreateApiToken(*store_, req);
      ASSERT_TRUE(made.ok()) << made.error().message;
      EXPECT_EQ(made->record.rights, name);
      holders.push_back({name, made->text, scoped});
    }
  }
  // A value for every path parameter, a body for every operation that takes one.
  auto target_of = [&](const std::string& path) {
    std::string t = path;
    auto put = [&t](const std::string& param, const std::string& v) {
      size_t at = t.find(param);
      if (at != std::string::npos) t.replace(at, param.size(), v);
    };
    put("{env}", "m-x");
    put("{kind}", "file.file");
    put("{name}", path.find("/tokens/") != std::string::npos ? "victim" : "app");
    put("{id}", path.find("/history/") != std::string::npos ? std::to_string(applies->front().id)
                                                            : std::to_string(planned.id));
    return t;
  };
  auto body_of = [](const std::string& method, const std::string& path) -> std::string {
    if (method != "POST") return "";
    if (path == "/api/v1/environments/{env}/runs") return "{\"action\":\"plan\"}";
    if (path == "/api/v1/tokens") return "{\"role\":\"admin\",\"rights\":\"tokens\"}";
    if (path == "/api/v1/environments/{env}/unlock") return "{\"lock\":1}";
    return "";
  };
  auto parsed = value::ParseJson(OpenApiDocument());
  ASSERT_TRUE(parsed.ok());
  int checked = 0;
  for (const auto& [path, item] : parsed->Find("paths")->as_object()) {
    for (const auto& [method_name, op] : item.as_object()) {
      std::string method = method_name;
      for (char& ch : method) ch = static_cast<char>(ch - 'a' + 'A');
      const std::string right = DocumentedRight(op);
      if (right.empty()) continue;  // open routes: the probes, /metrics, the signed webhook
      const std::string target = target_of(path);
      const bool env_scoped = path.find("{env}") != std::string::npos ||
                              path.rfind("/api/v1/runs/", 0) == 0 || right == "tokens";
      EXPECT_EQ(Call(method, target, expired->text, body_of(method, path)).status, 401)
          << method << " " << target << " with an expired token";
      for (const Holder& h : holders) {
        if (path == "/api/v1/tokens/{name}") {  // a live token to revoke, every time
          (void)auth::RevokeApiToken(*store_, "victim", "test");
          Token("victim", "viewer");
        }
        RawResponse r = Call(method, target, h.token, body_of(method, path));
        const std::string who = "a token with only " + h.right + (h.scoped ? " for other-*" : "");
        if (h.right != right || (h.scoped && env_scoped)) {
          EXPECT_EQ(r.status, 403) << method << " " << target << " as " << who << ": " << r.body;
        } else {
          EXPECT_NE(r.status, 401) << method << " " << target << " as " << who << ": " << r.body;
          EXPECT_NE(r.status, 403) << method << " " << target << " as " << who << ": " << r.body;
        }
        ++checked;
      }
    }
  }
  EXPECT_GT(checked, 20 * 14);
  // Rights only narrow a role: a viewer cannot be given apply, and no name is made up.
  auth::TokenRequest wrong;
  wrong.role = "viewer";
  wrong.rights = "read,apply";
  Result<auth::CreatedToken> refused = auth::CreateApiToken(*store_, wrong);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("role viewer never grants apply"), std::string::npos)
      << refused.error().message;
  wrong.role = "admin";
  wrong.rights = "plan,deploy";
  refused = auth::CreateApiToken(*store_, wrong);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("\"deploy\" is not a right"), std::string::npos);
  // A token limited to rights cannot mint a broader one.
  const std::string minter = [&] {
    for (const Holder& h : holders) {
      if (h.right == "tokens" && !h.scoped) return h.token;
    }
    return std::string();
  }();
  RawResponse broader = Call("POST", "/api/v1/tokens", minter, "{\"role\":\"admin\"}");
  EXPECT_EQ(broader.status, 403) << broader.body;
}

TEST_F(RestTest, TheOpenApiDocumentIsValidDescribesEveryRouteAndEveryAnswer) {
  StartServer();
  const std::string viewer = Token("viewer1", "viewer");
  const std::string admin = Token("admin1", "admin");
  RawResponse r = Call("GET", "/api/v1/openapi.json", viewer);
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.body, std::string(OpenApiDocument()));
  const std::string doc = dir_ + "/openapi.json";
  const std::string script = dir_ + "/check.pl";
  const std::string list = dir_ + "/answers";
  ASSERT_TRUE(WriteFileAtomic(doc, r.body).ok());
  ASSERT_TRUE(WriteFileAtomic(script, kCheckScript).ok());
  // Answers of every kind, each kept to be checked against the document's schema of its route
  // and status.
  std::string answers;
  auto keep = [&](const std::string& method, const std::string& pattern, const std::string& target,
                  const std::string& token, const std::string& body = "") {
    RawResponse got = Call(method, target, token, body);
    const std::string file = dir_ + "/answer" + std::to_string(answers.size());
    EXPECT_TRUE(WriteFileAtomic(file, got.body).ok());
    answers += method + " " + pattern + " " + std::to_string(got.status) + " " + file + "\n";
    return got;
  };
  RawResponse queued = keep("POST", "/api/v1/environments/{env}/runs",
                            "/api/v1/environments/m-x/runs", admin, "{\"action\":\"apply\"}");
  ASSERT_EQ(queued.status, 202);
  const int64_t id = Parse(queued).Find("id")->as_int();
  WaitRun("m-x", "applied", id);
  ASSERT_TRUE(store_->ObserveDrift("m-x", {{"file.file/app", "-1\n+2\n", ""}}, {}, "", 100).ok());
  auto applies = store_->ListApplies("m-x", 1);
  ASSERT_TRUE(applies.ok() && !applies->empty());
  const std::string run = "/api/v1/runs/" + std::to_string(id);
  keep("GET", "/api/v1/environments", "/api/v1/environments", viewer);
  keep("GET", "/api/v1/environments/{env}", "/api/v1/environments/m-x", viewer);
  keep("GET", "/api/v1/environments/{env}", "/api/v1/environments/nope", viewer);
  keep("GET", "/api/v1/environments/{env}/resources", "/api/v1/environments/m-x/resources", viewer);
  keep("GET", "/api/v1/environments/{env}/resources/{kind}/{name}",
       "/api/v1/environments/m-x/resources/file.file/app", viewer);
  keep("GET", "/api/v1/environments/{env}/resources/{kind}/{name}",
       "/api/v1/environments/m-x/resources/file.file/nope", viewer);
  keep("GET", "/api/v1/environments/{env}/runs", "/api/v1/environments/m-x/runs?limit=1", viewer);
  keep("GET", "/api/v1/runs/{id}", run, viewer);
  keep("POST", "/api/v1/runs/{id}/cancel", run + "/cancel", admin);
  keep("POST", "/api/v1/runs/{id}/approve", run + "/approve", admin, "{\"comment\":\"ok\"}");
  keep("POST", "/api/v1/runs/{id}/reject", run + "/reject", admin, "{\"comment\":7}");
  keep("POST", "/api/v1/environments/{env}/runs", "/api/v1/environments/m-x/runs", admin,
       "{\"action\":\"plan\",\"force\":1}");
  keep("POST", "/api/v1/environments/{env}/runs", "/api/v1/environments/m-x/runs", viewer,
       "{\"action\":\"plan\"}");
  keep("POST", "/api/v1/environments/{env}/runs", "/api/v1/environments/m-x/runs", "",
       "{\"action\":\"plan\"}");
  keep("GET", "/api/v1/environments/{env}/history", "/api/v1/environments/m-x/history", viewer);
  keep("GET", "/api/v1/environments/{env}/history/{id}",
       "/api/v1/environments/m-x/history/" + std::to_string(applies->front().id), viewer);
  keep("GET", "/api/v1/environments/{env}/drift", "/api/v1/environments/m-x/drift", viewer);
  keep("GET", "/api/v1/environments/{env}/drift/timeline",
       "/api/v1/environments/m-x/drift/timeline", viewer);
  keep("POST", "/api/v1/environments/{env}/drift/check", "/api/v1/environments/m-x/drift/check",
       admin, "{\"full\":true}");
  keep("POST", "/api/v1/environments/{env}/drift/check", "/api/v1/environments/m-x/drift/check",
       admin, "{\"full\":1}");
  keep("GET", "/api/v1/audit", "/api/v1/audit", admin);
  keep("GET", "/api/v1/audit", "/api/v1/audit", viewer);
  keep("POST", "/api/v1/tokens", "/api/v1/tokens", admin, "{\"role\":\"viewer\",\"name\":\"v2\"}");
  keep("GET", "/api/v1/tokens", "/api/v1/tokens", admin);
  keep("DELETE", "/api/v1/tokens/{name}", "/api/v1/tokens/v2", admin);
  keep("GET", "/livez", "/livez", "");
  keep("GET", "/readyz", "/readyz", "");
  ASSERT_TRUE(WriteFileAtomic(list, answers).ok());
  // Debian's JSON::Validator checks the document against the OpenAPI 3.0 schema, and each
  // answer against the document.
  EXPECT_EQ(test::Sh("perl '" + script + "' '" + doc + "' '" + list + "'"), "valid");
  // The validator is real: a document without responses is refused, and so is an answer that
  // is not what the document says.
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/bad.json",
                              "{\"openapi\":\"3.0.3\",\"info\":{\"title\":\"t\",\"version\":\"1\"},"
                              "\"paths\":{\"/x\":{\"get\":{}}}}")
                  .ok());
  EXPECT_NE(test::Sh("perl '" + script + "' '" + dir_ + "/bad.json' '" + list + "'")
                .find("document: /paths/~1x/get/responses"),
            std::string::npos);
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/wrong", "{\"name\": 5}").ok());
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/wrong-list",
                              "GET /api/v1/environments/{env} 200 " + dir_ + "/wrong\n")
                  .ok());
  EXPECT_NE(test::Sh("perl '" + script + "' '" + doc + "' '" + dir_ + "/wrong-list'"), "valid");
  // Every route the router holds is in the document, and every operation of the document is
  // a route, but those registered outside AddRoutes' areas so far (the lead's /metrics, the
  // hooks' and the events' routes, merged from their branches).
  auto parsed = value::ParseJson(OpenApiDocument());
  ASSERT_TRUE(parsed.ok());
  std::set<std::string> documented;
  for (const auto& [path, item] : parsed->Find("paths")->as_object()) {
    for (const auto& [method, op] : item.as_object()) {
      std::string m = method;
      for (char& ch : m) ch = static_cast<char>(ch - 'a' + 'A');
      documented.insert(m + " " + path);
      EXPECT_NE(op.Find("operationId"), nullptr) << m << " " << path;
      // The right the document names is the one the route requires (RightsMatrix relies on it).
      auto right = route_rights_.find(m + " " + path);
      if (right != route_rights_.end()) {
        EXPECT_EQ(DocumentedRight(op), right->second) << path;
      }
    }
  }
  for (const std::string& route : routes_) EXPECT_EQ(documented.count(route), 1u) << route;
  const std::set<std::string> elsewhere = {"GET /metrics", "GET /api/v1/events",
                                           "POST /api/v1/hooks/git"};
  for (const std::string& op : documented) {
    if (elsewhere.count(op) != 0) continue;
    EXPECT_EQ(routes_.count(op), 1u) << op << " is documented but not a route";
  }
}

}  // namespace
}  // namespace driftless::server::api
