// Many users on a PostgreSQL state, the lock's side: 20 applies of one environment that wait
// for each other (--lock-timeout) run strictly one after the other and all land; a holder killed
// with kill -9 loses its lock — at once on the same host, after its lease (--lease) when it ran
// on another one — and history shows its apply "interrupted" with its pending changes.
//
// The suite is named e2e_postgres_lease so that `ctest -R e2e_postgres_lease` selects it.

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <map>
#include <string>
#include <vector>

#include "e2e/harness.h"
#include "support/postgres.h"

namespace driftless::test {
namespace {

// `count` files in 16 folders.
GenerationRepo Files(int count) { return {.count = count, .grouped = true}; }

// Waits until no session but the caller's is connected to the state's database: the sessions of
// a killed holder are gone, and with them its transaction and row locks.
bool OnlyOurSession(const PgSandbox& s) {
  return PollUntil([&] {
    return QueryValue(s.dsn(),
                      "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                      "AND pid <> pg_backend_pid()") == "0";
  });
}

TEST(e2e_postgres_lease, TwentyWaitingAppliesAreSerialisedAndAllLand) {
  constexpr int kProcs = 20;
  constexpr int kFiles = 100;
  PgSandbox s;
  ASSERT_FALSE(s.uri().empty());
  WriteGenerationRepo(s, Files(kFiles), s.root());
  std::vector<Proc> procs;
  std::map<int64_t, int> gen_of_pid;
  for (int k = 1; k <= kProcs; ++k) {
    procs.push_back(Spawn(
        s,
        {"apply", "--auto-approve", "--lock-timeout", "30m", "--var", "gen=" + std::to_string(k)},
        "apply" + std::to_string(k)));
    gen_of_pid[procs.back().pid] = k;
  }
  for (const Proc& p : procs) EXPECT_EQ(Wait(p.pid), 0) << p.Err();

  std::vector<Json> applies = History(s, "default");
  ASSERT_EQ(applies.size(), static_cast<size_t>(kProcs)) << "none lost";
  ExpectSerialised(applies, kFiles);
  // The last apply decides the content; state agrees with it, and its serial counts every write.
  auto last = gen_of_pid.find(applies.back().Int("pid"));
  ASSERT_NE(last, gen_of_pid.end());
  const std::string gen = std::to_string(last->second);
  EXPECT_EQ(WrongFiles(s.root(), Files(kFiles), gen), 0)
      << "files should all be generation " << gen;
  RunResult plan = s.Pg({"plan", "--detailed-exitcode", "--var", "gen=" + gen});
  EXPECT_EQ(plan.exit_code, 0) << Summary(plan);
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

// kill -9 of the holder on this host, frozen in the middle of its work: its pid is gone, so the
// next apply takes over at once, though the lease had an hour to run.
TEST(e2e_postgres_lease, KilledHolderOnThisHostIsTakenOverAtOnce) {
  constexpr int kFiles = 3000;
  PgSandbox s;
  ASSERT_FALSE(s.uri().empty());
  WriteGenerationRepo(s, Files(kFiles), s.root());
  Proc first =
      Spawn(s, {"apply", "--auto-approve", "--parallelism", "1", "--lease", "1h"}, "first");
  ASSERT_TRUE(FreezeMidApply(s, "default", first.pid))
      << "the first apply was never caught in the middle of its work; it ended with "
      << Wait(first.pid) << ":\n"
      << first.Err();
  kill(first.pid, SIGKILL);
  ASSERT_EQ(Wait(first.pid), -SIGKILL);
  ASSERT_TRUE(OnlyOurSession(s)) << "the killed apply's sessions stayed";
  RunResult next = s.Pg({"apply", "--auto-approve"});
  ASSERT_EQ(next.exit_code, 0) << Summary(next);
  std::vector<Json> applies = History(s, "default");
  ASSERT_EQ(applies.size(), 2u);
  EXPECT_EQ(applies[0].Int("pid"), first.pid);
  EXPECT_EQ(applies[0].Str("status"), "interrupted");
  EXPECT_EQ(applies[1].Str("status"), "succeeded");
  EXPECT_EQ(WrongFiles(s.root(), Files(kFiles), "0"), 0);
}

// kill -9 of a holder that ran on another host (its pid cannot be checked from here): the lock
// stays until its lease runs out; a waiting apply then takes over, and the killed apply is
// "interrupted" with its changes still pending. The lease is an hour, so that the lock is live
// for sure while a newcomer is refused and a waiter is seen waiting; then the test makes it end
// a second later on the server's clock, as if the hour had passed.
TEST(e2e_postgres_lease, KilledHolderOnAnotherHostIsTakenOverAfterItsLease) {
  constexpr int kFiles = 3000;
  PgSandbox s;
  ASSERT_FALSE(s.uri().empty());
  WriteGenerationRepo(s, Files(kFiles), s.root());
  Proc first =
      Spawn(s, {"apply", "--auto-approve", "--parallelism", "1", "--lease", "1h"}, "first");
  ASSERT_TRUE(FreezeMidApply(s, "default", first.pid))
      << "the first apply was never caught in the middle of its work; it ended with "
      << Wait(first.pid) << ":\n"
      << first.Err();
  kill(first.pid, SIGKILL);
  ASSERT_EQ(Wait(first.pid), -SIGKILL);
  ASSERT_TRUE(OnlyOurSession(s)) << "the killed apply's sessions stayed";
  // As if it had run on another machine.
  ASSERT_EQ(Execute(s.dsn(), "UPDATE driftless.locks SET host = 'elsewhere.invalid'"), "");

  RunResult refused = s.Pg({"apply", "--auto-approve"});
  EXPECT_EQ(refused.exit_code, 1) << Summary(refused);
  EXPECT_NE(refused.err.find("is locked by"), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find("@elsewhere.invalid (pid " + std::to_string(first.pid) + ")"),
            std::string::npos)
      << refused.err;

  Proc waiter = Spawn(s, {"apply", "--auto-approve", "--lock-timeout", "30m"}, "waiter");
  ASSERT_TRUE(SaysItWaits(waiter, first.pid));
  ASSERT_EQ(Execute(s.dsn(),
                    "UPDATE driftless.locks SET expires_at = "
                    "floor(extract(epoch FROM clock_timestamp()))::bigint + 1"),
            "");
  ASSERT_EQ(Wait(waiter.pid), 0) << waiter.Err();

  std::vector<Json> applies = History(s, "default");
  ASSERT_EQ(applies.size(), 2u);
  EXPECT_EQ(applies[0].Int("pid"), first.pid);
  EXPECT_EQ(applies[0].Str("status"), "interrupted");
  EXPECT_EQ(applies[1].Str("status"), "succeeded");
  RunResult killed = s.Pg({"history", "show", std::to_string(applies[0].Int("id")), "--json"});
  ASSERT_EQ(killed.exit_code, 0) << Summary(killed);
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
  EXPECT_EQ(WrongFiles(s.root(), Files(kFiles), "0"), 0);
  RunResult plan = s.Pg({"plan", "--detailed-exitcode"});
  EXPECT_EQ(plan.exit_code, 0) << Summary(plan);
}

}  // namespace
}  // namespace driftless::test
