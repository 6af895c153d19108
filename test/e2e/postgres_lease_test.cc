// Many users on a PostgreSQL state, the lock's side: 20 applies of one environment that wait
// for each other (--lock-timeout) run strictly one after the other and all land; a holder killed
// with kill -9 loses its lock — at once on the same host, after its lease (--lease) when it ran
// on another one — and history shows its apply "interrupted" with its pending changes.
//
// The suite is named e2e_postgres_lease so that `ctest -R e2e_postgres_lease` selects it.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "e2e/harness.h"
#include "support/postgres.h"

namespace driftless::test {
namespace {

Json ParseJsonOrFail(const std::string& text, const std::string& what) {
  Json j;
  if (!ReadJson(text, &j)) {
    ADD_FAILURE() << what << " is not valid JSON: " << text.substr(0, 2000);
    return Json();
  }
  return j;
}

std::string Show(const RunResult& r) {
  return "exit " + std::to_string(r.exit_code) + "\nstdout:\n" + r.out.substr(0, 3000) +
         "\nstderr:\n" + r.err.substr(0, 3000);
}

// A sandbox whose commands use a fresh PostgreSQL database as their state.
class PgSandbox : public Sandbox {
 public:
  PgSandbox() : dsn_(CreateTestDatabase("dl_e2e")), uri_(ToUri(dsn_)) {}
  const std::string& dsn() const { return dsn_; }
  const std::string& uri() const { return uri_; }
  RunResult Pg(std::vector<std::string> args, const std::vector<std::string>& env = {}) const {
    args.insert(args.end(), {"--state", uri_});
    return Run(args, env);
  }

