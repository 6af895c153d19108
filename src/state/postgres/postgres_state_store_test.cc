// The PostgreSQL backend: the shared contract suite on a fresh database per test (tests run in
// parallel against the one test server), and what only this backend has: a schema of its own,
// versioned migrations that concurrent first openers do not race on, masked passwords.

#include "state/postgres/postgres_state_store.h"

#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <poll.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <thread>
#include <vector>

#include "state/postgres/location.h"
#include "state/postgres/pg_conn.h"
#include "state/postgres/schema.h"
#include "state/testing/state_store_contract.h"
#include "support/postgres.h"

namespace driftless::state {
namespace {

using driftless::test::CreateTestDatabase;
using driftless::test::Execute;
using driftless::test::QueryValue;
using testing::StateStoreContract;

class PostgresBackend : public testing::Backend {
 public:
  PostgresBackend() : dsn_(CreateTestDatabase("dl_state")) {}
  std::unique_ptr<StateStore> Open() override {
    if (dsn_.empty()) return nullptr;  // CreateTestDatabase recorded the failure
    auto store = PostgresStateStore::Open(dsn_);
    if (!store.ok()) {
      ADD_FAILURE() << store.error().message;
      return nullptr;
    }
    return std::move(*store);
  }
  void ExpireLease(const std::string& env) override {
    for (char ch : env) ASSERT_TRUE(std::isalnum(static_cast<unsigned char>(ch))) << env;
    EXPECT_EQ(Execute(dsn_, "UPDATE driftless.locks SET expires_at = 0 WHERE env = '" + env + "'"),
              "");
  }

