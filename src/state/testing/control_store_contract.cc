// The contract of the controller's records (state/control_store.h), run against every backend
// by the same fixture as the rest of the contract (state_store_contract.h).

#include <atomic>
#include <chrono>
#include <deque>
#include <set>
#include <thread>
#include <vector>

#include "base/identity.h"
#include "state/testing/state_store_contract.h"

namespace driftless::state::testing {
namespace {

state::Run NewRun(const std::string& env, const std::string& action, const std::string& commit) {
  state::Run r;
  r.environment = env;
  r.action = action;
  r.commit = commit;
  r.author = "controller";
  return r;
}

int64_t Enqueue(StateStore& store, const state::Run& run, bool supersede = false) {
  Result<EnqueuedRun> q = store.EnqueueRun(run, supersede);
  EXPECT_TRUE(q.ok()) << q.error().message;
  return q.ok() ? q->run.id : 0;
}

std::string StatusOf(StateStore& store, int64_t id) {
  Result<std::optional<state::Run>> r = store.GetRun(id);
  if (!r.ok()) return "<error: " + r.error().message + ">";
  return *r ? (*r)->status : "<none>";
}

std::vector<int64_t> Ids(const std::vector<state::Run>& runs) {
  std::vector<int64_t> out;
  for (const state::Run& r : runs) out.push_back(r.id);
  return out;
}

Token MakeToken(const std::string& name, const std::string& role, char fill) {
  Token t;
  t.name = name;
  t.role = role;
  t.envs = "staging/**";
  t.rights = role == "editor" ? "plan,approve" : "";
  t.hash = std::string(64, fill);
  t.created_by = "ops@host";
  t.created_at = 1000;
  t.expires_at = 5000;
  return t;
}

}  // namespace

TEST_P(StateStoreContract, RunGoesThroughItsLifecycleByCompareAndSet) {
  auto store = OpenStore();
  ASSERT_TRUE(store);
  state::Run run = NewRun("staging", "apply", "c1");
  run.created_at = 100;
  Result<EnqueuedRun> q = store->EnqueueRun(run, false);
  ASSERT_TRUE(q.ok()) << q.error().message;
  EXPECT_GT(q->run.id, 0);
  EXPECT_EQ(q->run.status, "queued");
  EXPECT_TRUE(q->superseded.empty());
  const int64_t id = q->run.id;

  Result<std::optional<state::Run>> got = store->GetRun(id);
  ASSERT_TRUE(got.ok() && *got);
  EXPECT_EQ((*got)->environment, "staging");
  EXPECT_EQ((*got)->action, "apply");
  EXPECT_EQ((*got)->commit, "c1");
  EXPECT_EQ((*got)->author, "controller");
  EXPECT_EQ((*got)->created_at, 100);
  EXPECT_EQ((*got)->started_at, 0);

  Result<bool> moved = store->TransitionRun(id, "queued", "planning");
  ASSERT_TRUE(moved.ok()) << moved.error().message;
  EXPECT_TRUE(*moved);
  // The same compare-and-set again is refused: the run is no longer queued.
  moved = store->TransitionRun(id, "queued", "planning");
  ASSERT_TRUE(moved.ok());
  EXPECT_FALSE(*moved);

  RunUpdate planned;
  planned.plan_hash = "ph1";
  planned.plan_text = "+ file.file/motd";
  planned.plan_json = R"({"changes":1})";
  moved = store->TransitionRun(id, "planning", "planned", planned);
  ASSERT_TRUE(moved.ok() && *moved);
  moved = store->TransitionRun(id, "planned", "applying");
  ASSERT_TRUE(moved.ok() && *moved);
  RunUpdate done;
  done.message = "1 created";
  done.apply_id = 7;
  moved = store->TransitionRun(id, "applying", "applied", done);
  ASSERT_TRUE(moved.ok() && *moved);

  got = store->GetRun(id);
  ASSERT_TRUE(got.ok() && *got);
  const state::Run& r = **got;
  EXPECT_EQ(r.status, "applied");
  EXPECT_EQ(r.plan_hash, "ph1");
  EXPECT_EQ(r.plan_text, "+ file.file/motd");
  EXPECT_EQ(r.plan_json, R"({"changes":1})");
  EXPECT_EQ(r.message, "1 created");
  EXPECT_EQ(r.apply_id, 7);
  EXPECT_GT(r.started_at, 0);
  EXPECT_GE(r.finished_at, r.started_at);

  // Out of the lifecycle: an error, nothing changes.
  Result<bool> bad = store->TransitionRun(id, "applied", "planning");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message, "run " + std::to_string(id) +
                                     " cannot go from applied to planning: not a step of a "
                                     "run's lifecycle");
  EXPECT_EQ(StatusOf(*store, id), "applied");
  Result<bool> missing = store->TransitionRun(id + 1000, "queued", "canceled");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("there is no run"), std::string::npos);
  Result<std::optional<state::Run>> none = store->GetRun(id + 1000);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(*none);

  Result<EnqueuedRun> wrong = store->EnqueueRun(NewRun("staging", "deploy", "c1"), false);
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.error().message.find("\"deploy\" is not plan, apply, destroy or remediation"),
            std::string::npos);
  EXPECT_FALSE(store->EnqueueRun(NewRun("", "plan", "c1"), false).ok());
}

TEST_P(StateStoreContract, OneActiveRunPerEnvironment) {
  auto store = OpenStore();
  ASSERT_TRUE(store);
  const int64_t a = Enqueue(*store, NewRun("staging", "plan", "c1"));
  const int64_t b = Enqueue(*store, NewRun("staging", "destroy", ""));
  const int64_t other = Enqueue(*store, NewRun("production", "plan", "c1"));
  ASSERT_TRUE(*store->TransitionRun(a, "queued", "planning"));
  // A second active run of staging is refused; production is another environment.
  Result<bool> second = store->TransitionRun(b, "queued", "applying");
  ASSERT_TRUE(second.ok()) << second.error().message;
  EXPECT_FALSE(*second);
  EXPECT_EQ(StatusOf(*store, b), "queued");
  EXPECT_TRUE(*store->TransitionRun(other, "queued", "planning"));
  // A waiting run (planned) is not active: the next may start.
  ASSERT_TRUE(*store->TransitionRun(a, "planning", "planned"));
  EXPECT_TRUE(*store->TransitionRun(b, "queued", "applying"));
  // ...and the planned one cannot be applied while that runs.
  EXPECT_FALSE(*store->TransitionRun(a, "planned", "applying"));
  ASSERT_TRUE(*store->TransitionRun(b, "applying", "applied"));
  EXPECT_TRUE(*store->TransitionRun(a, "planned", "applying"));
}

