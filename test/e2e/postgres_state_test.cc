// The CLI on a PostgreSQL state (`--state postgresql://...`, a fresh database per test on the
// test server): the everyday flow, and many users at once — 20 applies of one environment
// without waiting while another holds its lock (each is refused at once, naming the holder), and
// 20 environments applied at once while a 21st holds its lock, none waiting for another. The
// holders are applies waiting for their confirmation on a terminal: they hold the lock until the
// test answers, however fast or slow the machine.
//
// The suite is named e2e_postgres_state so that `ctest -R e2e_postgres_state` selects it.
// test/e2e/postgres_lease_test.cc has the lock's side (serialised applies, kill -9, leases).

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

#include "base/identity.h"
#include "e2e/harness.h"
#include "support/postgres.h"

namespace driftless::test {
namespace {

// `count` files, all at the target's root.
GenerationRepo Files(int count) { return {.count = count}; }

TEST(e2e_postgres_state, EverydayFlow) {
  PgSandbox s;
  ASSERT_FALSE(s.uri().empty());
  s.WriteProject("vars:\n  who: world\n");
  s.WriteRepoFile(
      "files.yaml",
      "kind: file.file\nname: motd\nspec: {path: motd, content: \"hello ${var.who}\\n\"}\n"
      "---\nkind: file.file\nname: app\nspec: {path: app.conf, content: \"a=1\\n\"}\n");

  RunResult p = s.Pg({"plan", "--detailed-exitcode"});
  ASSERT_EQ(p.exit_code, 2) << Summary(p);
  EXPECT_NE(p.out.find("2 to create"), std::string::npos) << p.out;
  RunResult a = s.Pg({"apply", "--auto-approve"});
  ASSERT_EQ(a.exit_code, 0) << Summary(a);
  EXPECT_NE(a.out.find("2 created"), std::string::npos) << a.out;
  EXPECT_EQ(ReadFile(s.root() + "/motd"), "hello world\n");
  EXPECT_FALSE(Exists(s.state())) << "no SQLite file when the state is in PostgreSQL";
  RunResult clean = s.Pg({"plan", "--detailed-exitcode"});
  EXPECT_EQ(clean.exit_code, 0) << Summary(clean);

  // Drift: detected, recorded on the timeline, healed by the next apply.
  { std::ofstream(s.root() + "/app.conf", std::ios::trunc) << "a=2\n"; }
  RunResult drift = s.Pg({"drift"});
  EXPECT_EQ(drift.exit_code, 2) << Summary(drift);
  EXPECT_NE(drift.out.find("file.file/app"), std::string::npos) << drift.out;
  RunResult timeline = s.Pg({"drift", "--history", "--json"});
  ASSERT_EQ(timeline.exit_code, 0) << Summary(timeline);
  Json drifts = ParseJsonOrFail(timeline.out, "drift --history --json");
  ASSERT_EQ(drifts.items.size(), 1u) << timeline.out;
  EXPECT_EQ(drifts.items[0].Str("resource"), "file.file/app");
  EXPECT_TRUE(drifts.items[0].IsNull("resolved_at"));
  RunResult heal = s.Pg({"apply", "--auto-approve"});
  ASSERT_EQ(heal.exit_code, 0) << Summary(heal);
  EXPECT_EQ(ReadFile(s.root() + "/app.conf"), "a=1\n");
  timeline = s.Pg({"drift", "--history", "--json"});
  drifts = ParseJsonOrFail(timeline.out, "drift --history --json");
  ASSERT_EQ(drifts.items.size(), 1u) << timeline.out;
  EXPECT_EQ(drifts.items[0].Str("resolution"), "apply");

  // History, environments, state surgery.
  std::vector<Json> applies = History(s, "default");
  ASSERT_EQ(applies.size(), 2u);
  EXPECT_EQ(applies[0].Str("status"), "succeeded");
  EXPECT_EQ(applies[0].Str("summary"), "2 created");
  RunResult one = s.Pg({"history", "show", std::to_string(applies[0].Int("id")), "--json"});
  ASSERT_EQ(one.exit_code, 0) << Summary(one);
  EXPECT_EQ(ParseJsonOrFail(one.out, "history show").Find("changes")->items.size(), 2u);
  RunResult envs = s.Pg({"env", "list", "--json"});
  ASSERT_EQ(envs.exit_code, 0) << Summary(envs);
  Json env_list = ParseJsonOrFail(envs.out, "env list --json");
  ASSERT_EQ(env_list.items.size(), 1u) << envs.out;
  EXPECT_EQ(env_list.items[0].Str("name"), "default");
  EXPECT_EQ(env_list.items[0].Int("resources"), 2);
  RunResult show = s.Pg({"env", "show", "default"});
  EXPECT_EQ(show.exit_code, 0) << Summary(show);
  RunResult list = s.Pg({"state", "list"});
  ASSERT_EQ(list.exit_code, 0) << Summary(list);
  EXPECT_EQ(list.out, "file.file/app\nfile.file/motd\n");
  RunResult rm = s.Pg({"state", "rm", "file.file/motd"});
  ASSERT_EQ(rm.exit_code, 0) << Summary(rm);
  EXPECT_EQ(s.Pg({"state", "list"}).out, "file.file/app\n");
  EXPECT_TRUE(Exists(s.root() + "/motd")) << "state rm leaves the object alone";

  // The same state through DRIFTLESS_STATE.
  RunResult via_env = s.Run({"state", "list", "--state", ""}, {"DRIFTLESS_STATE=" + s.uri()});
  EXPECT_EQ(via_env.exit_code, 0) << Summary(via_env);
  EXPECT_EQ(via_env.out, "file.file/app\n");

  RunResult destroy = s.Pg({"destroy", "default", "--auto-approve"});
  EXPECT_EQ(destroy.exit_code, 0) << Summary(destroy);
  EXPECT_FALSE(Exists(s.root() + "/app.conf"));
}

TEST(e2e_postgres_state, BadLocationsSayWhatIsWrongWithoutThePassword) {
  Sandbox s;
  s.WriteProject();
  RunResult r =
      s.Run({"plan", "--state", "postgresql://alice:s3cret@127.0.0.1:1/state?connect_timeout=2"});
  EXPECT_EQ(r.exit_code, 1) << Summary(r);
  EXPECT_NE(r.err.find("postgresql://alice:***@127.0.0.1:1/state"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("s3cret"), std::string::npos) << r.err;
  EXPECT_EQ(r.out.find("s3cret"), std::string::npos) << r.out;
  RunResult lease = s.Run({"apply", "--auto-approve", "--lease", "0.2s"});
  EXPECT_EQ(lease.exit_code, 1) << Summary(lease);
  EXPECT_NE(lease.err.find("a lease is at least 1s"), std::string::npos) << lease.err;
}

// 20 applies of one environment at once, none waiting, while another apply holds the lock (at
// its confirmation): every one fails at once naming the holder, and leaves no trace in history.
TEST(e2e_postgres_state, TwentyAppliesOfOneEnvironmentWithoutWaiting) {
  constexpr int kProcs = 20;
  constexpr int kFiles = 300;
  PgSandbox s;
  ASSERT_FALSE(s.uri().empty());
  WriteGenerationRepo(s, Files(kFiles), s.root());
  PromptHolder holder(s, "default", "0");
  ASSERT_TRUE(holder.Asking());
  std::vector<Proc> procs;
  for (int k = 1; k <= kProcs; ++k) {
    procs.push_back(Spawn(
        s, {"apply", "--auto-approve", "--parallelism", "1", "--var", "gen=" + std::to_string(k)},
        "apply" + std::to_string(k)));
  }
  const std::regex re(R"(environment default is locked by (\S+) \(pid (\d+)\) for apply since )"
                      R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(use --lock-timeout to wait\))");
  for (const Proc& p : procs) {
    EXPECT_EQ(Wait(p.pid), 1) << p.Err();
    const std::string err = p.Err();
    std::smatch m;
    ASSERT_TRUE(std::regex_search(err, m, re)) << "pid " << p.pid << ": " << err;
    EXPECT_EQ(m[1].str(), CurrentIdentity().UserAtHost());
    EXPECT_EQ(m[2].str(), std::to_string(holder.proc.pid()));
    EXPECT_EQ(p.Out().find("Apply #"), std::string::npos) << p.Out();
  }
  EXPECT_TRUE(History(s, "default").empty()) << "the refused applies leave no trace";

  holder.Approve();
  EXPECT_EQ(holder.proc.Wait(), 0) << holder.proc.Screen();
  std::vector<Json> applies = History(s, "default");
  ASSERT_EQ(applies.size(), 1u);
  EXPECT_EQ(applies[0].Int("pid"), holder.proc.pid());
  EXPECT_EQ(applies[0].Str("status"), "succeeded");
  EXPECT_EQ(WrongFiles(s.root(), Files(kFiles), "0"), 0);
  RunResult show = s.Pg({"env", "show", "default"});
  EXPECT_EQ(show.out.find("locked:"), std::string::npos) << "no lock may be left:\n" << show.out;
}

// Environments do not wait for each other: while one environment's lock is held (its apply
// waits for its confirmation), 20 applies of 20 other environments, started at once and not
// allowed to wait (fail-fast locks), all succeed; the held one refuses an apply naming its holder.
TEST(e2e_postgres_state, TwentyEnvironmentsApplyInParallel) {
  constexpr int kProcs = 20;
  constexpr int kFiles = 200;
  PgSandbox s;
  ASSERT_FALSE(s.uri().empty());
  WriteGenerationRepo(s, Files(kFiles), s.root() + "/${env}");
  PromptHolder held(s, "held", "0");
  ASSERT_TRUE(held.Asking());

  std::vector<Proc> procs;
  for (int k = 0; k < kProcs; ++k) {
    procs.push_back(
        Spawn(s, {"apply", "e" + std::to_string(k), "--auto-approve", "--parallelism", "1"},
              "e" + std::to_string(k)));
  }
  for (const Proc& p : procs) EXPECT_EQ(Wait(p.pid), 0) << p.Err();
  RunResult refused = s.Pg({"apply", "held", "--auto-approve"});
  EXPECT_EQ(refused.exit_code, 1) << Summary(refused);
  EXPECT_NE(refused.err.find("(pid " + std::to_string(held.proc.pid()) + ")"), std::string::npos)
      << refused.err;
  held.Approve();
  EXPECT_EQ(held.proc.Wait(), 0) << held.proc.Screen();

  std::vector<std::pair<std::string, std::string>> intervals;
  for (int k = 0; k < kProcs; ++k) {
    const std::string env = "e" + std::to_string(k);
    std::vector<Json> applies = History(s, env);
    ASSERT_EQ(applies.size(), 1u) << env;
    EXPECT_EQ(applies[0].Str("status"), "succeeded") << env;
    EXPECT_EQ(applies[0].Str("summary"), std::to_string(kFiles) + " created") << env;
    intervals.emplace_back(applies[0].Str("started_at"), applies[0].Str("finished_at"));
    EXPECT_EQ(WrongFiles(s.root() + "/" + env, Files(kFiles), "0"), 0) << env;
  }
  EXPECT_EQ(WrongFiles(s.root() + "/held", Files(kFiles), "0"), 0);
  // For the log only: how many ran at the same time (history is kept to the second, so on a fast
  // machine each apply can fit in one second and none strictly overlaps).
  int overlapping = 0;
  for (size_t i = 0; i < intervals.size(); ++i) {
    for (size_t j = i + 1; j < intervals.size(); ++j) {
      if (intervals[i].first < intervals[j].second && intervals[j].first < intervals[i].second)
        ++overlapping;
    }
  }
  std::printf("%d of %d pairs of applies overlapped in time (to the second)\n", overlapping,
              kProcs * (kProcs - 1) / 2);
  RunResult envs = s.Pg({"env", "list", "--json"});
  ASSERT_EQ(envs.exit_code, 0) << Summary(envs);
  EXPECT_EQ(ParseJsonOrFail(envs.out, "env list").items.size(), static_cast<size_t>(kProcs + 1));
}

}  // namespace
}  // namespace driftless::test