 private:
  std::string dsn_;
};

INSTANTIATE_TEST_SUITE_P(Postgres, StateStoreContract,
                         ::testing::Values(testing::BackendFactory{
                             "postgres", [] { return std::make_unique<PostgresBackend>(); }}),
                         testing::BackendName);

// Several servers: an environment has one owner at a time; another takes it only once the
// owner's lease ran out, with a larger token; the old owner's fenced run writes then fail and
// write nothing, and it can no longer renew it.
TEST(PostgresStateStore, OwnershipIsOneAtATimeAndFencesTheRunsOfALostOne) {
  std::string dsn = CreateTestDatabase("dl_state");
  ASSERT_FALSE(dsn.empty());
  auto a = PostgresStateStore::Open(dsn);
  auto b = PostgresStateStore::Open(dsn);
  ASSERT_TRUE(a.ok() && b.ok());
  ServerRecord sa{"a", "host", 1, 0, 0}, sb{"b", "host", 2, 0, 0};
  ASSERT_TRUE((*a)->Heartbeat(sa, 60000).ok());
  Result<std::vector<ServerRecord>> live = (*b)->Heartbeat(sb, 60000);
  ASSERT_TRUE(live.ok());
  ASSERT_EQ(live->size(), 2u);
  EXPECT_EQ((*live)[0].id, "a");  // sorted by id, this server among them
  EXPECT_EQ((*live)[1].id, "b");
  EXPECT_EQ((*live)[1].pid, 2);
  // A heartbeat that has run out is not alive: it is not counted in anyone's share.
  ServerRecord sc{"c", "host", 3, 0, 0};
  ASSERT_TRUE((*b)->Heartbeat(sc, -1).ok());
  live = (*a)->Heartbeat(sa, 60000);
  ASSERT_TRUE(live.ok());
  ASSERT_EQ(live->size(), 2u);
  EXPECT_EQ((*live)[0].id, "a");
  EXPECT_EQ((*live)[1].id, "b");
  Result<std::optional<Ownership>> mine = (*a)->TakeOwnership("web", "a", 60000);
  ASSERT_TRUE(mine.ok() && mine->has_value());
  Result<std::optional<Ownership>> refused = (*b)->TakeOwnership("web", "b", 60000);
  ASSERT_TRUE(refused.ok());
  EXPECT_FALSE(refused->has_value()) << "a live owner keeps it";
  state::Run run;
  run.environment = "web";
  run.action = "apply";
  run.author = "controller";
  Result<EnqueuedRun> queued = (*b)->EnqueueRun(run, false);
  ASSERT_TRUE(queued.ok());
  (*a)->SetRunFence("web", (*mine)->token);
  auto started = (*a)->StartNextRun("web", "planning");
  ASSERT_TRUE(started.ok() && started->has_value()) << "the owner starts its runs";
  // a's lease runs out (as if an hour passed); b takes over with a larger token.
  ASSERT_EQ(Execute(dsn, "UPDATE driftless.owners SET expires_ms = 0"), "");
  Result<std::optional<Ownership>> taken = (*b)->TakeOwnership("web", "b", 60000);
  ASSERT_TRUE(taken.ok() && taken->has_value());
  EXPECT_GT((*taken)->token, (*mine)->token);
  Result<bool> moved = (*a)->TransitionRun(queued->run.id, "planning", "planned");
  ASSERT_FALSE(moved.ok());
  EXPECT_NE(moved.error().message.find("lost the ownership of environment web: taken over by "
                                       "server b"),
            std::string::npos)
      << moved.error().message;
  EXPECT_EQ(QueryValue(dsn, "SELECT status FROM driftless.runs"), "planning");
  // Its watch's drift records are fenced too: nothing written.
  ASSERT_TRUE((*b)->GetOrCreateEnvironment("web").ok());
  Result<std::vector<DriftRecord>> drift =
      (*a)->ObserveDrift("web", {{"file.file/x", "- old\n+ new", ""}}, {}, "", 100);
  ASSERT_FALSE(drift.ok());
  EXPECT_NE(drift.error().message.find("lost the ownership of environment web"), std::string::npos)
      << drift.error().message;
  EXPECT_FALSE((*a)->CountRemediation("web", "file.file/x").ok());
  EXPECT_EQ(QueryValue(dsn, "SELECT count(*) FROM driftless.drift"), "0");
  drift = (*b)->ObserveDrift("web", {{"file.file/x", "- old\n+ new", ""}}, {}, "", 100);
  ASSERT_TRUE(drift.ok()) << "another environment's or an unfenced store's are not";
  Result<std::vector<Ownership>> renewed = (*a)->RenewOwnerships("a", 60000);
  ASSERT_TRUE(renewed.ok());
  EXPECT_TRUE(renewed->empty());
  (*b)->SetRunFence("web", (*taken)->token);
  moved = (*b)->TransitionRun(queued->run.id, "planning", "interrupted");
  ASSERT_TRUE(moved.ok() && *moved);
  // Deregistering gives everything back at once.
  ASSERT_TRUE((*b)->Deregister("b").ok());
  EXPECT_EQ(QueryValue(dsn, "SELECT count(*) FROM driftless.owners"), "0");
}

TEST(PostgresStateStore, MigrationsRunOnceWhenManyOpenAtOnce) {
  std::string dsn = CreateTestDatabase("dl_state");
  ASSERT_FALSE(dsn.empty());
  constexpr int kThreads = 8;
  std::atomic<int> ready{0};
  std::vector<std::string> errors(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      ++ready;
      while (ready.load() < kThreads) std::this_thread::yield();
      auto store = PostgresStateStore::Open(dsn);
      if (!store.ok()) errors[static_cast<size_t>(i)] = store.error().message;
    });
  }
  for (auto& t : threads) t.join();
  for (const std::string& e : errors) EXPECT_EQ(e, "");
  const std::string latest = std::to_string(pg_detail::LatestSchemaVersion());
  EXPECT_EQ(QueryValue(dsn, "SELECT count(*) FROM driftless.schema_migrations"), latest);
  EXPECT_EQ(QueryValue(dsn, "SELECT max(version) FROM driftless.schema_migrations"), latest);
  // Every table in the schema of its own, nothing in public.
  EXPECT_EQ(QueryValue(dsn,
                       "SELECT string_agg(table_name, ',' ORDER BY table_name) FROM "
                       "information_schema.tables WHERE table_schema = 'driftless'"),
            "applies,approvals,audit,changes,drift,environments,event_retention,events,"
            "lock_tokens,locks,outbox,owners,resources,runs,schema_migrations,servers,sessions,"
            "tokens,"
            "webhook_deliveries");
  EXPECT_EQ(QueryValue(dsn,
                       "SELECT count(*) FROM information_schema.tables WHERE "
                       "table_schema = 'public'"),
            "0");
}