TEST_P(StateStoreContract, StartNextRunIsFirstInFirstOut) {
  auto store = OpenStore();
  ASSERT_TRUE(store);
  Result<std::optional<state::Run>> empty = store->StartNextRun("staging", "planning");
  ASSERT_TRUE(empty.ok()) << empty.error().message;
  EXPECT_FALSE(*empty);
  const int64_t first = Enqueue(*store, NewRun("staging", "plan", "c1"));
  Enqueue(*store, NewRun("production", "plan", "c1"));
  const int64_t second = Enqueue(*store, NewRun("staging", "destroy", ""));
  Result<std::optional<state::Run>> next = store->StartNextRun("staging", "planning");
  ASSERT_TRUE(next.ok() && *next);
  EXPECT_EQ((*next)->id, first);
  EXPECT_EQ((*next)->status, "planning");
  EXPECT_GT((*next)->started_at, 0);
  // One active run: nothing starts until it finishes.
  next = store->StartNextRun("staging", "applying");
  ASSERT_TRUE(next.ok());
  EXPECT_FALSE(*next);
  ASSERT_TRUE(*store->TransitionRun(first, "planning", "no_changes"));
  next = store->StartNextRun("staging", "applying");
  ASSERT_TRUE(next.ok() && *next);
  EXPECT_EQ((*next)->id, second);
  EXPECT_EQ((*next)->status, "applying");
  EXPECT_FALSE(store->StartNextRun("staging", "applied").ok());
}

TEST_P(StateStoreContract, StartRunStartsAtOnceUnlessARunIsActive) {
  auto store = OpenStore();
  ASSERT_TRUE(store);
  state::Run fix = NewRun("staging", "remediation", "c1");
  fix.plan_hash = "ph";
  fix.plan_text = "~ file.file/motd";
  Result<std::optional<state::Run>> started = store->StartRun(fix, "applying");
  ASSERT_TRUE(started.ok()) << started.error().message;
  ASSERT_TRUE(*started);
  EXPECT_GT((*started)->id, 0);
  EXPECT_EQ((*started)->status, "applying");
  EXPECT_EQ((*started)->action, "remediation");
  EXPECT_EQ((*started)->plan_hash, "ph");
  EXPECT_EQ((*started)->plan_text, "~ file.file/motd");
  EXPECT_GT((*started)->started_at, 0);
  EXPECT_EQ((*started)->started_at, (*started)->created_at);
  // While it is active: neither another started run nor the queue's next one.
  const int64_t queued = Enqueue(*store, NewRun("staging", "apply", "c2"));
  Result<std::optional<state::Run>> second = store->StartRun(fix, "applying");
  ASSERT_TRUE(second.ok()) << second.error().message;
  EXPECT_FALSE(*second);
  Result<std::optional<state::Run>> next = store->StartNextRun("staging", "planning");
  ASSERT_TRUE(next.ok());
  EXPECT_FALSE(*next);
  // Another environment is free; and once it finishes, the queue goes on.
  Result<std::optional<state::Run>> other = store->StartRun(NewRun("prod", "plan", ""), "planning");
  ASSERT_TRUE(other.ok() && *other);
  ASSERT_TRUE(*store->TransitionRun((*started)->id, "applying", "applied"));
  next = store->StartNextRun("staging", "planning");
  ASSERT_TRUE(next.ok() && *next);
  EXPECT_EQ((*next)->id, queued);
  // The queue's run, active now, refuses a started one too.
  second = store->StartRun(fix, "applying");
  ASSERT_TRUE(second.ok());
  EXPECT_FALSE(*second);
  EXPECT_FALSE(store->StartRun(fix, "applied").ok());
  EXPECT_FALSE(store->StartRun(NewRun("staging", "deploy", ""), "applying").ok());
}

