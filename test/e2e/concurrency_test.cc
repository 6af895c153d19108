// Several driftless processes on one state file: the environment lock serialises applies of one
// environment, refuses or waits as --lock-timeout says, lets plans through, is taken back from a
// holder that was killed, and never couples two environments.
//
// The suite is named e2e_concurrency so that `ctest -R e2e_concurrency` selects it (ctest knows
// the discovered tests by their GoogleTest names only).

#include <gtest/gtest.h>
#include <pwd.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <memory>
#include <regex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "base/identity.h"
#include "e2e/harness.h"

namespace driftless::test {
namespace {

// --- the repository ---

// `count` files in 16 folders, each depending on the one before in chains of 8.
GenerationRepo Files(int count) { return {.count = count, .grouped = true, .chained = true}; }

// --- processes ---

// Polls `env show ENV` until it reports the lock held by `pid`; `shown` receives that output.
// False when `pid` exited first or after a generous minute.
bool WaitForLock(const Sandbox& s, const std::string& env, int pid, std::string* shown = nullptr) {
  const std::string mark = "(pid " + std::to_string(pid) + ") for ";
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    RunResult r = s.Run({"env", "show", env});
    if (r.exit_code == 0 && r.out.find(mark) != std::string::npos) {
      if (shown != nullptr) *shown = r.out;
      return true;
    }
    if (Exited(pid)) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

// Polls history until `pid` has a running apply: it has recorded its intents and is working.
bool WaitForRunningApply(const Sandbox& s, const std::string& env, int pid) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    RunResult r = s.Run({"history", env, "--json"});
    if (r.exit_code == 0) {
      Json j;
      if (ReadJson(r.out, &j)) {
        for (const Json& a : j.items) {
          if (a.Int("pid") == pid && a.Str("status") == "running") return true;
        }
      }
    }
    if (Exited(pid)) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

constexpr int kMany = 3000;  // enough for an apply to hold the lock for a good while

// --- the tests ---

TEST(e2e_concurrency, SecondApplyFailsAtOnceNamingTheHolder) {
  // The second apply is started as soon as the first is seen holding the lock, with the first's
  // whole apply still ahead of it. Should the first nevertheless be done before the second even
  // looks (the second then finds nothing to do), the round proves nothing and is run again.
  for (int attempt = 1; attempt <= 3; ++attempt) {
    SCOPED_TRACE("attempt " + std::to_string(attempt));
    Sandbox s;
    WriteGenerationRepo(s, Files(kMany), s.root());
    Proc first = Spawn(s, {"apply", "--auto-approve", "--parallelism", "1"}, "first");
    std::string shown;
    ASSERT_TRUE(WaitForLock(s, "default", first.pid, &shown))
        << "the first apply never held the lock; it ended with " << Wait(first.pid) << ":\n"
        << first.Err();

    RunResult second = s.Run({"apply", "--auto-approve"});
    if (second.exit_code == 0 && second.out.find("No changes.") != std::string::npos &&
        Exited(first.pid)) {
      std::printf("attempt %d: the first apply finished before the second looked; again\n",
                  attempt);
      EXPECT_EQ(Wait(first.pid), 0) << first.Err();
      continue;
    }
    EXPECT_EQ(second.exit_code, 1) << second.out << second.err;
    std::smatch m;
    const std::regex re(R"(environment default is locked by (\S+) \(pid (\d+)\) for apply since )"
                        R"((\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ))");
    ASSERT_TRUE(std::regex_search(second.err, m, re)) << second.err;
    EXPECT_EQ(m[1].str(), CurrentIdentity().UserAtHost());
    EXPECT_EQ(m[2].str(), std::to_string(first.pid));
    EXPECT_NE(shown.find("locked:    by " + m[1].str() + " (pid " + m[2].str() +
                         ") for apply since " + m[3].str()),
              std::string::npos)
        << "the message should describe the same lock as `env show`:\n"
        << shown;
    EXPECT_NE(second.err.find("--lock-timeout"), std::string::npos)
        << "the message should say how to wait: " << second.err;
    EXPECT_EQ(second.out.find("Apply #"), std::string::npos) << "nothing may be applied:\n"
                                                             << second.out;

    EXPECT_EQ(Wait(first.pid), 0) << first.Err();
    std::vector<Json> applies = History(s, "default");
    ASSERT_EQ(applies.size(), 1u) << "the refused apply must leave no trace in history";
    EXPECT_EQ(applies[0].Int("pid"), first.pid);
    EXPECT_EQ(applies[0].Str("status"), "succeeded");
    RunResult plan = s.Run({"plan", "--detailed-exitcode"});
    EXPECT_EQ(plan.exit_code, 0) << plan.out.substr(0, 2000) << plan.err;
    EXPECT_EQ(WrongFiles(s.root(), Files(kMany), "0"), 0);
    return;
  }
  FAIL() << "in three attempts the first apply was always done before the second looked";
}

TEST(e2e_concurrency, SecondApplyWithLockTimeoutWaitsThenRuns) {
  Sandbox s;
  WriteGenerationRepo(s, Files(kMany), s.root());
  Proc first =
      Spawn(s, {"apply", "--auto-approve", "--parallelism", "1", "--var", "gen=1"}, "first");
  ASSERT_TRUE(WaitForLock(s, "default", first.pid))
      << "the first apply never held the lock; it ended with " << Wait(first.pid) << ":\n"
      << first.Err();
  Proc second =
      Spawn(s, {"apply", "--auto-approve", "--lock-timeout", "60s", "--var", "gen=2"}, "second");
  const int first_rc = Wait(first.pid);
  const int second_rc = Wait(second.pid);
  EXPECT_EQ(first_rc, 0) << first.Err();
  EXPECT_EQ(second_rc, 0) << second.Err();

  std::vector<Json> applies = History(s, "default");
  ASSERT_EQ(applies.size(), 2u);
  EXPECT_EQ(applies[0].Int("pid"), first.pid);
  EXPECT_EQ(applies[1].Int("pid"), second.pid);
  for (const Json& a : applies) EXPECT_EQ(a.Str("status"), "succeeded") << "apply #" << a.Int("id");
  // Serialised: the second started once the first had finished (RFC 3339 UTC strings compare
  // in time order).
  EXPECT_GE(applies[1].Str("started_at"), applies[0].Str("finished_at"));
  EXPECT_EQ(applies[0].Str("summary"), std::to_string(kMany) + " created");
  EXPECT_EQ(applies[1].Str("summary"), std::to_string(kMany) + " updated");

  RunResult plan = s.Run({"plan", "--detailed-exitcode", "--var", "gen=2"});
  EXPECT_EQ(plan.exit_code, 0) << plan.out.substr(0, 2000) << plan.err;
  EXPECT_EQ(WrongFiles(s.root(), Files(kMany), "2"), 0);
}

TEST(e2e_concurrency, PlanRunsWhileAnApplyHoldsTheLock) {
  Sandbox s;
  WriteGenerationRepo(s, Files(kMany), s.root());
  Proc apply = Spawn(s, {"apply", "--auto-approve", "--parallelism", "1"}, "apply");
  ASSERT_TRUE(WaitForLock(s, "default", apply.pid))
      << "the apply never held the lock; it ended with " << Wait(apply.pid) << ":\n"
      << apply.Err();
  // Plans take no lock: neither refused nor made to wait.
  RunResult plan = s.Run({"plan", "--json"});
  EXPECT_EQ(plan.exit_code, 0) << plan.err;
  Json j = ParseJsonOrFail(plan.out, "plan --json");
  const Json* changes = j.Find("changes");
  ASSERT_NE(changes, nullptr);
  EXPECT_EQ(changes->items.size(), static_cast<size_t>(kMany));
  RunResult text = s.Run({"plan"});
  EXPECT_EQ(text.exit_code, 0) << text.err;
  EXPECT_EQ(text.err.find("locked"), std::string::npos) << text.err;

  EXPECT_EQ(Wait(apply.pid), 0) << apply.Err();
  RunResult after = s.Run({"plan", "--detailed-exitcode"});
  EXPECT_EQ(after.exit_code, 0) << after.out.substr(0, 2000) << after.err;
}

TEST(e2e_concurrency, LockOfAKilledHolderIsTakenOverByTheNextApply) {
  Sandbox s;
  WriteGenerationRepo(s, Files(kMany), s.root());
  Proc first = Spawn(s, {"apply", "--auto-approve", "--parallelism", "1"}, "first");
  ASSERT_TRUE(WaitForRunningApply(s, "default", first.pid))
      << "the first apply never started; it ended with " << Wait(first.pid) << ":\n"
      << first.Err();
  kill(first.pid, SIGKILL);
  ASSERT_EQ(Wait(first.pid), -SIGKILL);  // reaped: its pid is gone

  // The lock is still in state, naming the dead process...
  RunResult show = s.Run({"env", "show", "default"});
  EXPECT_EQ(show.exit_code, 0) << show.err;
  EXPECT_NE(show.out.find("(pid " + std::to_string(first.pid) + ")"), std::string::npos)
      << show.out;
  // ...and the next apply takes it over by itself, without --lock-timeout.
  RunResult next = s.Run({"apply", "--auto-approve"});
  EXPECT_EQ(next.exit_code, 0) << next.err;

  std::vector<Json> applies = History(s, "default");
  ASSERT_EQ(applies.size(), 2u);
  EXPECT_EQ(applies[0].Int("pid"), first.pid);
  EXPECT_EQ(applies[0].Str("status"), "interrupted");
  EXPECT_EQ(applies[1].Str("status"), "succeeded");
  RunResult after_show = s.Run({"env", "show", "default"});
  EXPECT_EQ(after_show.out.find("locked:"), std::string::npos) << after_show.out;
  RunResult plan = s.Run({"plan", "--detailed-exitcode"});
  EXPECT_EQ(plan.exit_code, 0) << plan.out.substr(0, 2000) << plan.err;
  EXPECT_EQ(WrongFiles(s.root(), Files(kMany), "0"), 0);
}

TEST(e2e_concurrency, WaitingApplyTakesOverFromAKilledHolder) {
  // The round needs the first apply to still hold the lock when it is killed. Should it finish
  // on its own first (a fast machine), the round proves nothing and is run again.
  for (int attempt = 1; attempt <= 3; ++attempt) {
    SCOPED_TRACE("attempt " + std::to_string(attempt));
    Sandbox s;
    WriteGenerationRepo(s, Files(kMany), s.root());
    Proc first = Spawn(s, {"apply", "--auto-approve", "--parallelism", "1"}, "first");
    if (!WaitForRunningApply(s, "default", first.pid)) {
      if (Wait(first.pid) == 0 && attempt < 3) continue;  // done before it was seen running
      FAIL() << "the first apply never started:\n" << first.Err();
    }
    Proc waiter = Spawn(s, {"apply", "--auto-approve", "--lock-timeout", "120s"}, "waiter");
    // Give the waiter a moment to find the lock taken (it waits whether or not it got there).
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    kill(first.pid, SIGKILL);
    int first_rc = Wait(first.pid);
    int waiter_rc = Wait(waiter.pid);
    if (first_rc == 0 && attempt < 3) continue;  // it finished before the kill
    ASSERT_EQ(first_rc, -SIGKILL);
    EXPECT_EQ(waiter_rc, 0) << waiter.Err();

    std::vector<Json> applies = History(s, "default");
    ASSERT_EQ(applies.size(), 2u);
    EXPECT_EQ(applies[0].Int("pid"), first.pid);
    EXPECT_EQ(applies[0].Str("status"), "interrupted");
    EXPECT_EQ(applies[1].Int("pid"), waiter.pid);
    EXPECT_EQ(applies[1].Str("status"), "succeeded");
    RunResult plan = s.Run({"plan", "--detailed-exitcode"});
    EXPECT_EQ(plan.exit_code, 0) << plan.out.substr(0, 2000) << plan.err;
    EXPECT_EQ(WrongFiles(s.root(), Files(kMany), "0"), 0);
    return;
  }
}

TEST(e2e_concurrency, EightAppliesAtOnceAreSerialised) {
  constexpr int kProcs = 8;
  constexpr int kFiles = 200;
  Sandbox s;
  WriteGenerationRepo(s, Files(kFiles), s.root());
  std::vector<Proc> procs;
  for (int k = 1; k <= kProcs; ++k) {
    procs.push_back(Spawn(
        s,
        {"apply", "--auto-approve", "--lock-timeout", "300s", "--var", "gen=" + std::to_string(k)},
        "apply" + std::to_string(k)));
  }
  std::map<int64_t, int> gen_of_pid;
  for (int k = 1; k <= kProcs; ++k) {
    const Proc& p = procs[static_cast<size_t>(k - 1)];
    gen_of_pid[p.pid] = k;
    int rc = Wait(p.pid);
    EXPECT_EQ(rc, 0) << "apply with gen=" << k << " (pid " << p.pid << "):\n"
                     << p.Err() << p.Out().substr(0, 1000);
  }

  std::vector<Json> applies = History(s, "default");
  ASSERT_EQ(applies.size(), static_cast<size_t>(kProcs))
      << "every apply has its own changes (another generation), so each is in history";
  ExpectSerialised(applies, kFiles);

  // The last apply decides the content; state agrees with it.
  auto last = gen_of_pid.find(applies.back().Int("pid"));
  ASSERT_NE(last, gen_of_pid.end()) << "the last apply was not run by one of the eight";
  const std::string gen = std::to_string(last->second);
  EXPECT_EQ(WrongFiles(s.root(), Files(kFiles), gen), 0)
      << "files should all be generation " << gen;
  RunResult plan = s.Run({"plan", "--detailed-exitcode", "--var", "gen=" + gen});
  EXPECT_EQ(plan.exit_code, 0) << plan.out.substr(0, 2000) << plan.err;
  RunResult show = s.Run({"env", "show", "default"});
  EXPECT_EQ(show.out.find("locked:"), std::string::npos) << "no lock may be left:\n" << show.out;
}

TEST(e2e_concurrency, TwoEnvironmentsApplyInParallel) {
  // b is started while a holds its lock, with a's whole apply still ahead. Should a be done before
  // b holds its own lock, the round shows no overlap and is run again.
  for (int attempt = 1; attempt <= 3; ++attempt) {
    SCOPED_TRACE("attempt " + std::to_string(attempt));
    Sandbox s;
    WriteGenerationRepo(s, Files(kMany), s.root() + "/${env}");
    Proc a = Spawn(s, {"apply", "a", "--auto-approve", "--parallelism", "1"}, "a");
    ASSERT_TRUE(WaitForLock(s, "a", a.pid))
        << "the apply of a never held its lock; it ended with " << Wait(a.pid) << ":\n"
        << a.Err();
    // No --lock-timeout for b: had it to wait for a, it would fail at once.
    Proc b = Spawn(s, {"apply", "b", "--auto-approve", "--parallelism", "1"}, "b");
    const bool b_locked = WaitForLock(s, "b", b.pid);
    RunResult a_show = s.Run({"env", "show", "a"});
    const bool overlap = b_locked && a_show.out.find("(pid " + std::to_string(a.pid) +
                                                     ") for apply") != std::string::npos;
    const int b_rc = Wait(b.pid);
    const int a_rc = Wait(a.pid);
    EXPECT_EQ(b_rc, 0) << b.Err();
    EXPECT_EQ(a_rc, 0) << a.Err();
    EXPECT_TRUE(b_locked || b_rc != 0 || Exited(a.pid)) << "the apply of b never held its lock:\n"
                                                        << b.Err();

    for (const std::string env : {"a", "b"}) {
      SCOPED_TRACE("environment " + env);
      std::vector<Json> applies = History(s, env);
      ASSERT_EQ(applies.size(), 1u);
      EXPECT_EQ(applies[0].Str("environment"), env);
      EXPECT_EQ(applies[0].Int("pid"), env == "a" ? a.pid : b.pid);
      EXPECT_EQ(applies[0].Str("status"), "succeeded");
      RunResult plan = s.Run({"plan", env, "--detailed-exitcode"});
      EXPECT_EQ(plan.exit_code, 0) << plan.out.substr(0, 2000) << plan.err;
      EXPECT_EQ(WrongFiles(s.root() + "/" + env, Files(kMany), "0"), 0);
    }
    if (HasFailure()) return;
    if (overlap) return;  // both locks were held at once, and both applies succeeded
    std::printf("attempt %d: a was done before b held its lock; again\n", attempt);
  }
  FAIL() << "in three attempts a was always done before b held its lock";
}

}  // namespace
}  // namespace driftless::test