TEST(PostgresStateStore, AuditLogRefusesUpdateDeleteAndTruncate) {
  std::string dsn = CreateTestDatabase("dl_state");
  ASSERT_FALSE(dsn.empty());
  auto store = PostgresStateStore::Open(dsn);
  ASSERT_TRUE(store.ok()) << store.error().message;
  AuditEntry e;
  e.who = "ci";
  e.action = "run.apply";
  e.result = "refused";
  e.reason = "no right";
  ASSERT_TRUE((*store)->AppendAudit(e).ok());
  for (const char* sql : {"UPDATE driftless.audit SET result = 'allowed'",
                          "DELETE FROM driftless.audit", "TRUNCATE driftless.audit"}) {
    EXPECT_NE(Execute(dsn, sql).find("the audit log is append-only"), std::string::npos) << sql;
  }
  EXPECT_EQ(QueryValue(dsn, "SELECT result FROM driftless.audit"), "refused");
}

TEST(PostgresStateStore, AppendedEventsNotifyListeners) {
  std::string dsn = CreateTestDatabase("dl_state");
  ASSERT_FALSE(dsn.empty());
  auto store = PostgresStateStore::Open(dsn);
  ASSERT_TRUE(store.ok()) << store.error().message;
  PGconn* listener = PQconnectdb(dsn.c_str());
  ASSERT_EQ(PQstatus(listener), CONNECTION_OK) << PQerrorMessage(listener);
  PQclear(PQexec(listener, "LISTEN driftless_events"));
  Result<int64_t> id = (*store)->AppendEvent({0, "apply.started", "staging", "{}", 0}, {});
  ASSERT_TRUE(id.ok()) << id.error().message;
  // Wait for the notification (a minute is a failure detector, not a timing assertion).
  std::string payload;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(1);
  while (payload.empty() && std::chrono::steady_clock::now() < deadline) {
    pollfd fd{PQsocket(listener), POLLIN, 0};
    poll(&fd, 1, 1000);
    ASSERT_EQ(PQconsumeInput(listener), 1) << PQerrorMessage(listener);
    while (PGnotify* n = PQnotifies(listener)) {
      if (std::string(n->relname) == "driftless_events") payload = n->extra;
      PQfreemem(n);
    }
  }
  PQfinish(listener);
  EXPECT_EQ(payload, std::to_string(*id));
}

TEST(PostgresStateStore, RefusesASchemaFromANewerDriftless) {
  std::string dsn = CreateTestDatabase("dl_state");
  ASSERT_FALSE(dsn.empty());
  ASSERT_TRUE(PostgresStateStore::Open(dsn).ok());
  ASSERT_EQ(Execute(dsn,
                    "INSERT INTO driftless.schema_migrations (version, description) "
                    "VALUES (99, 'from the future')"),
            "");
  auto newer = PostgresStateStore::Open(dsn);
  ASSERT_FALSE(newer.ok());
  EXPECT_EQ(newer.error().message,
            "state " + dsn + " has schema version 99 but this driftless knows versions up to " +
                std::to_string(pg_detail::LatestSchemaVersion()) +
                ": it was written by a newer driftless; upgrade driftless to use it");
}

