// Several driftless processes on one state file: the environment lock serialises applies of one
// environment, refuses or waits as --lock-timeout says, lets plans through, is taken back from a
// holder that was killed, and never couples two environments.
//
// No test here depends on how fast the machine is. A holder that only has to hold the lock is an
// apply waiting for its confirmation on a terminal: it holds the lock until the test answers. A
// holder that has to be in the middle of its work is frozen (SIGSTOP) once history shows it
// running with changes done and pending, outside a write transaction of the state, and is killed
// while frozen. A waiter is seen waiting by its own words ("waiting up to ...") before the test
// acts on the holder. Holders get a lease of an hour, so that only what the test does ends it.
//
// The suite is named e2e_concurrency so that `ctest -R e2e_concurrency` selects it (ctest knows
// the discovered tests by their GoogleTest names only).

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <cstdint>
#include <map>
#include <regex>
#include <string>
#include <vector>

#include "base/identity.h"
#include "e2e/harness.h"

namespace driftless::test {
namespace {

// --- the repository ---

// `count` files in 16 folders, each depending on the one before in chains of 8.
GenerationRepo Files(int count) { return {.count = count, .grouped = true, .chained = true}; }

constexpr int kFew = 40;     // for holders that wait at their confirmation
constexpr int kMany = 3000;  // for holders caught in the middle of their work

// --- processes ---

// Polls `env show ENV` until it reports the lock held by `pid`; `shown` receives that output.
// False when `pid` exited first or after kPatience.
bool WaitForLock(const Sandbox& s, const std::string& env, int pid, std::string* shown = nullptr) {
  const std::string mark = "(pid " + std::to_string(pid) + ") for ";
  return PollUntil([&] {
           if (Exited(pid)) return true;
           RunResult r = s.Run({"env", "show", env});
           if (r.exit_code != 0 || r.out.find(mark) == std::string::npos) return false;
           if (shown != nullptr) *shown = r.out;
           return true;
         }) &&
         !Exited(pid);
}

// True when `env show ENV` names `pid` as the holder of the lock, now.
bool HoldsLock(const Sandbox& s, const std::string& env, int pid) {
  RunResult r = s.Run({"env", "show", env});
  return r.out.find("(pid " + std::to_string(pid) + ") for ") != std::string::npos;
}

// --- the tests ---

TEST(e2e_concurrency, SecondApplyFailsAtOnceNamingTheHolder) {
  Sandbox s;
  WriteGenerationRepo(s, Files(kFew), s.root());
  PromptHolder first(s, "default", "0");
  ASSERT_TRUE(first.Asking());
  std::string shown;
  ASSERT_TRUE(WaitForLock(s, "default", first.proc.pid(), &shown));

  RunResult second = s.Run({"apply", "--auto-approve"});
  EXPECT_EQ(second.exit_code, 1) << second.out << second.err;
  std::smatch m;
  const std::regex re(R"(environment default is locked by (\S+) \(pid (\d+)\) for apply since )"
                      R"((\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ))");
  ASSERT_TRUE(std::regex_search(second.err, m, re)) << second.err;
  EXPECT_EQ(m[1].str(), CurrentIdentity().UserAtHost());
  EXPECT_EQ(m[2].str(), std::to_string(first.proc.pid()));
  EXPECT_NE(shown.find("locked:    by " + m[1].str() + " (pid " + m[2].str() +
                       ") for apply since " + m[3].str()),
            std::string::npos)
      << "the message should describe the same lock as `env show`:\n"
      << shown;
  EXPECT_NE(second.err.find("--lock-timeout"), std::string::npos)
      << "the message should say how to wait: " << second.err;
  EXPECT_EQ(second.err.find("waiting up to"), std::string::npos)
      << "without --lock-timeout nothing waits: " << second.err;
  EXPECT_EQ(second.out.find("Apply #"), std::string::npos) << "nothing may be applied:\n"
                                                           << second.out;
  EXPECT_TRUE(History(s, "default").empty()) << "the refused apply leaves no trace in history";

  first.Approve();
  EXPECT_EQ(first.proc.Wait(), 0) << first.proc.Screen();
  std::vector<Json> applies = History(s, "default");
  ASSERT_EQ(applies.size(), 1u);
  EXPECT_EQ(applies[0].Int("pid"), first.proc.pid());
  EXPECT_EQ(applies[0].Str("status"), "succeeded");
  RunResult plan = s.Run({"plan", "--detailed-exitcode"});
  EXPECT_EQ(plan.exit_code, 0) << plan.out.substr(0, 2000) << plan.err;
  EXPECT_EQ(WrongFiles(s.root(), Files(kFew), "0"), 0);
}

// A holder that is alive but stuck (here: waiting at its confirmation) keeps its lock until an
// admin breaks it by its id; the holder is fenced from then on, and the audit log says who.
TEST(e2e_concurrency, ForceUnlockReleasesAStuckHoldersLockAndFencesIt) {
  Sandbox s;
  WriteGenerationRepo(s, Files(kFew), s.root());
  PromptHolder first(s, "default", "0");
  ASSERT_TRUE(first.Asking());
  std::string shown;
  ASSERT_TRUE(WaitForLock(s, "default", first.proc.pid(), &shown));
  std::smatch m;
  ASSERT_TRUE(std::regex_search(shown, m, std::regex(R"(\(lock (\d+)\))"))) << shown;
  const std::string id = m[1].str();

  RunResult wrong = s.Run({"force-unlock", "default", id + "0"});
  EXPECT_EQ(wrong.exit_code, 1) << wrong.out << wrong.err;
  EXPECT_NE(wrong.err.find("environment default is locked by lock " + id + " held by " +
                           CurrentIdentity().UserAtHost() + " (pid " +
                           std::to_string(first.proc.pid()) + ") for apply since "),
            std::string::npos)
      << wrong.err;
  EXPECT_NE(wrong.err.find("not by lock " + id + "0"), std::string::npos) << wrong.err;
  EXPECT_TRUE(HoldsLock(s, "default", first.proc.pid())) << "a wrong id releases nothing";

  RunResult broken = s.Run({"force-unlock", "default", id});
  ASSERT_EQ(broken.exit_code, 0) << broken.out << broken.err;
  EXPECT_NE(broken.out.find("Released lock " + id + " of environment default (held by " +
                            CurrentIdentity().UserAtHost() + ", pid " +
                            std::to_string(first.proc.pid()) + ", for apply)"),
            std::string::npos)
      << broken.out;
  EXPECT_FALSE(HoldsLock(s, "default", first.proc.pid()));
  RunResult again = s.Run({"force-unlock", "default", id});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_NE(again.err.find("environment default is not locked"), std::string::npos) << again.err;

  // Answered now, the holder is fenced: it writes nothing.
  first.Approve();
  EXPECT_NE(first.proc.Wait(), 0) << first.proc.Screen();
  EXPECT_EQ(WrongFiles(s.root(), Files(kFew), "0"), kFew) << "the fenced holder created files";
  RunResult next = s.Run({"apply", "--auto-approve", "--var", "gen=0"});
  EXPECT_EQ(next.exit_code, 0) << next.out << next.err;
  EXPECT_EQ(WrongFiles(s.root(), Files(kFew), "0"), 0);

  RunResult audit = s.Run({"audit", "--json"});
  ASSERT_EQ(audit.exit_code, 0) << audit.err;
  Json page = ParseJsonOrFail(audit.out, "audit --json");
  std::vector<std::string> seen;
  for (const Json& e : page.Find("items")->items) {
    EXPECT_EQ(e.Str("action"), "lock.break");
    EXPECT_EQ(e.Str("who"), CurrentIdentity().UserAtHost());
    EXPECT_EQ(e.Str("environment"), "default");
    seen.push_back(e.Str("result"));
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"refused", "allowed", "refused"})) << audit.out;
}

