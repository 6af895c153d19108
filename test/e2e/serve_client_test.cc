// The command line against a server (`--server URL --token-file FILE`): the real binary runs
// `driftless serve` on a repository reached by file://, and the same commands are run locally
// (on the same state and the same repository) and through the server's API; they print the
// same and exit the same. A refused token is a clear error; Ctrl-C while an apply is followed
// leaves the run going on the server. It waits only for what the processes report.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "e2e/harness.h"
#include "server/http/testing/raw_client.h"

namespace driftless::test {
namespace {

class ServeClientTest : public ServeFixture {
 protected:
  void SetUp() override {
    setenv("DRIFTLESS_CACHE", (box_.dir() + "/cache").c_str(), 1);
    WriteApp("one");
    CommitFirst("  - branch: main\n    name: staging\n    sync: manual\n");
  }

  // Starts `driftless serve` listening on `listen` (127.0.0.1:0 or unix:///PATH) and returns the
  // URL the command line is to use.
  std::string StartServer(const std::string& listen, std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"serve", "--repo", Origin(), "--listen",
                                     listen,  "--poll", "1h"};
    args.insert(args.end(), extra.begin(), extra.end());
    proc_ = Spawn(box_, args, "serve");
    EXPECT_TRUE(PollUntil([&] { return CountOf(proc_.Err(), "\"msg\":\"listening\"") > 0; }))
        << proc_.Err();
    const bool unix_socket = listen.rfind("unix://", 0) == 0;
    const uint16_t port = unix_socket ? 0 : ServePort(proc_);
    EXPECT_TRUE(unix_socket || port > 0) << proc_.Err();
    // Ready once its first fetch has mapped the branches: before, an environment is unknown
    // and counts as protected.
    EXPECT_TRUE(PollUntil([&] {
      using server::http::testing::RawClient;
      Result<RawClient> c =
          unix_socket ? RawClient::ConnectUnix(listen.substr(7)) : RawClient::ConnectTcp(port);
      if (!c.ok() || !c->Send("GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")) {
        return false;
      }
      std::optional<server::http::testing::RawResponse> r =
          c->ReadResponse(std::chrono::seconds(60));
      return r.has_value() && r->status == 200;
    })) << proc_.Err();
    return unix_socket ? listen : "http://127.0.0.1:" + std::to_string(port);
  }

  // A token of `role` in a private file; its path.
  std::string TokenFile(const std::string& role, const std::string& name) {
    const std::string path = box_.dir() + "/" + name + ".token";
    std::ofstream(path) << Token(role, name) << "\n";
    chmod(path.c_str(), 0600);
    return path;
  }

  // The command run locally, on the repository the server follows (its own cache).
  RunResult Local(std::vector<std::string> args) {
    args.insert(args.end(), {"--repo", Origin()});
    return box_.Run(args, {"DRIFTLESS_CACHE=" + box_.dir() + "/local-cache"});
  }
  // The command run against the server at `url` with the token in `token_file`.
  RunResult Remote(std::vector<std::string> args, const std::string& url,
                   const std::string& token_file) {
    args.insert(args.end(), {"--server", url, "--token-file", token_file});
    return box_.Run(args);
  }