TEST_P(StateStoreContract, TwoServersNeverBothStartARun) {
  auto stores = OpenStores(6, "");
  ASSERT_EQ(stores.size(), 6u);
  for (int i = 0; i < 3; ++i)
    Enqueue(*stores[0], NewRun("staging", "plan", "c" + std::to_string(i)));
  std::atomic<int> started{0};
  std::atomic<int> failed{0};
  std::vector<std::thread> threads;
  for (auto& s : stores) {
    threads.emplace_back([&started, &failed, store = s.get()] {
      for (int k = 0; k < 5; ++k) {
        Result<std::optional<state::Run>> r = store->StartNextRun("staging", "planning");
        if (!r.ok()) {
          ++failed;
        } else if (*r) {
          ++started;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(started.load(), 1);
  Result<Page<state::Run>> active =
      stores[0]->ListRuns({"staging", {"planning", "applying"}}, 0, 10);
  ASSERT_TRUE(active.ok());
  ASSERT_EQ(active->items.size(), 1u);
  EXPECT_EQ(active->items[0].commit, "c0");  // the oldest
}

TEST_P(StateStoreContract, RacingTransitionsLeaveOneActiveRun) {
  auto stores = OpenStores(6, "");
  ASSERT_EQ(stores.size(), 6u);
  std::vector<int64_t> ids;
  for (size_t i = 0; i < stores.size(); ++i) {
    ids.push_back(Enqueue(*stores[0], NewRun("staging", "destroy", "")));
  }
  // Each server tries to start its own run of the environment at the same time.
  std::atomic<int> moved{0};
  std::atomic<int> failed{0};
  std::vector<std::thread> threads;
  for (size_t i = 0; i < stores.size(); ++i) {
    threads.emplace_back([&moved, &failed, id = ids[i], store = stores[i].get()] {
      Result<bool> r = store->TransitionRun(id, "queued", "applying");
      if (!r.ok()) {
        ++failed;
      } else if (*r) {
        ++moved;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(moved.load(), 1);
  Result<Page<state::Run>> active = stores[0]->ListRuns({"staging", {"applying"}}, 0, 10);
  ASSERT_TRUE(active.ok());
  EXPECT_EQ(active->items.size(), 1u);
}

TEST_P(StateStoreContract, AnApprovedRunIsPlannedAgainOnlyWhenNoOtherRunIsActive) {
  auto store = OpenStore();
  ASSERT_TRUE(store);
  const int64_t waiting = Enqueue(*store, NewRun("staging", "apply", "c1"));
  ASSERT_TRUE(*store->TransitionRun(waiting, "queued", "planning"));
  ASSERT_TRUE(*store->TransitionRun(waiting, "planning", "awaiting_approval"));
  const int64_t other = Enqueue(*store, NewRun("staging", "plan", "c1"));
  ASSERT_TRUE(*store->TransitionRun(other, "queued", "planning"));
  Result<bool> moved = store->TransitionRun(waiting, "awaiting_approval", "planning");
  ASSERT_TRUE(moved.ok()) << moved.error().message;
  EXPECT_FALSE(*moved);  // one active run per environment
  ASSERT_TRUE(*store->TransitionRun(other, "planning", "no_changes"));
  EXPECT_TRUE(*store->TransitionRun(waiting, "awaiting_approval", "planning"));
  EXPECT_EQ(StatusOf(*store, waiting), "planning");
}

TEST_P(StateStoreContract, NewerCommitSupersedesWaitingRuns) {
  auto store = OpenStore();
  ASSERT_TRUE(store);
  const int64_t old_plan = Enqueue(*store, NewRun("staging", "plan", "c1"));
  const int64_t old_apply = Enqueue(*store, NewRun("staging", "apply", "c1"));
  const int64_t awaiting = Enqueue(*store, NewRun("staging", "apply", "c0"));
  ASSERT_TRUE(*store->TransitionRun(awaiting, "queued", "planning"));
  ASSERT_TRUE(*store->TransitionRun(awaiting, "planning", "awaiting_approval"));
  const int64_t destroy = Enqueue(*store, NewRun("staging", "destroy", ""));
  const int64_t elsewhere = Enqueue(*store, NewRun("production", "apply", "c1"));
  const int64_t planning = Enqueue(*store, NewRun("staging", "plan", "c1"));
  ASSERT_TRUE(*store->TransitionRun(planning, "queued", "planning"));
  const int64_t same = Enqueue(*store, NewRun("staging", "plan", "c2"));

  Result<EnqueuedRun> q = store->EnqueueRun(NewRun("staging", "apply", "c2"), true);
  ASSERT_TRUE(q.ok()) << q.error().message;
  EXPECT_EQ(q->superseded, (std::vector<int64_t>{old_plan, old_apply, awaiting}));
  for (int64_t id : {old_plan, old_apply, awaiting}) {
    Result<std::optional<state::Run>> r = store->GetRun(id);
    ASSERT_TRUE(r.ok() && *r);
    EXPECT_EQ((*r)->status, "superseded") << id;
    EXPECT_EQ((*r)->message, "superseded by run " + std::to_string(q->run.id));
    EXPECT_GT((*r)->finished_at, 0);
  }
  // Not superseded: a destroy, another environment, an active run, a run of the same commit.
  EXPECT_EQ(StatusOf(*store, destroy), "queued");
  EXPECT_EQ(StatusOf(*store, elsewhere), "queued");
  EXPECT_EQ(StatusOf(*store, planning), "planning");
  EXPECT_EQ(StatusOf(*store, same), "queued");
  EXPECT_EQ(StatusOf(*store, q->run.id), "queued");
  // Without `supersede` nothing is.
  Result<EnqueuedRun> plain = store->EnqueueRun(NewRun("staging", "plan", "c3"), false);
  ASSERT_TRUE(plain.ok());
  EXPECT_TRUE(plain->superseded.empty());
  EXPECT_EQ(StatusOf(*store, same), "queued");
}

// A new head seen by the fetch: queued once, whoever sees it; again only when the run of it no
// longer stands.
TEST_P(StateStoreContract, ANewHeadIsQueuedOnceUnlessItsRunNoLongerStands) {
  auto store = OpenStore();
  ASSERT_TRUE(store);
  auto queue = [&](const std::string& commit) -> int64_t {
    Result<std::optional<EnqueuedRun>> q =
        store->EnqueueRunUnlessCovered(NewRun("staging", "apply", commit));
    EXPECT_TRUE(q.ok()) << q.error().message;
    return q.ok() && *q ? (*q)->run.id : 0;
  };
  const int64_t first = queue("c1");
  ASSERT_GT(first, 0);
  EXPECT_EQ(queue("c1"), 0) << "covered by the queued run";
  ASSERT_TRUE(*store->TransitionRun(first, "queued", "planning"));
  EXPECT_EQ(queue("c1"), 0) << "covered by the running run";
  ASSERT_TRUE(*store->TransitionRun(first, "planning", "interrupted"));
  const int64_t again = queue("c1");
  EXPECT_GT(again, first) << "an interrupted run covers nothing";
  const int64_t next = queue("c2");
  ASSERT_GT(next, again);
  EXPECT_EQ(StatusOf(*store, again), "superseded");
  EXPECT_EQ(queue("c2"), 0);

  // (Two servers at the same moment: postgres_state_store_test.)
}

TEST_P(StateStoreContract, ListRunsPagesNewestFirstWithFilters) {
  auto store = OpenStore();
  ASSERT_TRUE(store);
  std::vector<int64_t> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(Enqueue(*store, NewRun("staging", "plan", "")));
  const int64_t other = Enqueue(*store, NewRun("production", "plan", ""));
  ASSERT_TRUE(*store->TransitionRun(ids[1], "queued", "canceled"));

  Result<Page<state::Run>> p1 = store->ListRuns({"staging", {}}, 0, 2);
  ASSERT_TRUE(p1.ok()) << p1.error().message;
  EXPECT_EQ(Ids(p1->items), (std::vector<int64_t>{ids[4], ids[3]}));
  ASSERT_NE(p1->next_cursor, 0);
  Result<Page<state::Run>> p2 = store->ListRuns({"staging", {}}, p1->next_cursor, 2);
  ASSERT_TRUE(p2.ok());
  EXPECT_EQ(Ids(p2->items), (std::vector<int64_t>{ids[2], ids[1]}));
  Result<Page<state::Run>> p3 = store->ListRuns({"staging", {}}, p2->next_cursor, 2);
  ASSERT_TRUE(p3.ok());
  EXPECT_EQ(Ids(p3->items), (std::vector<int64_t>{ids[0]}));
  EXPECT_EQ(p3->next_cursor, 0);
  // Exactly a page: no cursor to an empty page.
  Result<Page<state::Run>> exact = store->ListRuns({"staging", {}}, p2->next_cursor, 1);
  ASSERT_TRUE(exact.ok());
  EXPECT_EQ(exact->next_cursor, 0);

  Result<Page<state::Run>> all = store->ListRuns({}, 0, 0);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->items.size(), 6u);
  EXPECT_EQ(all->items[0].id, other);
  Result<Page<state::Run>> canceled = store->ListRuns({"", {"canceled", "applied"}}, 0, 10);
  ASSERT_TRUE(canceled.ok());
  EXPECT_EQ(Ids(canceled->items), (std::vector<int64_t>{ids[1]}));
}

// A list without plans (RunFilter::plans false) has every other field of each run.
TEST_P(StateStoreContract, ListRunsWithoutPlansLeavesOnlyThePlansOut) {
  auto store = OpenStore();
  ASSERT_TRUE(store);
  state::Run run = NewRun("staging", "apply", "c1");
  run.plan_hash = "h1";
  run.plan_text = "+ create file.file.a";
  run.plan_json = "{\"changes\":[]}";
  const int64_t id = Enqueue(*store, run);
  state::RunFilter whole{"staging", {}};
  state::RunFilter light = whole;
  light.plans = false;
  Result<Page<state::Run>> with = store->ListRuns(whole, 0, 10);
  Result<Page<state::Run>> without = store->ListRuns(light, 0, 10);
  ASSERT_TRUE(with.ok() && without.ok());
  ASSERT_EQ(with->items.size(), 1u);
  ASSERT_EQ(without->items.size(), 1u);
  const state::Run& w = with->items[0];
  const state::Run& l = without->items[0];
  EXPECT_EQ(w.plan_text, run.plan_text);
  EXPECT_EQ(w.plan_json, run.plan_json);
  EXPECT_EQ(l.plan_text, "");
  EXPECT_EQ(l.plan_json, "");
  EXPECT_EQ(l.id, id);
  EXPECT_EQ(l.environment, w.environment);
  EXPECT_EQ(l.action, w.action);
  EXPECT_EQ(l.status, w.status);
  EXPECT_EQ(l.commit, w.commit);
  EXPECT_EQ(l.plan_hash, "h1");
  EXPECT_EQ(l.author, w.author);
  EXPECT_EQ(l.created_at, w.created_at);
}

TEST_P(StateStoreContract, ApprovalsAreOnePerPersonPerRun) {
  auto store = OpenStore();
  ASSERT_TRUE(store);
  const int64_t run = Enqueue(*store, NewRun("production", "apply", "c1"));
  Approval a{run, "ph1", "bob", "approved", "looks right", 200};
  Result<bool> added = store->AddApproval(a);
  ASSERT_TRUE(added.ok()) << added.error().message;
  EXPECT_TRUE(*added);
  Approval again{run, "ph1", "bob", "rejected", "changed my mind", 201};
  added = store->AddApproval(again);
  ASSERT_TRUE(added.ok());
  EXPECT_FALSE(*added);
  ASSERT_TRUE(*store->AddApproval({run, "ph1", "alice", "rejected", "", 202}));

  Result<std::vector<Approval>> list = store->ListApprovals(run);
  ASSERT_TRUE(list.ok()) << list.error().message;
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].who, "bob");
  EXPECT_EQ((*list)[0].decision, "approved");
  EXPECT_EQ((*list)[0].comment, "looks right");
  EXPECT_EQ((*list)[0].plan_hash, "ph1");
  EXPECT_EQ((*list)[0].created_at, 200);
  EXPECT_EQ((*list)[1].who, "alice");
  EXPECT_EQ((*list)[1].decision, "rejected");

  Result<bool> unknown = store->AddApproval({run + 100, "ph1", "bob", "approved", "", 0});
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.error().message.find("there is no such run"), std::string::npos);
  Result<bool> bad = store->AddApproval({run, "ph1", "carol", "maybe", "", 0});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("\"maybe\" is not approved or rejected"), std::string::npos);
  Result<std::vector<Approval>> none = store->ListApprovals(run + 100);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST_P(StateStoreContract, TokensAreFoundByHashAndRevokedByName) {
  auto store = OpenStore();
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->CreateToken(MakeToken("ci", "editor", 'a')).ok());
  ASSERT_TRUE(store->CreateToken(MakeToken("alice", "admin", 'b')).ok());

  Result<std::optional<Token>> found = store->FindTokenByHash(std::string(64, 'a'));
  ASSERT_TRUE(found.ok() && *found);
  EXPECT_EQ((*found)->name, "ci");
  EXPECT_EQ((*found)->role, "editor");
  EXPECT_EQ((*found)->envs, "staging/**");
  EXPECT_EQ((*found)->rights, "plan,approve");
  EXPECT_EQ((*found)->created_by, "ops@host");
  EXPECT_EQ((*found)->created_at, 1000);
  EXPECT_EQ((*found)->expires_at, 5000);
  EXPECT_EQ((*found)->revoked_at, 0);
  Result<std::optional<Token>> missing = store->FindTokenByHash(std::string(64, 'z'));
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(*missing);

  Status dup = store->CreateToken(MakeToken("ci", "viewer", 'c'));
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.error().message,
            "a token named ci exists already; revoke it first or choose another --name");
  Status same_hash = store->CreateToken(MakeToken("other", "viewer", 'a'));
  ASSERT_FALSE(same_hash.ok());
  EXPECT_NE(same_hash.error().message.find("hash is known"), std::string::npos);
  EXPECT_FALSE(store->CreateToken(MakeToken("x", "root", 'd')).ok());
  Token short_hash = MakeToken("y", "viewer", 'e');
  short_hash.hash = "abc";
  EXPECT_FALSE(store->CreateToken(short_hash).ok());

  Result<bool> revoked = store->RevokeToken("ci", 3000);
  ASSERT_TRUE(revoked.ok()) << revoked.error().message;
  EXPECT_TRUE(*revoked);
  revoked = store->RevokeToken("ci", 3001);
  ASSERT_TRUE(revoked.ok());
  EXPECT_FALSE(*revoked);
  EXPECT_FALSE(*store->RevokeToken("nobody", 3001));
  found = store->FindTokenByHash(std::string(64, 'a'));
  ASSERT_TRUE(found.ok() && *found);
  EXPECT_EQ((*found)->revoked_at, 3000);
  // A revoked token's name may be used again.
  ASSERT_TRUE(store->CreateToken(MakeToken("ci", "viewer", 'f')).ok());

  Result<std::vector<Token>> list = store->ListTokens();
  ASSERT_TRUE(list.ok()) << list.error().message;
  ASSERT_EQ(list->size(), 3u);
  EXPECT_EQ((*list)[0].name, "alice");
  EXPECT_EQ((*list)[1].name, "ci");
  EXPECT_EQ((*list)[2].name, "ci");
  EXPECT_NE((*list)[1].revoked_at == 0, (*list)[2].revoked_at == 0);
}

TEST_P(StateStoreContract, SessionsAreFoundByHashEndedAndPruned) {
  auto store = OpenStore();
  ASSERT_TRUE(store);
  auto make = [](char fill, int64_t expires) {
    Session s;
    s.hash = std::string(64, fill);
    s.token_hash = std::string(64, 't');
    s.csrf = std::string("csrf-") + fill;
    s.created_at = 1000;
    s.expires_at = expires;
    return s;
  };
  ASSERT_TRUE(store->CreateSession(make('a', 2000)).ok());
  ASSERT_TRUE(store->CreateSession(make('b', 5000)).ok());
  Status dup = store->CreateSession(make('a', 3000));
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.error().message, "cannot store a session: its hash is known already");
  Session bad = make('c', 2000);
  bad.hash = "abc";
  EXPECT_FALSE(store->CreateSession(bad).ok());
  bad = make('c', 2000);
  bad.csrf.clear();
  EXPECT_FALSE(store->CreateSession(bad).ok());
  bad = make('c', 1000);
  EXPECT_FALSE(store->CreateSession(bad).ok());

  Result<std::optional<Session>> found = store->FindSessionByHash(std::string(64, 'a'));
  ASSERT_TRUE(found.ok() && *found) << (found.ok() ? "none" : found.error().message);
  EXPECT_EQ((*found)->token_hash, std::string(64, 't'));
  EXPECT_EQ((*found)->csrf, "csrf-a");
  EXPECT_EQ((*found)->created_at, 1000);
  EXPECT_EQ((*found)->expires_at, 2000);
  Result<std::optional<Session>> missing = store->FindSessionByHash(std::string(64, 'z'));
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(*missing);

  // Another connection (another server on the same state) sees it.
  auto other = OpenStore();
  ASSERT_TRUE(other);
  found = other->FindSessionByHash(std::string(64, 'b'));
  ASSERT_TRUE(found.ok() && *found);

  Result<int64_t> pruned = store->PruneSessions(3000);
  ASSERT_TRUE(pruned.ok()) << pruned.error().message;
  EXPECT_EQ(*pruned, 1);
  found = store->FindSessionByHash(std::string(64, 'a'));
  ASSERT_TRUE(found.ok());
  EXPECT_FALSE(*found);

  Result<bool> deleted = other->DeleteSession(std::string(64, 'b'));
  ASSERT_TRUE(deleted.ok()) << deleted.error().message;
  EXPECT_TRUE(*deleted);
  deleted = store->DeleteSession(std::string(64, 'b'));
  ASSERT_TRUE(deleted.ok());
  EXPECT_FALSE(*deleted);
  found = store->FindSessionByHash(std::string(64, 'b'));
  ASSERT_TRUE(found.ok());
  EXPECT_FALSE(*found);
}

TEST_P(StateStoreContract, RevokingATokenEndsItsSessions) {
  auto store = OpenStore();
  ASSERT_TRUE(store);
  const Token ci = MakeToken("ci", "editor", 'a');
  const Token alice = MakeToken("alice", "admin", 'b');
  ASSERT_TRUE(store->CreateToken(ci).ok());
  ASSERT_TRUE(store->CreateToken(alice).ok());
  auto session = [](char fill, const Token& of) {
    Session s;
    s.hash = std::string(64, fill);
    s.token_hash = of.hash;
    s.csrf = std::string("csrf-") + fill;
    s.created_at = 1000;
    s.expires_at = 9000;
    return s;
  };
  ASSERT_TRUE(store->CreateSession(session('c', ci)).ok());
  ASSERT_TRUE(store->CreateSession(session('d', ci)).ok());
  ASSERT_TRUE(store->CreateSession(session('e', alice)).ok());

  Result<bool> revoked = store->RevokeToken("ci", 3000);
  ASSERT_TRUE(revoked.ok()) << revoked.error().message;
  EXPECT_TRUE(*revoked);
  for (char fill : {'c', 'd'}) {
    Result<std::optional<Session>> found = store->FindSessionByHash(std::string(64, fill));
    ASSERT_TRUE(found.ok()) << found.error().message;
    EXPECT_FALSE(*found) << fill;
  }
  Result<std::optional<Session>> kept = store->FindSessionByHash(std::string(64, 'e'));
  ASSERT_TRUE(kept.ok() && *kept) << "the other token's session was ended too";
  revoked = store->RevokeToken("ci", 3001);
  ASSERT_TRUE(revoked.ok());
  EXPECT_FALSE(*revoked);
}

TEST_P(StateStoreContract, AuditLogAppendsAndPagesNewestFirst) {
  auto store = OpenStore();
  ASSERT_TRUE(store);
  AuditEntry refused;
  refused.time = 10;
  refused.who = "ci";
  refused.action = "run.apply";
  refused.subject = "POST /api/v1/environments/production/runs";
  refused.environment = "production";
  refused.run_id = 4;
  refused.plan_hash = "ph";
  refused.result = "refused";
  refused.reason = "environment production is protected";
  refused.request_id = "req-1";
  Result<int64_t> first = store->AppendAudit(refused);
  ASSERT_TRUE(first.ok()) << first.error().message;
  std::vector<int64_t> ids{*first};
  for (int i = 0; i < 4; ++i) {
    AuditEntry e;
    e.who = i % 2 ? "alice" : "ci";
    e.action = "token.create";
    e.environment = "staging";
    e.result = "allowed";
    Result<int64_t> id = store->AppendAudit(e);
    ASSERT_TRUE(id.ok());
    EXPECT_GT(*id, ids.back());
    ids.push_back(*id);
  }
  Result<Page<AuditEntry>> page = store->ListAudit({}, 0, 3);
  ASSERT_TRUE(page.ok()) << page.error().message;
  ASSERT_EQ(page->items.size(), 3u);
  EXPECT_EQ(page->items[0].id, ids[4]);
  EXPECT_GT(page->items[0].time, 0);
  page = store->ListAudit({}, page->next_cursor, 3);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->items.size(), 2u);
  EXPECT_EQ(page->next_cursor, 0);
  const AuditEntry& e = page->items[1];
  EXPECT_EQ(e.id, ids[0]);
  EXPECT_EQ(e.time, 10);
  EXPECT_EQ(e.who, "ci");
  EXPECT_EQ(e.action, "run.apply");
  EXPECT_EQ(e.environment, "production");
  EXPECT_EQ(e.run_id, 4);
  EXPECT_EQ(e.plan_hash, "ph");
  EXPECT_EQ(e.result, "refused");
  EXPECT_EQ(e.reason, "environment production is protected");
  EXPECT_EQ(e.request_id, "req-1");
  EXPECT_EQ(e.subject, "POST /api/v1/environments/production/runs");

  Result<Page<AuditEntry>> prod = store->ListAudit({"production", ""}, 0, 10);
  ASSERT_TRUE(prod.ok());
  EXPECT_EQ(prod->items.size(), 1u);
  Result<Page<AuditEntry>> alice = store->ListAudit({"", "alice"}, 0, 10);
  ASSERT_TRUE(alice.ok());
  EXPECT_EQ(alice->items.size(), 2u);
  AuditEntry bad;
  bad.action = "x";
  bad.result = "maybe";
  EXPECT_FALSE(store->AppendAudit(bad).ok());
}

TEST_P(StateStoreContract, EventsGrowAreFilteredPrunedAndFeedTheOutbox) {
  auto store = OpenStore();
  ASSERT_TRUE(store);
  Result<int64_t> latest = store->LatestEventId();
  ASSERT_TRUE(latest.ok()) << latest.error().message;
  EXPECT_EQ(*latest, 0);

  OutboxEntry d;
  d.sink = "ops";
  d.environment = "staging";
  d.event_type = "apply.succeeded";
  d.event_id = "e1";
  d.event_json = R"({"id":"e1"})";
  d.created_at = 100;
  d.next_attempt_at = 100;
  std::vector<int64_t> ids;
  const std::vector<std::pair<std::string, std::string>> kinds = {{"apply.succeeded", "staging"},
                                                                  {"drift.detected", "staging"},
                                                                  {"apply.succeeded", "production"},
                                                                  {"drift.resolved", "staging"}};
  for (size_t i = 0; i < kinds.size(); ++i) {
    EventRecord e{0, kinds[i].first, kinds[i].second, R"({"n":)" + std::to_string(i) + "}",
                  static_cast<int64_t>(100 + i * 100)};
    Result<int64_t> id =
        store->AppendEvent(e, i == 0 ? std::vector<OutboxEntry>{d} : std::vector<OutboxEntry>{});
    ASSERT_TRUE(id.ok()) << id.error().message;
    if (!ids.empty()) {
      EXPECT_GT(*id, ids.back());
    }
    ids.push_back(*id);
  }
  Result<std::vector<OutboxEntry>> due = store->DueDeliveries(1000, 10);
  ASSERT_TRUE(due.ok());
  ASSERT_EQ(due->size(), 1u);
  EXPECT_EQ((*due)[0].event_json, R"({"id":"e1"})");
  EXPECT_EQ((*due)[0].sink, "ops");

  Result<std::vector<EventRecord>> all = store->EventsAfter(0, {}, 0);
  ASSERT_TRUE(all.ok()) << all.error().message;
  ASSERT_EQ(all->size(), 4u);
  EXPECT_EQ((*all)[0].id, ids[0]);
  EXPECT_EQ((*all)[0].type, "apply.succeeded");
  EXPECT_EQ((*all)[0].environment, "staging");
  EXPECT_EQ((*all)[0].payload_json, R"({"n":0})");
  EXPECT_EQ((*all)[0].time, 100);
  Result<std::vector<EventRecord>> after = store->EventsAfter(ids[1], {}, 0);
  ASSERT_TRUE(after.ok());
  ASSERT_EQ(after->size(), 2u);
  EXPECT_EQ((*after)[0].id, ids[2]);
  Result<std::vector<EventRecord>> staging = store->EventsAfter(0, {"staging", {}}, 0);
  ASSERT_TRUE(staging.ok());
  EXPECT_EQ(staging->size(), 3u);
  Result<std::vector<EventRecord>> drift =
      store->EventsAfter(0, {"staging", {"drift.detected", "drift.resolved"}}, 1);
  ASSERT_TRUE(drift.ok());
  ASSERT_EQ(drift->size(), 1u);
  EXPECT_EQ((*drift)[0].id, ids[1]);
  EXPECT_EQ(*store->LatestEventId(), ids[3]);

  // Nothing is pruned yet: no reader has missed anything.
  EXPECT_FALSE(*store->EventIdPastRetention(0));
  Result<int64_t> pruned = store->PruneEvents(250);  // events at 100 and 200
  ASSERT_TRUE(pruned.ok()) << pruned.error().message;
  EXPECT_EQ(*pruned, 2);
  all = store->EventsAfter(0, {}, 0);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].id, ids[2]);
  EXPECT_TRUE(*store->EventIdPastRetention(0));
  EXPECT_TRUE(*store->EventIdPastRetention(ids[0]));
  EXPECT_FALSE(*store->EventIdPastRetention(ids[1]));
  EXPECT_FALSE(*store->EventIdPastRetention(ids[3]));
  EXPECT_EQ(*store->PruneEvents(50), 0);
  // Pruning everything keeps the ids growing.
  EXPECT_EQ(*store->PruneEvents(10000), 2);
  EXPECT_EQ(*store->LatestEventId(), ids[3]);
  EXPECT_TRUE(*store->EventIdPastRetention(ids[2]));
  Result<int64_t> next = store->AppendEvent({0, "env.created", "qa", "{}", 0}, {});
  ASSERT_TRUE(next.ok());
  EXPECT_GT(*next, ids[3]);
  all = store->EventsAfter(ids[3], {}, 0);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 1u);
  EXPECT_GT((*all)[0].time, 0);
}