TEST(e2e_concurrency, SecondApplyWithLockTimeoutWaitsThenRuns) {
  Sandbox s;
  WriteGenerationRepo(s, Files(kFew), s.root());
  PromptHolder first(s, "default", "1");
  ASSERT_TRUE(first.Asking());
  Proc second =
      Spawn(s, {"apply", "--auto-approve", "--lock-timeout", "30m", "--var", "gen=2"}, "second");
  ASSERT_TRUE(SaysItWaits(second, first.proc.pid()));
  EXPECT_NE(second.Err().find("waiting up to 1800s for the lock of environment default, held by " +
                              CurrentIdentity().UserAtHost() + " (pid " +
                              std::to_string(first.proc.pid()) + ") for apply since "),
            std::string::npos)
      << second.Err();
  EXPECT_TRUE(HoldsLock(s, "default", first.proc.pid())) << "the waiter took nothing";

  first.Approve();
  EXPECT_EQ(first.proc.Wait(), 0) << first.proc.Screen();
  EXPECT_EQ(Wait(second.pid), 0) << second.Err();

  std::vector<Json> applies = History(s, "default");
  ASSERT_EQ(applies.size(), 2u);
  EXPECT_EQ(applies[0].Int("pid"), first.proc.pid());
  EXPECT_EQ(applies[1].Int("pid"), second.pid);
  ExpectSerialised(applies, kFew);
  RunResult plan = s.Run({"plan", "--detailed-exitcode", "--var", "gen=2"});
  EXPECT_EQ(plan.exit_code, 0) << plan.out.substr(0, 2000) << plan.err;
  EXPECT_EQ(WrongFiles(s.root(), Files(kFew), "2"), 0);
}