TEST(PostgresStateStore, OpensAUriAndKeepsHostileTextAsData) {
  std::string dsn = CreateTestDatabase("dl_state");
  ASSERT_FALSE(dsn.empty());
  std::string uri = test::ToUri(dsn);
  ASSERT_TRUE(IsPostgresUri(uri)) << uri;
  auto opened = PostgresStateStore::Open(uri);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  PostgresStateStore& store = **opened;
  // Quotes, semicolons and array syntax are values, never SQL.
  const std::string env = "prod'; DROP TABLE driftless.resources; --";
  ASSERT_TRUE(store.GetOrCreateEnvironment(env).ok());
  auto lock = store.AcquireLock(env, CurrentIdentity(), "apply", 0);
  ASSERT_TRUE(lock.ok()) << lock.error().message;
  ResourceState r;
  r.address = "file.file/{a,b}";
  r.kind = "file.file";
  r.name = "{a,b}";
  r.attrs_json = R"({"q":"it's \"quoted\" \\ {x}"})";
  r.depends_on = {"", "NULL", "a,b", "{c}", "d\"e", "f\\g", " sp ace ", "ünï"};
  auto id = store.BeginApply(*lock, ApplyRecord{}, {{r.address, "create", "pending", "", "'"}});
  ASSERT_TRUE(id.ok()) << id.error().message;
  ChangeResult done;
  done.address = r.address;
  done.status = "done";
  done.new_state = r;
  Status s = store.RecordResults(*lock, *id, {done});
  ASSERT_TRUE(s.ok()) << s.error().message;
  auto got = store.GetResource(env, r.address);
  ASSERT_TRUE(got.ok()) << got.error().message;
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ((*got)->attrs_json, r.attrs_json);
  EXPECT_EQ((*got)->depends_on, r.depends_on);
  EXPECT_EQ((*got)->name, "{a,b}");
  ASSERT_TRUE(store.MoveResource(*lock, r.address, "file.file/x'y").ok());
  EXPECT_EQ(store.ListResources(env)->at(0).address, "file.file/x'y");
  auto envs = store.ListEnvironments();
  ASSERT_EQ(envs->size(), 1u);
  EXPECT_EQ((*envs)[0].name, env);
}

// A writer frozen inside a transaction keeps the lock row locked; an acquirer does not hang on
// it but reports the holder.
TEST(PostgresStateStore, AcquireDoesNotHangOnAFrozenWriter) {
  std::string dsn = CreateTestDatabase("dl_state");
  ASSERT_FALSE(dsn.empty());
  auto store = PostgresStateStore::Open(dsn);
  ASSERT_TRUE(store.ok()) << store.error().message;
  auto held =
      (*store)->AcquireLock("prod", Identity{"alice", "elsewhere.example", 4242}, "apply", 0);
  ASSERT_TRUE(held.ok()) << held.error().message;
  PGconn* frozen = PQconnectdb(dsn.c_str());
  ASSERT_EQ(PQstatus(frozen), CONNECTION_OK);
  PGresult* r =
      PQexec(frozen, "BEGIN; SELECT token FROM driftless.locks WHERE env = 'prod' FOR UPDATE");
  EXPECT_EQ(PQresultStatus(r), PGRES_TUPLES_OK);
  PQclear(r);
  auto start = std::chrono::steady_clock::now();
  auto refused = (*store)->AcquireLock("prod", CurrentIdentity(), "apply", 0);
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().message.rfind(
                "environment prod is locked by alice@elsewhere.example (pid 4242) for apply", 0),
            0u)
      << refused.error().message;
  EXPECT_LT(took, std::chrono::minutes(1)) << "a failure detector: it waits 2 s (lock_timeout)";
  PQfinish(frozen);  // ends the frozen transaction
  auto again = (*store)->AcquireLock("prod", CurrentIdentity(), "apply", 0);
  EXPECT_FALSE(again.ok());  // alice's lease is still live
}

TEST(PostgresStateStore, ListingsAreInByteOrder) {
  std::string dsn = CreateTestDatabase("dl_state");
  ASSERT_FALSE(dsn.empty());
  auto store = PostgresStateStore::Open(dsn);
  ASSERT_TRUE(store.ok());
  for (const char* e : {"b", "B", "a", "_x", "ä"}) {
    ASSERT_TRUE((*store)->GetOrCreateEnvironment(e).ok());
  }
  auto envs = (*store)->ListEnvironments();
  ASSERT_TRUE(envs.ok());
  std::vector<std::string> names;
  for (const auto& e : *envs) names.push_back(e.name);
  EXPECT_EQ(names, (std::vector<std::string>{"B", "_x", "a", "b", "ä"}));
}

