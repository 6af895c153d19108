// Several `driftless serve` processes on one PostgreSQL state (docs/server.md#several-servers):
// three real servers share 30 environments by lease, each reconciled by exactly one of them; a
// webhook or a run request sent to one server runs on the environment's owner; a server frozen
// (SIGSTOP) or killed (SIGKILL) in the middle of an apply loses its environments when its lease
// runs out, the others take them over, interrupt its run and converge the environment, and the
// frozen one, once it runs again, writes nothing; a server whose database goes away is not ready
// until it comes back. Leases are 2s; nothing waits for a while: the
// tests wait for what the state and the servers' logs say.
//
// The file's name holds "postgres", so its tests get the test PostgreSQL server.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "base/hash.h"
#include "e2e/harness.h"
#include "support/postgres.h"

namespace driftless::test {
namespace {

constexpr char kSecret[] = "a webhook secret";

// `count` file.file resources f0.txt ... holding "generation GEN of fI".
std::string Files(int count, const std::string& gen) {
  std::string docs;
  for (int i = 0; i < count; ++i) {
    if (i) docs += "---\n";
    docs += "kind: file.file\nname: f" + std::to_string(i) + "\ntarget: host\nspec: {path: f" +
            std::to_string(i) + ".txt, content: \"generation " + gen + " of f" + std::to_string(i) +
            "\\n\"}\n";
  }
  return docs;
}

// How many of the `count` files under `dir` do not hold generation `gen`.
int Wrong(const std::string& dir, int count, const std::string& gen) {
  int wrong = 0;
  for (int i = 0; i < count; ++i) {
    const std::string want = "generation " + gen + " of f" + std::to_string(i) + "\n";
    if (ReadFile(dir + "/f" + std::to_string(i) + ".txt") != want) ++wrong;
  }
  return wrong;
}

// The pid in a server id (HOST-PID-RANDOM).
int PidOf(const std::string& server) {
  size_t last = server.rfind('-');
  if (last == std::string::npos || last == 0) return -1;
  size_t before = server.rfind('-', last - 1);
  if (before == std::string::npos) return -1;
  return std::atoi(server.substr(before + 1, last - before - 1).c_str());
}

class e2e_serve_fleet : public ::testing::Test {
 protected:
  void TearDown() override {
    for (const Proc& p : servers_) {
      if (p.pid > 0 && !Exited(p.pid)) {
        kill(p.pid, SIGCONT);
        kill(p.pid, SIGKILL);
      }
      if (p.pid > 0) Wait(p.pid);
    }
  }
  void Git(const std::string& dir, const std::string& args) { GitIn(s_, dir, args); }