TEST(e2e_concurrency, PlanRunsWhileAnApplyHoldsTheLock) {
  Sandbox s;
  WriteGenerationRepo(s, Files(kFew), s.root());
  PromptHolder apply(s, "default", "0");
  ASSERT_TRUE(apply.Asking());
  // Plans take no lock: neither refused nor made to wait.
  RunResult plan = s.Run({"plan", "--json"});
  EXPECT_EQ(plan.exit_code, 0) << plan.err;
  Json j = ParseJsonOrFail(plan.out, "plan --json");
  const Json* changes = j.Find("changes");
  ASSERT_NE(changes, nullptr);
  EXPECT_EQ(changes->items.size(), static_cast<size_t>(kFew));
  RunResult text = s.Run({"plan"});
  EXPECT_EQ(text.exit_code, 0) << text.err;
  EXPECT_EQ(text.err.find("locked"), std::string::npos) << text.err;
  EXPECT_TRUE(HoldsLock(s, "default", apply.proc.pid())) << "the plans ran while it was held";

  apply.Approve();
  EXPECT_EQ(apply.proc.Wait(), 0) << apply.proc.Screen();
  RunResult after = s.Run({"plan", "--detailed-exitcode"});
  EXPECT_EQ(after.exit_code, 0) << after.out.substr(0, 2000) << after.err;
}

TEST(e2e_concurrency, LockOfAKilledHolderIsTakenOverByTheNextApply) {
  Sandbox s;
  WriteGenerationRepo(s, Files(kMany), s.root());
  Proc first =
      Spawn(s, {"apply", "--auto-approve", "--parallelism", "1", "--lease", "1h"}, "first");
  ASSERT_TRUE(FreezeMidApply(s, "default", first.pid))
      << "the first apply was never caught in the middle of its work; it ended with "
      << Wait(first.pid) << ":\n"
      << first.Err();
  kill(first.pid, SIGKILL);
  ASSERT_EQ(Wait(first.pid), -SIGKILL);  // reaped: its pid is gone

  // The lock is still in state, naming the dead process, with an hour of lease left...
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
  Sandbox s;
  WriteGenerationRepo(s, Files(kMany), s.root());
  Proc first =
      Spawn(s, {"apply", "--auto-approve", "--parallelism", "1", "--lease", "1h"}, "first");
  ASSERT_TRUE(FreezeMidApply(s, "default", first.pid))
      << "the first apply was never caught in the middle of its work; it ended with "
      << Wait(first.pid) << ":\n"
      << first.Err();
  // Frozen, it holds the lock as long as the test wants; the waiter finds it live and waits.
  Proc waiter = Spawn(s, {"apply", "--auto-approve", "--lock-timeout", "30m"}, "waiter");
  ASSERT_TRUE(SaysItWaits(waiter, first.pid));
  kill(first.pid, SIGKILL);
  ASSERT_EQ(Wait(first.pid), -SIGKILL);
  EXPECT_EQ(Wait(waiter.pid), 0) << waiter.Err();

  std::vector<Json> applies = History(s, "default");
  ASSERT_EQ(applies.size(), 2u);
  EXPECT_EQ(applies[0].Int("pid"), first.pid);
  EXPECT_EQ(applies[0].Str("status"), "interrupted");
  EXPECT_EQ(applies[1].Int("pid"), waiter.pid);
  EXPECT_EQ(applies[1].Str("status"), "succeeded");
  RunResult plan = s.Run({"plan", "--detailed-exitcode"});
  EXPECT_EQ(plan.exit_code, 0) << plan.out.substr(0, 2000) << plan.err;
  EXPECT_EQ(WrongFiles(s.root(), Files(kMany), "0"), 0);
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
        {"apply", "--auto-approve", "--lock-timeout", "30m", "--var", "gen=" + std::to_string(k)},
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
  // a holds its lock at its confirmation while b is applied from start to end; b has no
  // --lock-timeout, so had it to wait for a, it would fail at once.
  Sandbox s;
  WriteGenerationRepo(s, Files(kFew), s.root() + "/${env}");
  PromptHolder a(s, "a", "0");
  ASSERT_TRUE(a.Asking());
  RunResult b = s.Run({"apply", "b", "--auto-approve"});
  EXPECT_EQ(b.exit_code, 0) << Summary(b);
  EXPECT_TRUE(HoldsLock(s, "a", a.proc.pid())) << "a held its lock all along";
  a.Approve();
  EXPECT_EQ(a.proc.Wait(), 0) << a.proc.Screen();

  for (const std::string env : {"a", "b"}) {
    SCOPED_TRACE("environment " + env);
    std::vector<Json> applies = History(s, env);
    ASSERT_EQ(applies.size(), 1u);
    EXPECT_EQ(applies[0].Str("environment"), env);
    if (env == "a") {
      EXPECT_EQ(applies[0].Int("pid"), a.proc.pid());
    }
    EXPECT_EQ(applies[0].Str("status"), "succeeded");
    RunResult plan = s.Run({"plan", env, "--detailed-exitcode"});
    EXPECT_EQ(plan.exit_code, 0) << plan.out.substr(0, 2000) << plan.err;
    EXPECT_EQ(WrongFiles(s.root() + "/" + env, Files(kFew), "0"), 0);
  }
  // b started after a had taken its lock and finished before a began to apply.
  EXPECT_LE(History(s, "b")[0].Str("finished_at"), History(s, "a")[0].Str("started_at"));
}

}  // namespace
}  // namespace driftless::test