TEST(PostgresLocation, PasswordsAreMaskedEverywhere) {
  EXPECT_EQ(MaskPassword("postgres://app:s3cr%40t@db.example:5432/state?sslmode=require"),
            "postgres://app:***@db.example:5432/state?sslmode=require");
  EXPECT_EQ(MaskPassword("postgresql://app@db/state?password=s3cret&sslmode=disable"),
            "postgresql://app@db/state?password=***&sslmode=disable");
  EXPECT_EQ(MaskPassword("postgresql://db/state"), "postgresql://db/state");
  EXPECT_EQ(MaskPassword("host=db password=s3cret dbname=state"),
            "host=db password=*** dbname=state");
  EXPECT_EQ(MaskPassword("host=db password = 's3 cr\\'et' dbname=state"),
            "host=db password = *** dbname=state");
  EXPECT_TRUE(IsPostgresUri("postgres://x"));
  EXPECT_TRUE(IsPostgresUri("POSTGRESQL://x"));
  EXPECT_FALSE(IsPostgresUri("/var/lib/state.db"));
  EXPECT_FALSE(IsPostgresUri("postgres.db"));

  // A failed connection names the location without its password.
  auto uri =
      PostgresStateStore::Open("postgresql://alice:s3cret@127.0.0.1:1/state?connect_timeout=2");
  ASSERT_FALSE(uri.ok());
  EXPECT_NE(uri.error().message.find("postgresql://alice:***@127.0.0.1:1/state"), std::string::npos)
      << uri.error().message;
  EXPECT_EQ(uri.error().message.find("s3cret"), std::string::npos) << uri.error().message;
  auto kv = PostgresStateStore::Open(
      "host=/nonexistent-driftless port=1 user=bob password=s3cret dbname=state");
  ASSERT_FALSE(kv.ok());
  EXPECT_NE(kv.error().message.find("password=***"), std::string::npos) << kv.error().message;
  EXPECT_EQ(kv.error().message.find("s3cret"), std::string::npos) << kv.error().message;
}

// --- change notifications: what only the PostgreSQL listener has ---

// Waits (a minute at most: a failure detector) for the first wait that reports anything; the
// errors on the way (the listener connecting again) are collected in `errors`.
Result<Wakeup> FirstWakeup(ChangeListener& l, std::vector<std::string>* errors) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(1);
  while (std::chrono::steady_clock::now() < deadline) {
    Result<Wakeup> w = l.Wait(60000);
    if (!w.ok()) {
      errors->push_back(w.error().message);
      continue;
    }
    if (!w->empty()) return w;
  }
  return MakeError("nothing reported within a minute");
}

std::string ListenerBackends(const std::string& dsn) {
  return QueryValue(dsn,
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                    "'driftless listener' AND datname = current_database()");
}

// Stores share the process's sessions: a server with a watch (a store) per environment holds
// as many PostgreSQL connections as statements run at once, not one per store. A session ended
// while idle is not handed out again.
TEST(PostgresStateStore, StoresShareSessionsAndDropOnesEndedWhileIdle) {
  std::string dsn = CreateTestDatabase("dl_state");
  ASSERT_FALSE(dsn.empty());
  const std::string sessions =
      "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND "
      "application_name = 'driftless'";
  std::vector<std::unique_ptr<PostgresStateStore>> stores;
  for (int i = 0; i < 40; ++i) {
    auto store = PostgresStateStore::Open(dsn);
    ASSERT_TRUE(store.ok()) << store.error().message;
    ASSERT_TRUE((*store)->GetOrCreateEnvironment("env" + std::to_string(i)).ok());
    stores.push_back(std::move(*store));
  }
  for (auto& store : stores) ASSERT_TRUE(store->GetEnvironment("env0").ok());
  EXPECT_EQ(QueryValue(dsn, sessions), "1") << "40 stores used one after another";

  // Every idle session ended by the server (a restart, an administrator): the next statement
  // connects again instead of failing.
  EXPECT_NE(QueryValue(dsn,
                       "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE "
                       "datname = current_database() AND application_name = 'driftless'"),
            "0");
  while (QueryValue(dsn, sessions) != "0") std::this_thread::yield();
  for (auto& store : stores) {
    Result<std::optional<Environment>> row = store->GetEnvironment("env3");
    ASSERT_TRUE(row.ok()) << row.error().message;
    EXPECT_TRUE(row->has_value());
  }
  EXPECT_EQ(QueryValue(dsn, sessions), "1");
}