TEST_P(StateStoreContract, EventsAppendedConcurrentlyAreReadInIdOrder) {
  auto stores = OpenStores(4, "");
  ASSERT_EQ(stores.size(), 4u);
  constexpr int kPerThread = 25;
  std::atomic<int> failed{0};
  std::vector<std::thread> threads;
  for (size_t t = 0; t < stores.size(); ++t) {
    threads.emplace_back([&failed, t, store = stores[t].get()] {
      for (int k = 0; k < kPerThread; ++k) {
        EventRecord e{0, "apply.started", "env" + std::to_string(t), "{}", 0};
        if (!store->AppendEvent(e, {}).ok()) ++failed;
      }
    });
  }
  // A reader following along while they write sees every event once, in id order: an id
  // committed after a larger one would be skipped, and the reader would never see them all.
  std::set<int64_t> seen;
  int64_t cursor = 0;
  const int total = kPerThread * static_cast<int>(stores.size());
  auto reader = OpenStore();
  ASSERT_TRUE(reader);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(1);
  while (static_cast<int>(seen.size()) < total && std::chrono::steady_clock::now() < deadline) {
    Result<std::vector<EventRecord>> batch = reader->EventsAfter(cursor, {}, 7);
    ASSERT_TRUE(batch.ok()) << batch.error().message;
    if (batch->empty()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    for (const EventRecord& e : *batch) {
      EXPECT_GT(e.id, cursor);
      cursor = e.id;
      EXPECT_TRUE(seen.insert(e.id).second);
    }
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(static_cast<int>(seen.size()), total);
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(*reader->LatestEventId(), cursor);
}

TEST_P(StateStoreContract, WaitForEventsWakesOnAnEventFromAnotherStore) {
  auto waiter = OpenStore();
  auto writer = OpenStore();
  ASSERT_TRUE(waiter && writer);
  Result<bool> none = waiter->WaitForEvents(0, 0);
  ASSERT_TRUE(none.ok()) << none.error().message;
  EXPECT_FALSE(*none);
  // The waiter waits with a minute's deadline; the writer appends meanwhile (before or after
  // the waiter's first look: either way the waiter must answer true).
  std::atomic<bool> woke{false};
  std::thread t([&] {
    Result<bool> r = waiter->WaitForEvents(0, 60000);
    woke = r.ok() && *r;
  });
  Result<int64_t> id = writer->AppendEvent({0, "env.created", "qa", "{}", 0}, {});
  ASSERT_TRUE(id.ok()) << id.error().message;
  t.join();
  EXPECT_TRUE(woke.load());
  // An event already there answers at once; none after it waits out the (short) timeout.
  EXPECT_TRUE(*waiter->WaitForEvents(*id - 1, 60000));
  EXPECT_FALSE(*waiter->WaitForEvents(*id, 10));
}

TEST_P(StateStoreContract, WebhookDeliveriesAreRememberedOnce) {
  auto store = OpenStore();
  ASSERT_TRUE(store);
  Result<bool> fresh = store->RememberDelivery("github", "d-1", 100);
  ASSERT_TRUE(fresh.ok()) << fresh.error().message;
  EXPECT_TRUE(*fresh);
  EXPECT_FALSE(*store->RememberDelivery("github", "d-1", 150));
  EXPECT_TRUE(*store->RememberDelivery("gitlab", "d-1", 150));
  EXPECT_TRUE(*store->RememberDelivery("github", "d-2", 300));
  Result<int64_t> pruned = store->PruneDeliveries(200);
  ASSERT_TRUE(pruned.ok()) << pruned.error().message;
  EXPECT_EQ(*pruned, 2);
  EXPECT_TRUE(*store->RememberDelivery("github", "d-1", 400));
  EXPECT_FALSE(*store->RememberDelivery("github", "d-2", 400));
}

}  // namespace driftless::state::testing

// --- change notifications ---

namespace driftless::state::testing {
namespace {

// What a listener delivered, read one notification at a time.
class Heard {
 public:
  explicit Heard(ChangeListener& listener) : listener_(listener) {}
  // The payload of the next notification on `channel` (waiting a minute at most: a failure
  // detector), skipping those on other channels; "" with a failure recorded when none came.
  // Losses (`missed`) are allowed.
  std::string Next(const std::string& channel) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(1);
    for (;;) {
      while (!pending_.empty()) {
        Notification n = std::move(pending_.front());
        pending_.pop_front();
        if (n.channel == channel) return n.payload;
      }
      if (std::chrono::steady_clock::now() >= deadline) break;
      Result<Wakeup> w = listener_.Wait(60000);
      if (!w.ok()) continue;  // a lost connection being opened again
      for (Notification& n : w->notifications) pending_.push_back(std::move(n));
    }
    ADD_FAILURE() << "no notification on channel " << channel;
    return "";
  }

 private:
  ChangeListener& listener_;
  std::deque<Notification> pending_;
};

}  // namespace

TEST_P(StateStoreContract, ListenersHearNotificationsOfOtherStoresAfterTheirRowsCommit) {
  auto listening = OpenStore();
  auto writer = OpenStore();
  ASSERT_TRUE(listening && writer);
  Result<std::unique_ptr<ChangeListener>> l =
      listening->Listen({kEventsChannel, kRunsChannel, kFetchChannel});
  ASSERT_TRUE(l.ok()) << l.error().message;
  listening.reset();  // the listener does not need its store
  Heard heard(**l);

  // An event: its id, readable by the time it is heard.
  Result<int64_t> id = writer->AppendEvent({0, "env.created", "qa", "{}", 0}, {});
  ASSERT_TRUE(id.ok()) << id.error().message;
  EXPECT_EQ(heard.Next(kEventsChannel), std::to_string(*id));
  auto reader = OpenStore();
  ASSERT_TRUE(reader);
  Result<std::vector<EventRecord>> events = reader->EventsAfter(*id - 1, {}, 0);
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 1u);

  // A queued run: its environment.
  state::Run run;
  run.environment = "qa";
  run.action = "plan";
  run.author = "ci";
  Result<EnqueuedRun> queued = writer->EnqueueRun(run, false);
  ASSERT_TRUE(queued.ok()) << queued.error().message;
  EXPECT_EQ(heard.Next(kRunsChannel), "qa");
  Result<std::optional<state::Run>> read = reader->GetRun(queued->run.id);
  ASSERT_TRUE(read.ok() && read->has_value());

  // Notify: any payload, in order.
  ASSERT_TRUE(writer->Notify(kFetchChannel, "github push").ok());
  ASSERT_TRUE(writer->Notify(kFetchChannel, "second").ok());
  EXPECT_EQ(heard.Next(kFetchChannel), "github push");
  EXPECT_EQ(heard.Next(kFetchChannel), "second");

  // A channel nobody listens to reaches nobody; nothing left: the wait runs out.
  ASSERT_TRUE(writer->Notify("elsewhere", "x").ok());
  ASSERT_TRUE(writer->Notify(kFetchChannel, "last").ok());
  EXPECT_EQ(heard.Next(kFetchChannel), "last");
  Result<Wakeup> quiet = (*l)->Wait(0);
  ASSERT_TRUE(quiet.ok());
  for (const Notification& n : quiet->notifications) EXPECT_NE(n.channel, "elsewhere");
}