 private:
  std::string dsn_;
  std::string uri_;
};

void WriteRepo(const Sandbox& s, int count) {
  s.WriteRepoFile(
      "driftless.yaml",
      "project: test\nvars:\n  gen: \"0\"\ntargets:\n  host: {provider: file, root: \"" + s.root() +
          "\"}\n");
  std::string docs;
  for (int i = 0; i < count; ++i) {
    if (i) docs += "---\n";
    docs += "kind: file.file\nname: f" + std::to_string(i) + "\nspec: {path: \"g" +
            std::to_string(i % 16) + "/f" + std::to_string(i) +
            ".txt\", content: \"generation ${var.gen} of f" + std::to_string(i) + "\\n\"}\n";
  }
  s.WriteRepoFile("files.yaml", docs);
}

int WrongFiles(const std::string& dir, int count, const std::string& gen) {
  int wrong = 0;
  for (int i = 0; i < count; ++i) {
    std::string path = dir + "/g" + std::to_string(i % 16) + "/f" + std::to_string(i) + ".txt";
    if (ReadFile(path) != "generation " + gen + " of f" + std::to_string(i) + "\n") ++wrong;
  }
  return wrong;
}

struct Proc {
  int pid = -1;
  std::string out_path;
  std::string err_path;
  std::string Err() const { return ReadFile(err_path); }
};

Proc Spawn(const PgSandbox& s, std::vector<std::string> args, const std::string& tag) {
  Proc p;
  p.out_path = s.dir() + "/" + tag + ".out";
  p.err_path = s.dir() + "/" + tag + ".err";
  args.insert(args.begin(), DRIFTLESS_BIN);
  args.insert(args.end(), {"--dir", s.repo(), "--state", s.uri()});
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    int in = open("/dev/null", O_RDONLY);
    int out = open(p.out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int err = open(p.err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (in < 0 || out < 0 || err < 0) _exit(126);
    dup2(in, 0);
    dup2(out, 1);
    dup2(err, 2);
    execv(argv[0], argv.data());
    _exit(127);
  }
  p.pid = pid;
  return p;
}

bool Exited(int pid) {
  siginfo_t info{};
  return waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
         info.si_pid != 0;
}

std::vector<Json> History(const PgSandbox& s, const std::string& env) {
  RunResult r = s.Pg({"history", env, "--json", "--limit", "1000"});
  EXPECT_EQ(r.exit_code, 0) << Show(r);
  std::vector<Json> items = ParseJsonOrFail(r.out, "history --json").items;
  std::sort(items.begin(), items.end(),
            [](const Json& a, const Json& b) { return a.Int("id") < b.Int("id"); });
  return items;
}

// Polls history until `pid` has a running apply with at least one change recorded done.
bool WaitForProgress(const PgSandbox& s, int pid) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (std::chrono::steady_clock::now() < deadline) {
    for (const Json& a : History(s, "default")) {
      if (a.Int("pid") != pid || a.Str("status") != "running") continue;
      RunResult one = s.Pg({"history", "show", std::to_string(a.Int("id")), "--json"});
      Json j;
      if (one.exit_code != 0 || !ReadJson(one.out, &j) || j.Find("changes") == nullptr) continue;
      for (const Json& c : j.Find("changes")->items) {
        if (c.Str("status") == "done") return true;
      }
    }
    if (Exited(pid)) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

TEST(e2e_postgres_lease, TwentyWaitingAppliesAreSerialisedAndAllLand) {
  constexpr int kProcs = 20;
  constexpr int kFiles = 100;
  PgSandbox s;
  ASSERT_FALSE(s.uri().empty());
  WriteRepo(s, kFiles);
  std::vector<Proc> procs;
  std::map<int64_t, int> gen_of_pid;
  for (int k = 1; k <= kProcs; ++k) {
    procs.push_back(Spawn(
        s,
        {"apply", "--auto-approve", "--lock-timeout", "600s", "--var", "gen=" + std::to_string(k)},
        "apply" + std::to_string(k)));
    gen_of_pid[procs.back().pid] = k;
  }
  for (const Proc& p : procs) EXPECT_EQ(Wait(p.pid), 0) << p.Err();

  std::vector<Json> applies = History(s, "default");
  ASSERT_EQ(applies.size(), static_cast<size_t>(kProcs)) << "none lost";
  std::set<int64_t> pids;
  for (size_t i = 0; i < applies.size(); ++i) {
    const Json& a = applies[i];
    pids.insert(a.Int("pid"));
    EXPECT_EQ(a.Str("status"), "succeeded") << "apply #" << a.Int("id");
    EXPECT_EQ(a.Str("summary"), std::to_string(kFiles) + (i == 0 ? " created" : " updated"))
        << "apply #" << a.Int("id");
    if (i > 0) {
      EXPECT_GE(a.Str("started_at"), applies[i - 1].Str("finished_at"))
          << "apply #" << a.Int("id") << " started before #" << applies[i - 1].Int("id")
          << " finished";
    }
  }
  EXPECT_EQ(pids.size(), static_cast<size_t>(kProcs)) << "one apply per process";
  // The last apply decides the content; state agrees with it, and its serial counts every write.
  auto last = gen_of_pid.find(applies.back().Int("pid"));
  ASSERT_NE(last, gen_of_pid.end());
  const std::string gen = std::to_string(last->second);
  EXPECT_EQ(WrongFiles(s.root(), kFiles, gen), 0) << "files should all be generation " << gen;
  RunResult plan = s.Pg({"plan", "--detailed-exitcode", "--var", "gen=" + gen});
  EXPECT_EQ(plan.exit_code, 0) << Show(plan);
  RunResult envs = s.Pg({"env", "list", "--json"});
  Json list = ParseJsonOrFail(envs.out, "env list --json");
  ASSERT_EQ(list.items.size(), 1u);
  EXPECT_GE(list.items[0].Int("serial"), kProcs) << "every apply wrote at least once";
  EXPECT_EQ(list.items[0].Int("resources"), kFiles);
  EXPECT_EQ(QueryValue(s.dsn(), "SELECT count(*) FROM driftless.applies"), std::to_string(kProcs));
  EXPECT_EQ(QueryValue(s.dsn(), "SELECT max(serial) FROM driftless.resources"),
            std::to_string(list.items[0].Int("serial")))
      << "the last write of every resource carries the environment's serial";
}

// kill -9 of the holder on this host: its pid is gone, so the next apply takes over at once.
TEST(e2e_postgres_lease, KilledHolderOnThisHostIsTakenOverAtOnce) {
  constexpr int kFiles = 3000;
  PgSandbox s;
  ASSERT_FALSE(s.uri().empty());
  WriteRepo(s, kFiles);
  Proc first = Spawn(s, {"apply", "--auto-approve", "--parallelism", "1"}, "first");
  ASSERT_TRUE(WaitForProgress(s, first.pid)) << "the first apply never got going:\n" << first.Err();
  kill(first.pid, SIGKILL);
  ASSERT_EQ(Wait(first.pid), -SIGKILL);
  RunResult next = s.Pg({"apply", "--auto-approve"});
  ASSERT_EQ(next.exit_code, 0) << Show(next);
  std::vector<Json> applies = History(s, "default");
  ASSERT_EQ(applies.size(), 2u);
  EXPECT_EQ(applies[0].Int("pid"), first.pid);
  EXPECT_EQ(applies[0].Str("status"), "interrupted");
  EXPECT_EQ(applies[1].Str("status"), "succeeded");
  EXPECT_EQ(WrongFiles(s.root(), kFiles, "0"), 0);
}

// kill -9 of a holder that ran on another host (its pid cannot be checked from here): the lock
// stays until its lease runs out; a waiting apply then takes over, and the killed apply is
// "interrupted" with its changes still pending.
TEST(e2e_postgres_lease, KilledHolderOnAnotherHostIsTakenOverAfterItsLease) {
  constexpr int kFiles = 3000;
  constexpr int kLease = 10;
  PgSandbox s;
  ASSERT_FALSE(s.uri().empty());
  WriteRepo(s, kFiles);
  Proc first = Spawn(
      s, {"apply", "--auto-approve", "--parallelism", "1", "--lease", std::to_string(kLease) + "s"},
      "first");
  ASSERT_TRUE(WaitForProgress(s, first.pid)) << "the first apply never got going:\n" << first.Err();
  kill(first.pid, SIGKILL);
  ASSERT_EQ(Wait(first.pid), -SIGKILL);
  // As if it had run on another machine.
  ASSERT_EQ(Execute(s.dsn(), "UPDATE driftless.locks SET host = 'elsewhere.invalid'"), "");
  const auto killed_at = std::chrono::steady_clock::now();

  RunResult refused = s.Pg({"apply", "--auto-approve"});
  EXPECT_EQ(refused.exit_code, 1) << Show(refused);
  EXPECT_NE(refused.err.find("is locked by"), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find("@elsewhere.invalid (pid " + std::to_string(first.pid) + ")"),
            std::string::npos)
      << refused.err;

  RunResult waited = s.Pg({"apply", "--auto-approve", "--lock-timeout", "120s"});
  ASSERT_EQ(waited.exit_code, 0) << Show(waited);
  const auto took = std::chrono::steady_clock::now() - killed_at;
  EXPECT_LT(took, std::chrono::seconds(kLease + 60));
  std::printf("the lock was taken over %.1f s after the kill (lease %d s)\n",
              std::chrono::duration<double>(took).count(), kLease);

  std::vector<Json> applies = History(s, "default");
  ASSERT_EQ(applies.size(), 2u);
  EXPECT_EQ(applies[0].Int("pid"), first.pid);
  EXPECT_EQ(applies[0].Str("status"), "interrupted");
  EXPECT_EQ(applies[1].Str("status"), "succeeded");
  RunResult killed = s.Pg({"history", "show", std::to_string(applies[0].Int("id")), "--json"});
  ASSERT_EQ(killed.exit_code, 0) << Show(killed);
  Json k = ParseJsonOrFail(killed.out, "history show");
  ASSERT_NE(k.Find("changes"), nullptr);
  int done = 0, pending = 0;
  for (const Json& c : k.Find("changes")->items) {
    done += c.Str("status") == "done";
    pending += c.Str("status") == "pending";
  }
  EXPECT_GT(done, 0);
  EXPECT_GT(pending, 0) << "the changes the killed apply never finished stay pending";
  EXPECT_EQ(done + pending, kFiles);
  EXPECT_EQ(WrongFiles(s.root(), kFiles, "0"), 0);
  RunResult plan = s.Pg({"plan", "--detailed-exitcode"});
  EXPECT_EQ(plan.exit_code, 0) << Show(plan);
}

}  // namespace
}  // namespace driftless::test