  void StopServer() {
    kill(proc_.pid, SIGTERM);
    EXPECT_EQ(Wait(proc_.pid), 0) << proc_.Err();
    proc_.pid = -1;
  }
};

// The run id of "Queued run #N" on standard error, or 0.
int64_t QueuedRun(const std::string& err) {
  const std::string key = "Queued run #";
  size_t at = err.find(key);
  return at == std::string::npos ? 0 : std::atoll(err.c_str() + at + key.size());
}

// GET /api/v1/runs/{id} on the server at `url` (http://127.0.0.1:PORT) with the token in the file.
Json GetRun(const std::string& url, const std::string& token_file, int64_t id) {
  const uint16_t port = static_cast<uint16_t>(std::atoi(url.c_str() + url.rfind(':') + 1));
  std::string token = ReadFile(token_file);
  while (!token.empty() && token.back() == '\n') token.pop_back();
  HttpReply r = HttpRequest(port, "GET", "/api/v1/runs/" + std::to_string(id),
                            {"Authorization: Bearer " + token});
  EXPECT_EQ(r.status, 200) << r.body;
  return ParseJsonOrFail(r.body, "GET run");
}

// The run's stored text is what `plan` printed after its heading line and a blank line.
void ExpectPlanTextIs(const Json& run, const std::string& printed) {
  const std::string text = run.Str("plan_text");
  ASSERT_FALSE(text.empty());
  const size_t heading = printed.find("\n\n");
  ASSERT_NE(heading, std::string::npos) << printed;
  EXPECT_EQ(printed.substr(heading + 2), text);
}

TEST_F(ServeClientTest, PlanApplyHistoryAndDriftPrintTheSameLocallyAndThroughTheServer) {
  const std::string url = StartServer("127.0.0.1:0");
  const std::string editor = TokenFile("editor", "ci");
  // A plan with changes: the same text, exit 2 with --detailed-exitcode, 0 without.
  RunResult local = Local({"plan", "staging", "--detailed-exitcode"});
  RunResult remote = Remote({"plan", "staging", "--detailed-exitcode"}, url, editor);
  EXPECT_EQ(local.exit_code, 2) << Summary(local);
  EXPECT_EQ(remote.exit_code, 2) << Summary(remote);
  EXPECT_EQ(remote.out, local.out);
  EXPECT_NE(local.out.find("file.file/app"), std::string::npos) << local.out;
  // What the server stored as the run's text is what plan printed after its heading.
  const int64_t plan_run = QueuedRun(remote.err);
  ASSERT_GT(plan_run, 0) << remote.err;
  ExpectPlanTextIs(GetRun(url, editor, plan_run), local.out);
  RunResult runs = Remote({"runs", "staging", "--json"}, url, editor);
  ASSERT_EQ(runs.exit_code, 0) << Summary(runs);
  Json listed = ParseJsonOrFail(runs.out, "runs --json");
  bool found = false;
  for (const Json& r : listed.items) {
    if (r.Int("id") != plan_run) continue;
    found = true;
    EXPECT_EQ(r.Str("status"), "planned");
    EXPECT_EQ(r.Str("author"), "ci");
  }
  EXPECT_TRUE(found) << runs.out;
  RunResult json = Remote({"plan", "staging", "--json", "--detailed-exitcode"}, url, editor);
  EXPECT_EQ(json.exit_code, 2) << Summary(json);
  Json planned = ParseJsonOrFail(json.out, "plan --server --json");
  EXPECT_EQ(planned.Str("environment"), "staging");
  ASSERT_NE(planned.Find("summary"), nullptr) << json.out;
  EXPECT_EQ(planned.Find("summary")->Int("create"), 1) << json.out;
  RunResult saved = Remote({"plan", "staging", "--out", box_.dir() + "/p.json"}, url, editor);
  EXPECT_EQ(saved.exit_code, 1);
  EXPECT_NE(saved.err.find("--out does not go with --server"), std::string::npos) << saved.err;
  RunResult plain = Remote({"plan", "staging"}, url, editor);
  EXPECT_EQ(plain.exit_code, 0) << Summary(plain);
  EXPECT_EQ(plain.out, local.out);

  // apply through the server: the plan, then the apply's line, as locally.
  RunResult applied = Remote({"apply", "staging", "--auto-approve"}, url, editor);
  ASSERT_EQ(applied.exit_code, 0) << Summary(applied) << proc_.Err();
  EXPECT_EQ(applied.out.substr(0, local.out.size()), local.out);
  EXPECT_NE(applied.out.find("\nApply #1 succeeded: 1 created"), std::string::npos) << applied.out;
  EXPECT_NE(applied.err.find(": applied"), std::string::npos) << applied.err;
  EXPECT_EQ(ReadFile(box_.root() + "/staging/app.conf"), "one");
  // runs: the apply run on top, with its action, status, author and message.
  const int64_t apply_run = QueuedRun(applied.err);
  for (std::vector<std::string> args :
       {std::vector<std::string>{"runs"}, std::vector<std::string>{"runs", "staging"}}) {
    RunResult table = Remote(args, url, editor);
    ASSERT_EQ(table.exit_code, 0) << Summary(table);
    EXPECT_EQ(table.out.rfind("ID ", 0), 0u) << table.out;
    EXPECT_NE(table.out.find("AUTHOR"), std::string::npos) << table.out;
    const size_t row = table.out.find("\n" + std::to_string(apply_run) + " ");
    ASSERT_NE(row, std::string::npos) << table.out;
    const std::string line = table.out.substr(row + 1, table.out.find('\n', row + 1) - row - 1);
    for (const char* word : {"staging", "apply", "applied", "ci", "1 created"}) {
      EXPECT_NE(line.find(word), std::string::npos) << word << " in " << line;
    }
  }

  // Nothing left to change: the same, exit 0.
  local = Local({"plan", "staging", "--detailed-exitcode"});
  remote = Remote({"plan", "staging", "--detailed-exitcode"}, url, editor);
  EXPECT_EQ(local.exit_code, 0) << Summary(local);
  EXPECT_EQ(remote.exit_code, 0) << Summary(remote);
  EXPECT_EQ(remote.out, local.out);
  ExpectPlanTextIs(GetRun(url, editor, QueuedRun(remote.err)), local.out);
  RunResult again = Remote({"apply", "staging", "--auto-approve"}, url, editor);
  EXPECT_EQ(again.exit_code, 0) << Summary(again);
  EXPECT_NE(again.out.find("No changes. Environment staging matches its declarations."),
            std::string::npos)
      << again.out;
  RunResult local_again = Local({"apply", "staging", "--auto-approve"});
  EXPECT_EQ(local_again.exit_code, 0) << Summary(local_again);
  EXPECT_EQ(again.out, local_again.out);

  // history, history ENV, history show ID: the same text and JSON.
  for (std::vector<std::string> args : {std::vector<std::string>{"history"},
                                        {"history", "staging"},
                                        {"history", "show", "1"},
                                        {"history", "show", "1", "--json"}}) {
    local = Local(args);
    remote = Remote(args, url, editor);
    EXPECT_EQ(local.exit_code, 0) << Summary(local);
    EXPECT_EQ(remote.exit_code, 0) << Summary(remote);
    EXPECT_EQ(remote.out, local.out) << args[0] << " " << args.back();
  }

  // env list, and the audit log for an admin: the same text.
  const std::string admin = TokenFile("admin", "root");
  for (std::vector<std::string> args :
       {std::vector<std::string>{"env", "list"}, {"audit"}, {"audit", "--who", "ci"}}) {
    local = Local(args);
    remote = Remote(args, url, admin);
    EXPECT_EQ(local.exit_code, 0) << Summary(local);
    EXPECT_EQ(remote.exit_code, 0) << Summary(remote);
    EXPECT_EQ(remote.out, local.out) << args[0] << " " << args.back();
  }

  // drift: the same check both ways (the server reads the live objects itself), before and
  // after a change behind driftless's back: the same output, exit 0 then 2.
  for (const char* full : {"", "--full"}) {
    std::vector<std::string> args = {"drift", "staging"};
    if (*full != '\0') args.push_back(full);
    local = Local(args);
    remote = Remote(args, url, editor);
    EXPECT_EQ(local.exit_code, 0) << Summary(local);
    EXPECT_EQ(remote.exit_code, 0) << Summary(remote);
    EXPECT_EQ(remote.out, local.out);
  }
  std::ofstream(box_.root() + "/staging/app.conf") << "changed by hand";
  for (std::vector<std::string> args :
       {std::vector<std::string>{"drift", "staging"}, {"drift", "staging", "--json"}}) {
    local = Local(args);
    EXPECT_EQ(local.exit_code, 2) << Summary(local);
    remote = Remote(args, url, editor);
    EXPECT_EQ(remote.exit_code, 2) << Summary(remote);
    EXPECT_EQ(remote.out, local.out);
  }
  EXPECT_NE(remote.out.find("changed by hand"), std::string::npos) << remote.out;
  local = Local({"drift", "--history", "staging"});
  remote = Remote({"drift", "--history", "staging"}, url, editor);
  EXPECT_EQ(remote.exit_code, local.exit_code) << Summary(remote);
  StopServer();
}

TEST_F(ServeClientTest, AUnixSocketServesTheCommandsAndARefusedTokenIsAClearError) {
  const std::string url = StartServer("unix://" + box_.dir() + "/api.sock");
  const std::string viewer = TokenFile("viewer", "dash");
  RunResult list = Remote({"env", "list"}, url, viewer);
  ASSERT_EQ(list.exit_code, 0) << Summary(list);
  EXPECT_NE(list.out.find("staging"), std::string::npos) << list.out;
  // The same token from DRIFTLESS_TOKEN, the server from DRIFTLESS_SERVER.
  RunResult by_env =
      box_.Run({"env", "list"}, {"DRIFTLESS_SERVER=" + url, "DRIFTLESS_TOKEN=" + ReadFile(viewer)});
  EXPECT_EQ(by_env.exit_code, 0) << Summary(by_env);
  EXPECT_EQ(by_env.out, list.out);
  RunResult shown = Remote({"env", "show", "staging"}, url, viewer);
  EXPECT_EQ(shown.exit_code, 0) << Summary(shown);
  EXPECT_NE(shown.out.find("Environment staging"), std::string::npos) << shown.out;

  // A token the server does not know, and a revoked one: exit 1, the route, the status and the
  // server's reason; never the token.
  const std::string bogus = box_.dir() + "/bogus.token";
  std::ofstream(bogus) << "dl_notarealtokennotarealtokennotarealtoken123\n";
  RunResult refused = Remote({"history", "staging"}, url, bogus);
  EXPECT_EQ(refused.exit_code, 1) << Summary(refused);
  EXPECT_NE(refused.err.find("HTTP 401"), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find("token refused"), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find("/api/v1/"), std::string::npos) << refused.err;
  EXPECT_EQ(refused.err.find("dl_notarealtoken"), std::string::npos) << refused.err;
  EXPECT_EQ(refused.out, "");
  ASSERT_EQ(box_.Run({"token", "revoke", "dash"}).exit_code, 0);
  RunResult revoked = Remote({"env", "list"}, url, viewer);
  EXPECT_EQ(revoked.exit_code, 1) << Summary(revoked);
  EXPECT_NE(revoked.err.find("HTTP 401"), std::string::npos) << revoked.err;
  EXPECT_NE(revoked.err.find("revoked"), std::string::npos) << revoked.err;
  // A viewer may not plan: 403, named.
  const std::string other = TokenFile("viewer", "other");
  RunResult forbidden = Remote({"plan", "staging"}, url, other);
  EXPECT_EQ(forbidden.exit_code, 1) << Summary(forbidden);
  EXPECT_NE(forbidden.err.find("POST /api/v1/environments/staging/runs: HTTP 403"),
            std::string::npos)
      << forbidden.err;
  // An environment the server does not know: 404, named.
  const std::string editor = TokenFile("editor", "ci");
  RunResult unknown = Remote({"plan", "nope"}, url, editor);
  EXPECT_EQ(unknown.exit_code, 1) << Summary(unknown);
  EXPECT_NE(unknown.err.find("HTTP 404 not_found: there is no environment 'nope'"),
            std::string::npos)
      << unknown.err;
  // No token at all; a server that is not there; runs without a server.
  RunResult no_token = box_.Run({"runs", "--server", url});
  EXPECT_EQ(no_token.exit_code, 1);
  EXPECT_NE(no_token.err.find("DRIFTLESS_TOKEN"), std::string::npos) << no_token.err;
  RunResult gone = Remote({"runs"}, "unix://" + box_.dir() + "/nothing.sock", other);
  EXPECT_EQ(gone.exit_code, 1);
  EXPECT_NE(gone.err.find("cannot reach the server"), std::string::npos) << gone.err;
  RunResult local_runs = box_.Run({"runs"});
  EXPECT_EQ(local_runs.exit_code, 1);
  EXPECT_NE(local_runs.err.find("works against a server only"), std::string::npos)
      << local_runs.err;
  RunResult bad_url = Remote({"runs"}, "localhost:8080", other);
  EXPECT_EQ(bad_url.exit_code, 1);
  EXPECT_NE(bad_url.err.find("unknown scheme"), std::string::npos) << bad_url.err;
  StopServer();
}

TEST_F(ServeClientTest, CtrlCStopsFollowingAnApplyNotTheRun) {
  // A local apply holds the environment's lock at its prompt: the server's run waits for it.
  TerminalProc holder(box_, {"apply", "staging", "--lease", "1h"}, "holder");
  ASSERT_TRUE(holder.WaitForScreen(kConfirmPrompt)) << holder.Screen();
  const std::string url = StartServer("127.0.0.1:0", {"--lock-timeout", "1h"});
  const std::string editor = TokenFile("editor", "ci");
  Proc follower =
      Spawn(box_, {"apply", "staging", "--auto-approve", "--server", url, "--token-file", editor},
            "follower");
  ASSERT_TRUE(ErrHas("waiting for the lock")) << proc_.Err() << follower.Err();
  ASSERT_TRUE(PollUntil([&] { return CountOf(follower.Err(), ": planning") > 0; }))
      << follower.Err();
  const int64_t id = QueuedRun(follower.Err());
  ASSERT_GT(id, 0) << follower.Err();
  kill(follower.pid, SIGINT);
  EXPECT_EQ(Wait(follower.pid), 130) << follower.Err();
  EXPECT_NE(follower.Err().find("Stopped following run #" + std::to_string(id)), std::string::npos)
      << follower.Err();
  EXPECT_NE(follower.Err().find("the run goes on"), std::string::npos) << follower.Err();
  // Still waiting for the lock, not canceled.
  EXPECT_EQ(GetRun(url, editor, id).Str("status"), "planning");
  // The run was not canceled: once the lock is free it applies.
  holder.Type("no\n");
  EXPECT_EQ(holder.Wait(), 1);
  Json run;
  ASSERT_TRUE(PollUntil([&] {
    RunResult r = box_.Run({"runs", "staging", "--json", "--server", url, "--token-file", editor});
    if (r.exit_code != 0 || !ReadJson(r.out, &run)) return false;
    for (const Json& item : run.items) {
      if (item.Int("id") == id && item.Str("status") == "applied") return true;
    }
    return false;
  })) << run.items.size()
      << proc_.Err();
  EXPECT_EQ(ReadFile(box_.root() + "/staging/app.conf"), "one");
  StopServer();
}

// An environment whose rule asks for one approval of each apply.
class ServeClientApprovalTest : public ServeClientTest {
 protected:
  void SetUp() override {
    setenv("DRIFTLESS_CACHE", (box_.dir() + "/cache").c_str(), 1);
    WriteApp("one");
    CommitFirst("  - branch: main\n    name: staging\n    sync: manual\n    approvals: 1\n");
  }
};

TEST_F(ServeClientApprovalTest, ApproveAndRejectDecideTheRunAFollowerWaitsFor) {
  const std::string url = StartServer("127.0.0.1:0");
  const std::string alice = TokenFile("editor", "alice");
  const std::string bob = TokenFile("editor", "bob");
  auto follow = [&](const std::string& tag) {
    return Spawn(
        box_, {"apply", "staging", "--auto-approve", "--server", url, "--token-file", alice}, tag);
  };
  // Rejected: the follower ends with the reason, exit 1; nothing is written.
  Proc first = follow("first");
  ASSERT_TRUE(PollUntil([&] { return CountOf(first.Err(), "waits for approval") > 0; }))
      << first.Err() << proc_.Err();
  const std::string id = std::to_string(QueuedRun(first.Err()));
  RunResult own = Remote({"approve", id}, url, alice);
  EXPECT_EQ(own.exit_code, 1) << Summary(own);
  EXPECT_NE(own.err.find("POST /api/v1/runs/" + id + "/approve: HTTP 403 author"),
            std::string::npos)
      << own.err;
  RunResult rejected = Remote({"reject", id, "--comment", "not now"}, url, bob);
  EXPECT_EQ(rejected.exit_code, 0) << Summary(rejected);
  EXPECT_NE(rejected.out.find("Rejected run #" + id + " (apply of environment staging"),
            std::string::npos)
      << rejected.out;
  EXPECT_NE(rejected.out.find("rejected by bob"), std::string::npos) << rejected.out;
  EXPECT_NE(rejected.out.find("not now"), std::string::npos) << rejected.out;
  EXPECT_EQ(Wait(first.pid), 1) << first.Err();
  EXPECT_NE(first.Err().find("canceled: rejected by bob: not now"), std::string::npos)
      << first.Err();
  EXPECT_FALSE(Exists(box_.root() + "/staging/app.conf"));
  // Approved by another: the follower sees it apply, exit 0.
  Proc second = follow("second");
  ASSERT_TRUE(PollUntil([&] { return CountOf(second.Err(), "waits for approval") > 0; }))
      << second.Err() << proc_.Err();
  const std::string id2 = std::to_string(QueuedRun(second.Err()));
  RunResult approved = Remote({"approve", id2, "--comment", "ok"}, url, bob);
  EXPECT_EQ(approved.exit_code, 0) << Summary(approved);
  EXPECT_NE(approved.out.find("Approved run #" + id2), std::string::npos) << approved.out;
  EXPECT_NE(approved.out.find("approved by bob"), std::string::npos) << approved.out;
  RunResult twice = Remote({"approve", id2}, url, bob);
  EXPECT_EQ(twice.exit_code, 1) << Summary(twice);
  EXPECT_NE(twice.err.find("HTTP 409"), std::string::npos) << twice.err;
  EXPECT_EQ(Wait(second.pid), 0) << second.Err() << proc_.Err();
  EXPECT_NE(second.Out().find("Apply #1 succeeded: 1 created"), std::string::npos) << second.Out();
  EXPECT_EQ(ReadFile(box_.root() + "/staging/app.conf"), "one");
  // history show has the run and its approver, the same both ways.
  RunResult local = Local({"history", "show", "1"});
  RunResult remote = Remote({"history", "show", "1"}, url, bob);
  EXPECT_EQ(remote.exit_code, 0) << Summary(remote);
  EXPECT_EQ(remote.out, local.out);
  EXPECT_NE(local.out.find("bob"), std::string::npos) << local.out;
  StopServer();
}

}  // namespace
}  // namespace driftless::test