TEST(PostgresListener, ATerminatedConnectionIsReportedAsMissedAndOpenedAgain) {
  std::string dsn = CreateTestDatabase("dl_state");
  ASSERT_FALSE(dsn.empty());
  auto store = PostgresStateStore::Open(dsn);
  ASSERT_TRUE(store.ok()) << store.error().message;
  Result<std::unique_ptr<ChangeListener>> l = (*store)->Listen({kEventsChannel, kFetchChannel});
  ASSERT_TRUE(l.ok()) << l.error().message;
  EXPECT_EQ(ListenerBackends(dsn), "1");
  EXPECT_EQ(QueryValue(dsn,
                       "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE "
                       "application_name = 'driftless listener' AND datname = current_database()"),
            "1");
  // Appended while nobody listens: its notification is lost, and the loss is what is told.
  Result<int64_t> id = (*store)->AppendEvent({0, "env.created", "qa", "{}", 0}, {});
  ASSERT_TRUE(id.ok()) << id.error().message;
  std::vector<std::string> errors;
  Result<Wakeup> w = FirstWakeup(**l, &errors);
  ASSERT_TRUE(w.ok()) << w.error().message;
  EXPECT_TRUE(w->missed);
  EXPECT_TRUE(errors.empty()) << errors.front();  // the server is up: back at the first try
  EXPECT_EQ(ListenerBackends(dsn), "1");
  // Listening again on every channel.
  ASSERT_TRUE((*store)->Notify(kFetchChannel, "after").ok());
  w = FirstWakeup(**l, &errors);
  ASSERT_TRUE(w.ok()) << w.error().message;
  EXPECT_FALSE(w->missed);
  ASSERT_EQ(w->notifications.size(), 1u);
  EXPECT_EQ(w->notifications[0].channel, "fetch");
  EXPECT_EQ(w->notifications[0].payload, "after");
}

TEST(PostgresListener, AStateThatCannotBeReachedFailsTheWaitsUntilItIsBack) {
  std::string dsn = CreateTestDatabase("dl_state");
  ASSERT_FALSE(dsn.empty());
  const std::string name = QueryValue(dsn, "SELECT current_database()");
  auto store = PostgresStateStore::Open(dsn);
  ASSERT_TRUE(store.ok()) << store.error().message;
  Result<std::unique_ptr<ChangeListener>> l = (*store)->Listen({kRunsChannel});
  ASSERT_TRUE(l.ok()) << l.error().message;
  store->reset();
  // The database goes away (its sessions ended with it): every attempt to connect fails.
  const std::string server = driftless::test::TestServerDsn();
  ASSERT_EQ(Execute(server, "DROP DATABASE " + name + " WITH (FORCE)"), "");
  Result<Wakeup> lost = (*l)->Wait(60000);
  ASSERT_FALSE(lost.ok());
  EXPECT_NE(lost.error().message.find("lost the notification connection to state"),
            std::string::npos)
      << lost.error().message;
  EXPECT_NE(lost.error().message.find(name), std::string::npos) << lost.error().message;
  // Back: the next successful wait says that something may have been missed.
  ASSERT_EQ(Execute(server, "CREATE DATABASE " + name), "");
  std::vector<std::string> errors;
  Result<Wakeup> w = FirstWakeup(**l, &errors);
  ASSERT_TRUE(w.ok()) << w.error().message;
  EXPECT_TRUE(w->missed);
  EXPECT_EQ(ListenerBackends(dsn), "1");
}