// A cancel asked by another store: recorded only for an active run, announced on `runs` after
// it commits, and listed until the run is no longer active.
TEST_P(StateStoreContract, ACancelRequestIsRecordedForAnActiveRunAndAnnounced) {
  auto runner = OpenStore();
  auto asker = OpenStore();
  ASSERT_TRUE(runner && asker);
  Result<std::unique_ptr<ChangeListener>> l = runner->Listen({kRunsChannel});
  ASSERT_TRUE(l.ok()) << l.error().message;
  Heard heard(**l);
  const int64_t queued = Enqueue(*runner, NewRun("qa", "apply", "c1"));
  EXPECT_EQ(heard.Next(kRunsChannel), "qa");
  const int64_t other = Enqueue(*runner, NewRun("web", "apply", "c1"));
  EXPECT_EQ(heard.Next(kRunsChannel), "web");

  // Queued: not active, nothing recorded (a queued run is canceled by a transition instead).
  Result<bool> asked = asker->RequestCancel(queued);
  ASSERT_TRUE(asked.ok()) << asked.error().message;
  EXPECT_FALSE(*asked);
  Result<std::vector<int64_t>> requests = runner->CancelRequests("");
  ASSERT_TRUE(requests.ok()) << requests.error().message;
  EXPECT_TRUE(requests->empty());

  // Running: recorded, announced, listed for its environment (and for all), status unchanged.
  Result<std::optional<state::Run>> started = runner->StartNextRun("qa", "applying");
  ASSERT_TRUE(started.ok() && started->has_value());
  ASSERT_TRUE(runner->StartNextRun("web", "planning").ok());
  asked = asker->RequestCancel(queued);
  ASSERT_TRUE(asked.ok()) << asked.error().message;
  EXPECT_TRUE(*asked);
  EXPECT_EQ(heard.Next(kRunsChannel), "qa");
  EXPECT_EQ(StatusOf(*runner, queued), "applying");
  requests = runner->CancelRequests("qa");
  ASSERT_TRUE(requests.ok());
  EXPECT_EQ(*requests, std::vector<int64_t>{queued});
  EXPECT_EQ(*runner->CancelRequests(""), std::vector<int64_t>{queued});
  EXPECT_TRUE(runner->CancelRequests("web")->empty());
  ASSERT_TRUE(asker->RequestCancel(other).ok());
  EXPECT_EQ(*runner->CancelRequests(""), (std::vector<int64_t>{queued, other}));

  // Ended: no longer listed, and a request for it records nothing.
  ASSERT_TRUE(*runner->TransitionRun(queued, "applying", "canceled"));
  EXPECT_EQ(*runner->CancelRequests(""), std::vector<int64_t>{other});
  asked = asker->RequestCancel(queued);
  ASSERT_TRUE(asked.ok());
  EXPECT_FALSE(*asked);

  Result<bool> missing = asker->RequestCancel(999999);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("there is no run 999999"), std::string::npos)
      << missing.error().message;
}

TEST_P(StateStoreContract, AnInterruptEndsAWaitAndBadChannelsAreRefused) {
  auto store = OpenStore();
  ASSERT_TRUE(store);
  Result<std::unique_ptr<ChangeListener>> l = store->Listen({kRunsChannel});
  ASSERT_TRUE(l.ok()) << l.error().message;
  std::thread t([&] { (*l)->Interrupt(); });
  bool interrupted = false;
  while (!interrupted) {
    Result<Wakeup> w = (*l)->Wait(60000);
    ASSERT_TRUE(w.ok()) << w.error().message;
    interrupted = w->interrupted;
  }
  t.join();

  Result<std::unique_ptr<ChangeListener>> bad = store->Listen({"Runs; DROP"});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("notification channel 'Runs; DROP' is not"), std::string::npos)
      << bad.error().message;
  Status big = store->Notify(kFetchChannel, std::string(kMaxNotificationPayload + 1, 'x'));
  ASSERT_FALSE(big.ok());
  EXPECT_NE(big.error().message.find("at most 4000"), std::string::npos) << big.error().message;
  EXPECT_FALSE(store->Notify("", "x").ok());
}

}  // namespace driftless::state::testing