  // Branches e00 ... (`small` of them, one file each), and `big` with `big_files` files, each an
  // environment of its own synced automatically; mirrored as origin.git.
  // `rule`: more lines of the environments' rule.
  void MakeRepo(int small, const std::string& big = "", int big_files = 0,
                const std::string& rule = "") {
    s_.WriteRepoFile("driftless.yaml",
                     "project: fleet\nenvironments:\n  - branch: \"e*\"\n    sync: auto\n" + rule +
                         "targets:\n  host: {provider: file, root: \"" + s_.root() +
                         "/${env}\"}\n");
    s_.WriteRepoFile("files.yaml", Files(1, "0"));
    Git(s_.repo(), "init -q -b main");
    Git(s_.repo(), "add -A");
    Git(s_.repo(), "commit -q -m one");
    for (int i = 0; i < small; ++i) {
      Git(s_.repo(), "branch " + Name(i));
      envs_.push_back(Name(i));
    }
    if (!big.empty()) {
      Git(s_.repo(), "checkout -q -b " + big);
      s_.WriteRepoFile("files.yaml", Files(big_files, "0"));
      Git(s_.repo(), "commit -q -a -m big");
      Git(s_.repo(), "checkout -q main");
      envs_.push_back(big);
    }
    Git(s_.dir(), "clone -q --bare repo origin.git");
    secret_file_ = s_.dir() + "/webhook-secret";
    FILE* f = std::fopen(secret_file_.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fprintf(f, "%s\n", kSecret);
    std::fclose(f);
    ASSERT_EQ(chmod(secret_file_.c_str(), 0600), 0);
  }
  static std::string Name(int i) { return (i < 10 ? "e0" : "e") + std::to_string(i); }

  // Starts a server with a 2s lease (or `lease`) and a cache of its own; returns its index in
  // servers_. Its fetches and its reads of the runs other servers queued are an hour apart
  // (--poll, --run-poll): what reaches it sooner came by a webhook or the state's channels.
  size_t StartServer(const std::string& tag, const std::string& lease = "2s") {
    setenv("DRIFTLESS_CACHE", (s_.dir() + "/cache-" + tag).c_str(), 1);
    servers_.push_back(Spawn(s_,
                             {"serve", "--repo", "file://" + s_.dir() + "/origin.git", "--listen",
                              "127.0.0.1:0", "--poll", "1h", "--run-poll", "1h", "--lease", lease,
                              "--parallelism", "1", "--webhook-secret-file", secret_file_},
                             tag));
    return servers_.size() - 1;
  }
  // An editor's token.
  std::string EditorToken(const std::string& name) {
    RunResult t = s_.Pg({"token", "create", "--role", "editor", "--name", name});
    EXPECT_EQ(t.exit_code, 0) << Summary(t);
    std::string token = t.out;
    while (!token.empty() && token.back() == '\n') token.pop_back();
    return token.substr(token.rfind('\n') == std::string::npos ? 0 : token.rfind('\n') + 1);
  }
  uint16_t Port(size_t i) { return ServePort(servers_[i]); }

  std::string Query(const std::string& sql) { return QueryValue(s_.dsn(), sql); }

  // Environments per server (sorted counts, "10,10,10"), live owners only.
  std::string Shares() {
    return Query(
        "SELECT coalesce(string_agg(c::text, ',' ORDER BY c), '') FROM (SELECT count(*) c FROM "
        "driftless.owners o JOIN driftless.servers s ON s.id = o.server GROUP BY o.server) t");
  }
  // The pid of the server that owns `env` (-1: none).
  int OwnerPid(const std::string& env) {
    return PidOf(
        Query("SELECT coalesce(max(server), '') FROM driftless.owners WHERE env = '" + env + "'"));
  }

  // True when some line of `text` holds every one of `needles`.
  static bool LineHas(const std::string& text, const std::vector<std::string>& needles) {
    size_t start = 0;
    while (start < text.size()) {
      size_t end = text.find('\n', start);
      if (end == std::string::npos) end = text.size();
      const std::string line = text.substr(start, end - start);
      bool all = true;
      for (const std::string& n : needles) all = all && line.find(n) != std::string::npos;
      if (all) return true;
      start = end + 1;
    }
    return false;
  }

  // Posts a GitHub-style push hook signed with the secret to server `i`; its status.
  int PostHook(size_t i, const std::string& branch, const std::string& delivery) {
    const std::string body = "{\"ref\":\"refs/heads/" + branch +
                             "\",\"after\":\"0000000000000000000000000000000000000000\"}";
    HttpReply r = HttpRequest(Port(i), "POST", "/api/v1/hooks/git",
                              {"X-GitHub-Event: push", "X-GitHub-Delivery: " + delivery,
                               "X-Hub-Signature-256: sha256=" + HmacSha256Hex(kSecret, body),
                               "Content-Type: application/json"},
                              body);
    return r.status;
  }

  // Freezes or kills (`kill_it`) the only server in the middle of its apply of `big`, starts two
  // more, and waits until they took every environment over, interrupted its run and applied
  // `big` again. Returns the frozen or killed server's pid.
  int TakeOverMidApply(bool kill_it, const std::string& big, int big_files) {
    const size_t first = StartServer("first");
    const int pid = servers_[first].pid;
    EXPECT_TRUE(FreezeMidApply(s_, big, pid))
        << "the server's apply was never caught in the middle:\n"
        << servers_[first].Err();
    if (kill_it) {
      kill(pid, SIGKILL);
      EXPECT_EQ(Wait(pid), -SIGKILL);
    }
    StartServer("second");
    StartServer("third");
    const int n = static_cast<int>(envs_.size());
    // Taken over: every environment owned by the two others, in shares within one.
    EXPECT_TRUE(PollUntil([&] {
      const std::string shares = Shares();
      return (shares == std::to_string(n / 2) + "," + std::to_string(n - n / 2)) &&
             Query("SELECT count(*) FROM driftless.owners WHERE server LIKE '%-" +
                   std::to_string(pid) + "-%'") == "0";
    })) << Shares();
    // Its run interrupted, and the environment converged by the new owner.
    EXPECT_TRUE(PollUntil([&] {
      return Query("SELECT count(*) FROM driftless.applies WHERE env = '" + big +
                   "' AND status = 'succeeded' AND pid <> " + std::to_string(pid)) == "1";
    })) << servers_[1].Err()
        << servers_[2].Err();
    EXPECT_EQ(Query("SELECT string_agg(status, ',' ORDER BY id) FROM driftless.applies WHERE "
                    "env = '" +
                    big + "'"),
              "interrupted,succeeded");
    EXPECT_EQ(Query("SELECT pid FROM driftless.applies WHERE env = '" + big +
                    "' ORDER BY id "
                    "LIMIT 1"),
              std::to_string(pid));
    EXPECT_EQ(Query("SELECT string_agg(action || ':' || status, ',' ORDER BY id) FROM "
                    "driftless.runs WHERE env = '" +
                    big + "'"),
              "apply:interrupted,apply:applied");
    EXPECT_NE(
        Query("SELECT message FROM driftless.runs WHERE env = '" + big + "' ORDER BY id LIMIT 1")
            .find("lost environment " + big),
        std::string::npos);
    EXPECT_EQ(Wrong(s_.root() + "/" + big, big_files, "0"), 0);
    return pid;
  }

  PgSandbox s_;
  std::vector<Proc> servers_;
  std::vector<std::string> envs_;
  std::string secret_file_;
};

TEST_F(e2e_serve_fleet, ThirtyEnvironmentsAreSharedAndAHookOrARunOnAnyServerRunsOnTheOwner) {
  ASSERT_FALSE(s_.uri().empty());
  MakeRepo(30);
  for (const char* tag : {"a", "b", "c"}) StartServer(tag);
  for (size_t i = 0; i < 3; ++i) ASSERT_GT(Port(i), 0) << servers_[i].Err();
  // Every environment applied once, and owned by exactly one of three servers, in fair shares.
  ASSERT_TRUE(PollUntil([&] {
    return Shares() == "10,10,10" &&
           Query("SELECT count(*) FROM driftless.applies WHERE status = 'succeeded'") == "30";
  })) << Shares()
      << " applied " << Query("SELECT count(*) FROM driftless.applies WHERE status = 'succeeded'")
      << " runs " << Query("SELECT string_agg(status, ',') FROM driftless.runs") << "\n"
      << servers_[0].Err().substr(0, 6000);
  EXPECT_EQ(Query("SELECT count(*) FROM (SELECT env FROM driftless.applies GROUP BY env HAVING "
                  "count(*) = 1) t"),
            "30")
      << "each environment applied exactly once";
  EXPECT_EQ(Query("SELECT count(*) FROM driftless.runs WHERE status <> 'applied'"), "0");
  EXPECT_EQ(Query("SELECT count(*) FROM driftless.runs a JOIN driftless.runs b ON a.env = b.env "
                  "AND a.id < b.id AND b.started_at < a.finished_at"),
            "0")
      << "no two runs of one environment overlap";
  for (int i = 0; i < 30; ++i) EXPECT_EQ(Wrong(s_.root() + "/" + Name(i), 1, "0"), 0);
  // Taken over within the lease: every ownership and heartbeat holds for at most two thirds of
  // the 2 s lease past the database's now (renewed every tenth of it), never for the whole lease.
  const std::string now_ms = "(extract(epoch FROM clock_timestamp()) * 1000)::bigint";
  EXPECT_EQ(Query("SELECT count(*) FROM driftless.owners WHERE expires_ms - " + now_ms + " > 1334"),
            "0");
  EXPECT_EQ(
      Query("SELECT count(*) FROM driftless.servers WHERE expires_ms - " + now_ms + " > 1334"),
      "0");

  // A webhook sent to server a: the owner of the environment pushed to (not a) applies it.
  const int a = servers_[0].pid;
  std::string pushed;
  for (const std::string& e : envs_) {
    if (OwnerPid(e) != a) {
      pushed = e;
      break;
    }
  }
  ASSERT_FALSE(pushed.empty());
  const int owner = OwnerPid(pushed);
  Git(s_.repo(), "checkout -q " + pushed);
  s_.WriteRepoFile("files.yaml", Files(1, "1"));
  Git(s_.repo(), "commit -q -a -m two");
  Git(s_.repo(), "checkout -q main");
  Git(s_.repo(), "push -q '" + s_.dir() + "/origin.git' " + pushed);
  ASSERT_EQ(PostHook(0, pushed, "delivery-1"), 202) << servers_[0].Err();
  ASSERT_TRUE(PollUntil([&] {
    return Query("SELECT count(*) FROM driftless.applies WHERE env = '" + pushed +
                 "' AND status = 'succeeded'") == "2";
  })) << servers_[0].Err();
  EXPECT_EQ(Query("SELECT pid FROM driftless.applies WHERE env = '" + pushed +
                  "' ORDER BY id DESC LIMIT 1"),
            std::to_string(owner));
  EXPECT_EQ(Wrong(s_.root() + "/" + pushed, 1, "1"), 0);

  // A run requested on server a for an environment another server owns: queued in the state,
  // run by its owner, which hears of it on the state's `runs` channel (its own reads of the
  // queued runs are an hour apart: --run-poll).
  const std::string token = EditorToken("ci");
  HttpReply queued = ApiCall(Port(0), "POST", "/api/v1/environments/" + pushed + "/runs", token,
                             "{\"action\":\"plan\"}");
  ASSERT_EQ(queued.status, 202) << queued.body;
  Json run = ParseJsonOrFail(queued.body, "the queued run");
  const std::string id = std::to_string(run.Int("id"));
  ASSERT_TRUE(PollUntil(
      [&] { return Query("SELECT status FROM driftless.runs WHERE id = " + id) == "no_changes"; }));
  size_t owner_index = 0;
  for (size_t i = 0; i < servers_.size(); ++i) {
    if (servers_[i].pid == owner) owner_index = i;
  }
  EXPECT_TRUE(
      LineHas(servers_[owner_index].Err(), {"\"msg\":\"run planning\"", "\"run_id\":" + id}))
      << servers_[owner_index].Err();
  EXPECT_FALSE(LineHas(servers_[0].Err(), {"\"msg\":\"run planning\"", "\"run_id\":" + id}));
}

TEST_F(e2e_serve_fleet, AKilledServersEnvironmentsAreTakenOverAndItsApplyConverged) {
  ASSERT_FALSE(s_.uri().empty());
  MakeRepo(5, "ebig", 2000);
  TakeOverMidApply(true, "ebig", 2000);
}

TEST_F(e2e_serve_fleet, AFrozenServerTakenOverWritesNothingWhenItRunsAgain) {
  ASSERT_FALSE(s_.uri().empty());
  MakeRepo(5, "ebig", 2000);
  const int pid = TakeOverMidApply(false, "ebig", 2000);
  const std::string before = Query(
      "SELECT string_agg(id || ':' || status || ':' || finished_at, ',' ORDER BY id) FROM "
      "driftless.runs WHERE env = 'ebig'");
  Thaw(pid);
  // Its next write for the environment is refused: the lock and the ownership are others'.
  ASSERT_TRUE(PollUntil([&] {
    const std::string err = servers_[0].Err();
    return err.find("lost the ownership of environment ebig") != std::string::npos ||
           err.find("lost the lock of environment ebig") != std::string::npos;
  })) << servers_[0].Err();
  ASSERT_TRUE(PollUntil([&] {
    return servers_[0].Err().find("\"msg\":\"environment lost\"") != std::string::npos;
  })) << servers_[0].Err();
  // Nothing it wrote reached the state: the runs and the applies are as the new owner left them.
  EXPECT_EQ(Query("SELECT string_agg(id || ':' || status || ':' || finished_at, ',' ORDER BY id) "
                  "FROM driftless.runs WHERE env = 'ebig'"),
            before);
  EXPECT_EQ(Query("SELECT string_agg(status, ',' ORDER BY id) FROM driftless.applies WHERE env "
                  "= 'ebig'"),
            "interrupted,succeeded");
  EXPECT_EQ(Wrong(s_.root() + "/ebig", 2000, "0"), 0);
}

// The database goes away under a server (connections refused and its sessions ended): the server
// answers 503 on /readyz and reconciles nothing; when the database answers again it is ready
// again, owns its environments again and applies a new commit.
TEST_F(e2e_serve_fleet, ALostDatabaseMakesTheServerNotReadyUntilItComesBack) {
  ASSERT_FALSE(s_.uri().empty());
  MakeRepo(2);
  const size_t a = StartServer("a");
  ASSERT_GT(Port(a), 0) << servers_[a].Err();
  ASSERT_TRUE(PollUntil([&] {
    return Shares() == "2" &&
           Query("SELECT count(*) FROM driftless.applies WHERE status = 'succeeded'") == "2";
  })) << servers_[a].Err();
  auto ready = [&] { return HttpRequest(Port(a), "GET", "/readyz", {}, "").status; };
  ASSERT_TRUE(PollUntil([&] { return ready() == 200; }));

  // Cut: nobody may connect to the state's database, and its sessions are ended.
  const std::string db = Query("SELECT current_database()");
  const std::string admin = [&] {
    std::string out;
    for (size_t at = 0; at < s_.dsn().size();) {
      size_t end = s_.dsn().find(' ', at);
      if (end == std::string::npos) end = s_.dsn().size();
      const std::string word = s_.dsn().substr(at, end - at);
      if (!word.empty() && word.rfind("dbname=", 0) != 0) out += word + " ";
      at = end + 1;
    }
    return out + "dbname=postgres";
  }();
  ASSERT_EQ(Execute(admin, "ALTER DATABASE \"" + db + "\" ALLOW_CONNECTIONS false"), "");
  ASSERT_EQ(QueryValue(admin,
                       "SELECT count(pg_terminate_backend(pid)) >= 0 FROM pg_stat_activity WHERE "
                       "datname = '" +
                           db + "'"),
            "t");
  EXPECT_TRUE(PollUntil([&] { return ready() == 503; })) << servers_[a].Err();
  EXPECT_FALSE(Exited(servers_[a].pid));

  // Back: ready again, its environments owned again, and a new commit applied by it.
  ASSERT_EQ(Execute(admin, "ALTER DATABASE \"" + db + "\" ALLOW_CONNECTIONS true"), "");
  EXPECT_TRUE(PollUntil([&] { return ready() == 200; })) << servers_[a].Err();
  EXPECT_TRUE(PollUntil([&] { return Shares() == "2"; })) << Shares();
  Git(s_.repo(), "checkout -q " + Name(0));
  s_.WriteRepoFile("files.yaml", Files(1, "1"));
  Git(s_.repo(), "commit -q -a -m two");
  Git(s_.repo(), "checkout -q main");
  Git(s_.repo(), "push -q '" + s_.dir() + "/origin.git' " + Name(0));
  ASSERT_EQ(PostHook(a, Name(0), "delivery-after-the-cut"), 202) << servers_[a].Err();
  EXPECT_TRUE(PollUntil([&] {
    return Query("SELECT count(*) FROM driftless.applies WHERE env = '" + Name(0) +
                 "' AND status = 'succeeded' AND pid = " + std::to_string(servers_[a].pid)) == "2";
  })) << servers_[a].Err();
  EXPECT_EQ(Wrong(s_.root() + "/" + Name(0), 1, "1"), 0);
}

// A cancel sent to server a for a run that server b is applying: recorded in the state and
// announced on its `runs` channel; b stops the apply between changes and the run ends canceled,
// as on one server. b is frozen in the middle of the apply while a gets the cancel (leases of a
// minute: nobody takes b's environments meanwhile).
TEST_F(e2e_serve_fleet, ACancelSentToAnyServerStopsTheRunOnTheServerRunningIt) {
  ASSERT_FALSE(s_.uri().empty());
  MakeRepo(1, "ebig", 2000);
  const size_t b = StartServer("b", "1m");
  const int b_pid = servers_[b].pid;
  ASSERT_TRUE(FreezeMidApply(s_, "ebig", b_pid)) << servers_[b].Err();
  const size_t a = StartServer("a", "1m");
  ASSERT_GT(Port(a), 0) << servers_[a].Err();
  // a answers for an environment once it has fetched the repository (before, 503 not_ready).
  ASSERT_TRUE(PollUntil([&] {
    return HttpRequest(Port(a), "GET", "/readyz", {}, "").status == 200;
  })) << servers_[a].Err();
  const std::string id =
      Query("SELECT id FROM driftless.runs WHERE env = 'ebig' AND status = 'applying'");
  ASSERT_FALSE(id.empty());
  HttpReply canceled =
      ApiCall(Port(a), "POST", "/api/v1/runs/" + id + "/cancel", EditorToken("ci"), "{}");
  ASSERT_EQ(canceled.status, 202) << canceled.body << servers_[a].Err();
  EXPECT_TRUE(LineHas(servers_[a].Err(), {"\"msg\":\"cancel asked\"", "\"run_id\":" + id}));
  EXPECT_NE(Query("SELECT cancel_requested_at FROM driftless.runs WHERE id = " + id), "0");
  Thaw(b_pid);
  ASSERT_TRUE(PollUntil([&] {
    return Query("SELECT status FROM driftless.runs WHERE id = " + id) == "canceled";
  })) << servers_[b].Err();
  EXPECT_TRUE(LineHas(servers_[b].Err(),
                      {"\"msg\":\"cancel asked through another server\"", "\"run_id\":" + id}))
      << servers_[b].Err();
  // Stopped between changes: some files written, not all; the apply says so in history.
  EXPECT_GT(Wrong(s_.root() + "/ebig", 2000, "0"), 0);
  EXPECT_EQ(Query("SELECT count(*) FROM driftless.applies WHERE env = 'ebig' AND status = "
                  "'succeeded'"),
            "0");
  EXPECT_FALSE(LineHas(servers_[a].Err(), {"\"msg\":\"run planning\"", "\"run_id\":" + id}));
}

// A server whose ownership of an environment was taken over while it was frozen (here by a
// server that exists only in the owners table) and whose watch then sees drift there writes
// nothing: no drift record, no remediation run, no apply; the drifted file stays drifted.
// Whichever comes first after it runs again, its watch's fenced write or its lease thread's look
// (which finds the loss and stops the watch), nothing reaches the state.
TEST_F(e2e_serve_fleet, AWatchOnAServerThatLostTheEnvironmentWritesNothing) {
  ASSERT_FALSE(s_.uri().empty());
  MakeRepo(1, "", 0, "    policy: {drift: enforce}\n");
  const size_t a = StartServer("a", "1m");
  const int pid = servers_[a].pid;
  ASSERT_TRUE(PollUntil([&] {
    return LineHas(servers_[a].Err(), {"\"msg\":\"event\"", "watch.started", "e00"});
  })) << servers_[a].Err();
  ASSERT_TRUE(Freeze(pid));
  ASSERT_EQ(Execute(s_.dsn(),
                    "UPDATE driftless.owners SET server = 'elsewhere', token = "
                    "nextval('driftless.owner_tokens'), expires_ms = 9000000000000"),
            "");
  const std::string file = s_.root() + "/e00/f0.txt";
  FILE* f = std::fopen(file.c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fputs("drifted\n", f);
  std::fclose(f);
  Thaw(pid);
  ASSERT_TRUE(PollUntil([&] {
    return LineHas(servers_[a].Err(), {"\"msg\":\"environment lost\"", "e00"});
  })) << servers_[a].Err();
  // Which came first is the machine's business; the first is the usual (the look is up to 20 s
  // away), and its refusal is logged with the watch's failed check.
  std::cerr << "fenced write seen: "
            << LineHas(servers_[a].Err(), {"watch.error", "lost the ownership of environment e00"})
            << "\n";
  EXPECT_EQ(Query("SELECT count(*) FROM driftless.drift"), "0");
  EXPECT_EQ(Query("SELECT string_agg(action || ':' || status, ',' ORDER BY id) FROM "
                  "driftless.runs"),
            "apply:applied");
  EXPECT_EQ(Query("SELECT count(*) FROM driftless.applies"), "1");
  EXPECT_EQ(ReadFile(file), "drifted\n");
}

}  // namespace
}  // namespace driftless::test