// Ids come from a sequence, drawn before the commit: without care, event N+1 could commit while
// N is still in flight, and a reader that moved past N+1 would never see N. Appends take an
// advisory lock held to their commit, so the second writer cannot even draw its id until the
// first has committed. Shown with two real writers, the first held inside its transaction (by
// a table lock on the outbox, which it writes after drawing its id).
TEST(PostgresStateStore, ConcurrentEventWritersCommitTheirIdsInOrder) {
  std::string dsn = CreateTestDatabase("dl_state");
  ASSERT_FALSE(dsn.empty());
  auto first = PostgresStateStore::Open(dsn);
  auto second = PostgresStateStore::Open(dsn);
  auto reader = PostgresStateStore::Open(dsn);
  ASSERT_TRUE(first.ok() && second.ok() && reader.ok());
  PGconn* blocker = PQconnectdb(dsn.c_str());
  ASSERT_EQ(PQstatus(blocker), CONNECTION_OK);
  auto exec = [&](const char* sql) {
    PGresult* r = PQexec(blocker, sql);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    return ok;
  };
  ASSERT_TRUE(exec("BEGIN; LOCK TABLE driftless.outbox IN EXCLUSIVE MODE"));
  // Waits (a minute at most) until `n` sessions wait for a lock of kind `event`.
  auto waiting = [&](const std::string& event, const std::string& n) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(1);
    while (std::chrono::steady_clock::now() < deadline) {
      if (QueryValue(dsn,
                     "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = "
                     "'Lock' AND wait_event = '" +
                         event + "'") == n) {
        return true;
      }
    }
    return false;
  };
  OutboxEntry delivery;
  delivery.sink = "hook";
  delivery.environment = "qa";
  delivery.event_type = "env.created";
  delivery.event_id = "e1";
  delivery.event_json = "{}";
  Result<int64_t> a = MakeError("not run");
  Result<int64_t> b = MakeError("not run");
  std::thread ta([&] { a = (*first)->AppendEvent({0, "env.created", "qa", "{}", 0}, {delivery}); });
  ASSERT_TRUE(waiting("relation", "1"));  // the first drew its id, waits to write its delivery
  std::thread tb([&] { b = (*second)->AppendEvent({0, "env.destroyed", "qa", "{}", 0}, {}); });
  ASSERT_TRUE(waiting("advisory", "1"));  // the second waits before drawing one
  // Nothing is visible yet, and the second could not draw an id past the first's.
  EXPECT_EQ(QueryValue(dsn, "SELECT count(*) FROM driftless.events"), "0");
  EXPECT_EQ(QueryValue(dsn, "SELECT last_value FROM driftless.events_id_seq"), "1");
  ASSERT_TRUE(exec("COMMIT"));
  ta.join();
  tb.join();
  PQfinish(blocker);
  ASSERT_TRUE(a.ok()) << a.error().message;
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_LT(*a, *b);
  Result<std::vector<EventRecord>> events = (*reader)->EventsAfter(0, {}, 0);
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 2u);
  EXPECT_EQ((*events)[0].id, *a);
  EXPECT_EQ((*events)[1].id, *b);
}

// Two servers that see one new head at the same moment queue one run between them: each takes
// the environment's queue lock (advisory, to its commit) before it reads the newest run. Shown
// with the lock held by a third session until both wait for it.
TEST(PostgresStateStore, TwoServersSeeingOneHeadQueueOneRun) {
  std::string dsn = CreateTestDatabase("dl_state");
  ASSERT_FALSE(dsn.empty());
  auto first = PostgresStateStore::Open(dsn);
  auto second = PostgresStateStore::Open(dsn);
  ASSERT_TRUE(first.ok() && second.ok());
  PGconn* blocker = PQconnectdb(dsn.c_str());
  ASSERT_EQ(PQstatus(blocker), CONNECTION_OK);
  auto exec = [&](const char* sql) {
    PGresult* r = PQexec(blocker, sql);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    PQclear(r);
    return ok;
  };
  ASSERT_TRUE(
      exec("BEGIN; SELECT pg_advisory_xact_lock(hashtext('driftless.runs'), "
           "hashtext('web'))"));
  state::Run run;
  run.environment = "web";
  run.action = "apply";
  run.commit = "c1";
  run.author = "controller";
  Result<std::optional<EnqueuedRun>> a = MakeError("not run");
  Result<std::optional<EnqueuedRun>> b = MakeError("not run");
  std::thread ta([&] { a = (*first)->EnqueueRunUnlessCovered(run); });
  std::thread tb([&] { b = (*second)->EnqueueRunUnlessCovered(run); });
  // Both wait (a minute at most) for the queue lock before they read anything. Only this
  // test's database counts: other tests beside it (ctest -j) wait for advisory locks too.
  bool both = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(1);
  while (!both && std::chrono::steady_clock::now() < deadline) {
    both = QueryValue(dsn,
                      "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                      "AND wait_event = 'advisory' AND datname = current_database()") == "2";
  }
  EXPECT_TRUE(both);
  ASSERT_TRUE(exec("COMMIT"));
  ta.join();
  tb.join();
  PQfinish(blocker);
  ASSERT_TRUE(a.ok()) << a.error().message;
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_NE(a->has_value(), b->has_value()) << "exactly one of them queued it";
  EXPECT_EQ(QueryValue(dsn, "SELECT count(*) FROM driftless.runs WHERE env = 'web'"), "1");
}

// A pooled session that carried a large message is closed, not kept: libpq's buffers keep
// the size of the largest message for the session's life. A small statement's session is kept.
TEST(PostgresStateStore, ASessionThatCarriedALargeMessageIsNotPooled) {
  std::string dsn = CreateTestDatabase("dl_state");
  ASSERT_FALSE(dsn.empty());
  const char* app = "driftless pool test";  // a pool of this test's own
  auto conn = pg_detail::Connection::Open(dsn, "test", app);
  ASSERT_TRUE(conn.ok()) << conn.error().message;
  auto backend = [&](const std::string& param) -> std::string {
    auto rows = (*conn)->Exec("SELECT pg_backend_pid()::text, length($1::text)",
                              pg_detail::Params().Add(param), "read the session");
    EXPECT_TRUE(rows.ok()) << rows.error().message;
    return rows.ok() ? rows->Text(0, 0) : "";
  };
  auto idle = [&] { return pg_detail::Connection::IdleSessions(dsn, app, false); };
  EXPECT_EQ(idle(), 1u);  // Open's session
  const std::string first = backend("small");
  EXPECT_EQ(backend("small"), first) << "a small statement's session is kept";
  EXPECT_EQ(idle(), 1u);
  const std::string large(pg_detail::Connection::kPooledMessageBytes + 1, 'x');
  EXPECT_EQ(backend(large), first);
  EXPECT_EQ(idle(), 0u) << "the session that sent a large parameter was closed";
  const std::string second = backend("small");
  EXPECT_NE(second, first);
  EXPECT_EQ(idle(), 1u);
  auto wide = (*conn)->Exec("SELECT repeat('y', $1::int)",
                            pg_detail::Params().Add(static_cast<int64_t>(large.size())),
                            "read a large row");
  ASSERT_TRUE(wide.ok()) << wide.error().message;
  EXPECT_EQ(wide->View(0, 0).size(), large.size());
  EXPECT_EQ(idle(), 0u) << "the session that received a large row was closed";
  EXPECT_NE(backend("small"), second);
}

TEST(PostgresLocation, TextArraysRoundTrip) {
  std::vector<std::string> items = {"", "NULL", "a,b", "{c}", "d\"e", "f\\g", " x ", "plain"};
  std::vector<std::string> back;
  ASSERT_TRUE(pg_detail::DecodeTextArray(pg_detail::EncodeTextArray(items), &back));
  EXPECT_EQ(back, items);
  ASSERT_TRUE(pg_detail::DecodeTextArray("{}", &back));
  EXPECT_TRUE(back.empty());
  ASSERT_TRUE(pg_detail::DecodeTextArray("{a,\"b c\",d}", &back));
  EXPECT_EQ(back, (std::vector<std::string>{"a", "b c", "d"}));
  EXPECT_FALSE(pg_detail::DecodeTextArray("a,b", &back));
  EXPECT_FALSE(pg_detail::DecodeTextArray("{a,NULL}", &back));
}

}  // namespace
}  // namespace driftless::state
