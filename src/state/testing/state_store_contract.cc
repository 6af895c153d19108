#include "state/testing/state_store_contract.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <map>
#include <set>
#include <thread>
#include <vector>

#include "base/identity.h"

namespace driftless::state::testing {

std::string BackendName(const ::testing::TestParamInfo<BackendFactory>& info) {
  return info.param.name;
}

void StateStoreContract::SetUp() {
  backend_ = GetParam().make();
  ASSERT_TRUE(backend_) << "no backend";
}

std::unique_ptr<StateStore> StateStoreContract::OpenStore() { return backend_->Open(); }

std::vector<std::unique_ptr<StateStore>> StateStoreContract::OpenStores(int count,
                                                                        const std::string& env) {
  std::vector<std::unique_ptr<StateStore>> stores;
  if (!env.empty()) {
    auto store = OpenStore();
    if (!store || !store->GetOrCreateEnvironment(env).ok()) {
      ADD_FAILURE() << "cannot create environment " << env;
      return stores;
    }
  }
  for (int i = 0; i < count; ++i) {
    stores.push_back(OpenStore());
    if (!stores.back()) {
      ADD_FAILURE() << "cannot open store " << i;
      stores.pop_back();
      return stores;
    }
  }
  return stores;
}

namespace {

Identity Elsewhere() { return Identity{"alice", "elsewhere.example", 4242}; }

ResourceState Res(const std::string& kind, const std::string& name,
                  const std::string& attrs = R"({"a":1})", std::vector<std::string> deps = {}) {
  ResourceState r;
  r.kind = kind;
  r.name = name;
  r.address = kind + "/" + name;
  r.target = "web";
  r.attrs_json = attrs;
  r.spec_hash = "spec-" + name;
  r.live_digest = "live-" + name;
  r.depends_on = std::move(deps);
  r.commit = "abc123";
  return r;
}

ChangeRecord Intent(const std::string& address, const std::string& action) {
  ChangeRecord c;
  c.address = address;
  c.action = action;
  c.diff = "+ " + address;
  return c;
}

ChangeResult Done(const ResourceState& r) {
  ChangeResult c;
  c.address = r.address;
  c.status = "done";
  c.new_state = r;
  return c;
}

ChangeResult Deleted(const std::string& address) {
  ChangeResult c;
  c.address = address;
  c.status = "done";
  c.remove = true;
  return c;
}

std::string HolderText(const Lock& lock) {
  return lock.holder.UserAtHost() + " (pid " + std::to_string(lock.holder.pid) + ") for " +
         lock.operation + " since " + FormatTime(lock.acquired_at);
}

// The fencing error of a writer whose lock `now_held` took over.
std::string LostText(const Lock& now_held) {
  return "lost the lock of environment " + now_held.environment + ": taken over by " +
         HolderText(now_held) + " (token " + std::to_string(now_held.token) + ")";
}

// Waits for a child and returns its exit code (or -1 when it did not exit normally).
int WaitChild(pid_t pid) {
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Kills and reaps a child that a failed assertion left behind.
class ChildGuard {
 public:
  explicit ChildGuard(pid_t pid) : pid_(pid) {}
  ~ChildGuard() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  ChildGuard(const ChildGuard&) = delete;
  ChildGuard& operator=(const ChildGuard&) = delete;
  // The child's exit code; the guard has nothing left to do.
  int Wait() {
    int code = WaitChild(pid_);
    pid_ = 0;
    return code;
  }

 private:
  pid_t pid_;
};

TEST_P(StateStoreContract, EnvironmentsHaveStableRandomSalts) {
  auto store = OpenStore();
  ASSERT_TRUE(store);
  auto none = store->GetEnvironment("prod");
  ASSERT_TRUE(none.ok()) << none.error().message;
  EXPECT_FALSE(none->has_value());

  int64_t before = NowUnix();
  auto prod = store->GetOrCreateEnvironment("prod");
  ASSERT_TRUE(prod.ok()) << prod.error().message;
  EXPECT_EQ(prod->name, "prod");
  EXPECT_EQ(prod->serial, 0);
  EXPECT_EQ(prod->salt.size(), 64u);
  EXPECT_GE(prod->created_at, before);
  EXPECT_LE(prod->created_at, NowUnix());

  auto again = store->GetOrCreateEnvironment("prod");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->salt, prod->salt);
  EXPECT_EQ(again->created_at, prod->created_at);

  auto dev = store->GetOrCreateEnvironment("dev");
  ASSERT_TRUE(dev.ok());
  EXPECT_NE(dev->salt, prod->salt);

  auto got = store->GetEnvironment("prod");
  ASSERT_TRUE(got.ok());
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ((*got)->salt, prod->salt);

  auto all = store->ListEnvironments();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].name, "dev");
  EXPECT_EQ((*all)[1].name, "prod");

  auto empty = store->GetOrCreateEnvironment("");
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.error().message, "the environment name is empty");
}

TEST_P(StateStoreContract, RecordResultsUpsertsRemovesAndBumpsSerialOnce) {
  auto store = OpenStore();
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->GetOrCreateEnvironment("prod").ok());
  auto lock = store->AcquireLock("prod", CurrentIdentity(), "apply", 0);
  ASSERT_TRUE(lock.ok()) << lock.error().message;

  ResourceState motd = Res("file.file", "motd", R"({"content":"hi"})");
  ResourceState conf = Res("file.file", "etc/app.conf", "{}", {"file.file/motd", "odd \"name\"\n"});
  ResourceState gone = Res("pkg.package", "old");
  auto id = store->BeginApply(*lock, ApplyRecord{},
                              {Intent(motd.address, "create"), Intent(conf.address, "create"),
                               Intent(gone.address, "create")});
  ASSERT_TRUE(id.ok()) << id.error().message;

  Status s = store->RecordResults(*lock, *id, {Done(motd), Done(conf), Done(gone)});
  ASSERT_TRUE(s.ok()) << s.error().message;
  auto env = store->GetEnvironment("prod");
  ASSERT_TRUE(env.ok());
  EXPECT_EQ((*env)->serial, 1);  // once per call, not per result

  auto listed = store->ListResources("prod");
  ASSERT_TRUE(listed.ok()) << listed.error().message;
  ASSERT_EQ(listed->size(), 3u);
  EXPECT_EQ((*listed)[0].address, "file.file/etc/app.conf");  // sorted by address
  EXPECT_EQ((*listed)[1].address, "file.file/motd");
  EXPECT_EQ((*listed)[2].address, "pkg.package/old");
  const ResourceState& c = (*listed)[0];
  EXPECT_EQ(c.kind, "file.file");
  EXPECT_EQ(c.name, "etc/app.conf");
  EXPECT_EQ(c.target, "web");
  EXPECT_EQ(c.attrs_json, "{}");
  EXPECT_EQ(c.spec_hash, "spec-etc/app.conf");
  EXPECT_EQ(c.live_digest, "live-etc/app.conf");
  EXPECT_EQ(c.depends_on, conf.depends_on);
  EXPECT_EQ(c.commit, "abc123");
  EXPECT_EQ(c.serial, 1);
  EXPECT_GT(c.updated_at, 0);

  // Second batch: update one, delete one, a failure with a known state, a failure without.
  motd.attrs_json = R"({"content":"hello"})";
  ResourceState conf_failed = conf;
  conf_failed.live_digest = "half-written";
  ChangeResult failed_known = Done(conf_failed);
  failed_known.status = "failed";
  failed_known.error = "disk full";
  ChangeResult failed_unknown;
  failed_unknown.address = "svc.service/nginx";
  failed_unknown.status = "failed";
  failed_unknown.error = "timeout";
  s = store->RecordResults(*lock, *id,
                           {Done(motd), Deleted(gone.address), failed_known, failed_unknown});
  ASSERT_TRUE(s.ok()) << s.error().message;
  env = store->GetEnvironment("prod");
  EXPECT_EQ((*env)->serial, 2);

  listed = store->ListResources("prod");
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[0].live_digest, "half-written");
  EXPECT_EQ((*listed)[0].serial, 2);
  EXPECT_EQ((*listed)[1].attrs_json, R"({"content":"hello"})");
  EXPECT_EQ((*listed)[1].serial, 2);

  auto one = store->GetResource("prod", "file.file/motd");
  ASSERT_TRUE(one.ok());
  ASSERT_TRUE(one->has_value());
  EXPECT_EQ((*one)->attrs_json, R"({"content":"hello"})");
  auto missing = store->GetResource("prod", "pkg.package/old");
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());
  auto other_env = store->ListResources("dev");
  ASSERT_TRUE(other_env.ok());
  EXPECT_TRUE(other_env->empty());

  // A batch with one bad result writes nothing at all.
  ChangeResult bad = Done(motd);
  bad.status = "maybe";
  ResourceState extra = Res("file.file", "extra");
  s = store->RecordResults(*lock, *id, {Done(extra), bad});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("unknown status \"maybe\""), std::string::npos);
  env = store->GetEnvironment("prod");
  EXPECT_EQ((*env)->serial, 2);
  listed = store->ListResources("prod");
  EXPECT_EQ(listed->size(), 2u);
}

TEST_P(StateStoreContract, DigestsListEveryRowAndGetResourcesReadsSome) {
  auto store = OpenStore();
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->GetOrCreateEnvironment("prod").ok());
  ASSERT_TRUE(store->GetOrCreateEnvironment("dev").ok());
  auto lock = store->AcquireLock("prod", CurrentIdentity(), "apply", 0);
  ASSERT_TRUE(lock.ok()) << lock.error().message;
  ResourceState a = Res("file.file", "a", R"({"x":1})");
  ResourceState b = Res("file.file", "b", R"({"x":2})", {"file.file/a"});
  ResourceState c = Res("pkg.package", "c");
  auto id = store->BeginApply(*lock, ApplyRecord{}, {});
  ASSERT_TRUE(id.ok()) << id.error().message;
  ASSERT_TRUE(store->RecordResults(*lock, *id, {Done(c), Done(b), Done(a)}).ok());

  auto digests = store->ListResourceDigests("prod");
  ASSERT_TRUE(digests.ok()) << digests.error().message;
  ASSERT_EQ(digests->size(), 3u);
  EXPECT_EQ((*digests)[0].address, "file.file/a");  // sorted by address
  EXPECT_EQ((*digests)[0].spec_hash, "spec-a");
  EXPECT_EQ((*digests)[0].live_digest, "live-a");
  EXPECT_EQ((*digests)[1].address, "file.file/b");
  EXPECT_EQ((*digests)[2].address, "pkg.package/c");
  EXPECT_TRUE(store->ListResourceDigests("dev")->empty());

  // Any order, repeats and addresses not in state; whole rows come back sorted, once each.
  auto rows = store->GetResources(
      "prod", {"pkg.package/c", "file.file/b", "file.file/nope", "file.file/b"});
  ASSERT_TRUE(rows.ok()) << rows.error().message;
  ASSERT_EQ(rows->size(), 2u);
  EXPECT_EQ((*rows)[0].address, "file.file/b");
  EXPECT_EQ((*rows)[0].attrs_json, R"({"x":2})");
  EXPECT_EQ((*rows)[0].depends_on, std::vector<std::string>{"file.file/a"});
  EXPECT_EQ((*rows)[0].kind, "file.file");
  EXPECT_EQ((*rows)[0].name, "b");
  EXPECT_EQ((*rows)[1].address, "pkg.package/c");
  EXPECT_TRUE(store->GetResources("dev", {"file.file/a"})->empty());
  EXPECT_TRUE(store->GetResources("prod", {})->empty());
}

TEST_P(StateStoreContract, DigestsOfSomeAddresses) {
  auto store = OpenStore();
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->GetOrCreateEnvironment("prod").ok());
  auto lock = store->AcquireLock("prod", CurrentIdentity(), "apply", 0);
  ASSERT_TRUE(lock.ok()) << lock.error().message;
  auto id = store->BeginApply(*lock, ApplyRecord{}, {});
  ASSERT_TRUE(id.ok()) << id.error().message;
  ASSERT_TRUE(store
                  ->RecordResults(*lock, *id,
                                  {Done(Res("file.file", "a")), Done(Res("file.file", "b")),
                                   Done(Res("file.file", "c"))})
                  .ok());
  auto some = store->GetResourceDigests(
      "prod", {"file.file/c", "file.file/nope", "file.file/a", "file.file/c"});
  ASSERT_TRUE(some.ok()) << some.error().message;
  ASSERT_EQ(some->size(), 2u);  // sorted, once each, missing ones left out
  EXPECT_EQ((*some)[0].address, "file.file/a");
  EXPECT_EQ((*some)[0].spec_hash, "spec-a");
  EXPECT_EQ((*some)[0].live_digest, "live-a");
  EXPECT_EQ((*some)[1].address, "file.file/c");
  EXPECT_TRUE(store->GetResourceDigests("prod", {})->empty());
  EXPECT_TRUE(store->GetResourceDigests("dev", {"file.file/a"})->empty());
}

// Digest rows hold 32 lowercase hex digits as 16 bytes (RowHash) and any other text as it is:
// every value comes back exactly, compares equal to its text only, and a stamp recorded with a
// hex digest matches the row's.
TEST_P(StateStoreContract, DigestsGiveBackTheExactTextOfEveryHash) {
  auto store = OpenStore();
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->GetOrCreateEnvironment("prod").ok());
  auto lock = store->AcquireLock("prod", CurrentIdentity(), "apply", 0);
  ASSERT_TRUE(lock.ok()) << lock.error().message;
  auto id = store->BeginApply(*lock, ApplyRecord{}, {});
  ASSERT_TRUE(id.ok()) << id.error().message;
  const std::string hex = "0123456789abcdef00ff10e9d8c7b6a5";
  const std::vector<std::pair<std::string, std::string>> hashes = {
      {hex, "f8e03c80b2458a8ab15a0248d104b7b3"},
      {"0123456789ABCDEF00FF10E9D8C7B6A5", "0123456789abcdef00ff10e9d8c7b6a"},  // upper, 31
      {"imported", ""},
      {hex + "0", "incomplete"}};
  std::vector<ChangeResult> done;
  for (size_t i = 0; i < hashes.size(); ++i) {
    ResourceState r = Res("file.file", "r" + std::to_string(i));
    r.spec_hash = hashes[i].first;
    r.live_digest = hashes[i].second;
    done.push_back(Done(r));
  }
  ASSERT_TRUE(store->RecordResults(*lock, *id, done).ok());
  auto digests = store->ListResourceDigests("prod");
  ASSERT_TRUE(digests.ok()) << digests.error().message;
  ASSERT_EQ(digests->size(), hashes.size());
  for (size_t i = 0; i < hashes.size(); ++i) {
    const ResourceDigest& d = (*digests)[i];
    EXPECT_EQ(d.spec_hash.str(), hashes[i].first) << i;
    EXPECT_EQ(d.live_digest.str(), hashes[i].second) << i;
    EXPECT_TRUE(d.spec_hash == hashes[i].first) << i;
    EXPECT_TRUE(d.live_digest == hashes[i].second) << i;
    EXPECT_EQ(d.live_digest.empty(), hashes[i].second.empty()) << i;
  }
  EXPECT_FALSE((*digests)[0].spec_hash == "0123456789abcdef00ff10e9d8c7b6a4");
  EXPECT_FALSE((*digests)[0].spec_hash == "0123456789ABCDEF00FF10E9D8C7B6A5");
  EXPECT_FALSE((*digests)[1].spec_hash == hex);
  EXPECT_FALSE((*digests)[2].live_digest == "imported");
  ASSERT_TRUE(
      store->RecordLiveStamps("prod", {{"file.file/r0", (*digests)[0].live_digest, "s0"}}).ok());
  auto again = store->GetResourceDigests("prod", {"file.file/r0"});
  ASSERT_TRUE(again.ok() && again->size() == 1);
  EXPECT_EQ((*again)[0].live_stamp, "s0");
  RowHash copy = (*again)[0].live_digest;
  EXPECT_EQ(copy.str(), "f8e03c80b2458a8ab15a0248d104b7b3");
  copy = (*digests)[3].live_digest;
  EXPECT_EQ(copy.str(), "incomplete");
}

TEST_P(StateStoreContract, LiveStampsHoldOnlyForTheDigestTheyWereSeenWith) {
  auto store = OpenStore();
  ASSERT_TRUE(store);
  auto env = store->GetOrCreateEnvironment("prod");
  ASSERT_TRUE(env.ok());
  auto lock = store->AcquireLock("prod", CurrentIdentity(), "apply", 0);
  ASSERT_TRUE(lock.ok()) << lock.error().message;
  auto id = store->BeginApply(*lock, ApplyRecord{}, {});
  ASSERT_TRUE(id.ok()) << id.error().message;
  ASSERT_TRUE(
      store->RecordResults(*lock, *id, {Done(Res("file.file", "a")), Done(Res("file.file", "b"))})
          .ok());
  auto stamp_of = [&](const std::string& address) {
    auto d = store->GetResourceDigests("prod", {address});
    return d.ok() && d->size() == 1 ? (*d)[0].live_stamp : std::string("?");
  };
  EXPECT_EQ(stamp_of("file.file/a"), "");  // none until a read records one
  // No lock needed; a stamp seen with another digest than the row's is not recorded.
  ASSERT_TRUE(store
                  ->RecordLiveStamps("prod", {{"file.file/a", "live-a", "s1"},
                                              {"file.file/b", "live-other", "s2"},
                                              {"file.file/gone", "live-gone", "s3"}})
                  .ok());
  EXPECT_EQ(stamp_of("file.file/a"), "s1");
  EXPECT_EQ(stamp_of("file.file/b"), "");
  auto all = store->ListResourceDigests("prod");
  ASSERT_TRUE(all.ok());
  EXPECT_EQ((*all)[0].live_stamp, "s1");
  // Not a change of state: the serial stays.
  EXPECT_EQ(store->GetEnvironment("prod")->value().serial, env->serial + 1);
  // Every write of the row drops its stamp, even with the same digest.
  ASSERT_TRUE(store->RecordResults(*lock, *id, {Done(Res("file.file", "a"))}).ok());
  EXPECT_EQ(stamp_of("file.file/a"), "");
  EXPECT_TRUE(store->RecordLiveStamps("prod", {}).ok());
}

TEST_P(StateStoreContract, MoveAndRemoveResources) {
  auto store = OpenStore();
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->GetOrCreateEnvironment("prod").ok());
  auto lock = store->AcquireLock("prod", CurrentIdentity(), "state mv", 0);
  ASSERT_TRUE(lock.ok());
  ResourceState a = Res("file.file", "a");
  ResourceState b = Res("file.file", "b", "{}", {"file.file/a", "file.file/ab"});
  ResourceState ab = Res("file.file", "ab");
  auto id = store->BeginApply(*lock, ApplyRecord{}, {});
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(store->RecordResults(*lock, *id, {Done(a), Done(b), Done(ab)}).ok());
  ASSERT_TRUE(store->FinishApply(*lock, *id, "succeeded", "3 created").ok());

  Status s = store->MoveResource(*lock, "file.file/a", "file.file/renamed");
  ASSERT_TRUE(s.ok()) << s.error().message;
  auto moved = store->GetResource("prod", "file.file/renamed");
  ASSERT_TRUE(moved.ok());
  ASSERT_TRUE(moved->has_value());
  EXPECT_EQ((*moved)->kind, "file.file");
  EXPECT_EQ((*moved)->name, "renamed");
  EXPECT_EQ((*moved)->attrs_json, a.attrs_json);
  EXPECT_EQ((*moved)->serial, 2);
  auto dependent = store->GetResource("prod", "file.file/b");
  ASSERT_TRUE(dependent.ok());
  EXPECT_EQ((*dependent)->depends_on,
            (std::vector<std::string>{"file.file/renamed", "file.file/ab"}));
  EXPECT_FALSE(store->GetResource("prod", "file.file/a")->has_value());

  s = store->MoveResource(*lock, "file.file/nope", "file.file/x");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().message,
            "cannot move file.file/nope to file.file/x in the state of environment prod: "
            "file.file/nope is not in state");
  s = store->MoveResource(*lock, "file.file/b", "file.file/ab");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("file.file/ab is already in state"), std::string::npos);
  s = store->MoveResource(*lock, "file.file/b", "no-slash");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("is not a resource address"), std::string::npos);
  EXPECT_EQ(store->GetEnvironment("prod")->value().serial, 2);  // failures bump nothing

  s = store->RemoveResource(*lock, "file.file/ab");
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(store->GetEnvironment("prod")->value().serial, 3);
  EXPECT_EQ(store->ListResources("prod")->size(), 2u);
  s = store->RemoveResource(*lock, "file.file/ab");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().message,
            "cannot remove file.file/ab from the state of environment prod: there is no such "
            "resource in state");
}

TEST_P(StateStoreContract, ApplyHistoryRoundTrip) {
  auto store = OpenStore();
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->GetOrCreateEnvironment("prod").ok());
  ASSERT_TRUE(store->GetOrCreateEnvironment("dev").ok());
  Identity me = CurrentIdentity();
  auto lock = store->AcquireLock("prod", me, "apply", 0);
  ASSERT_TRUE(lock.ok());

  ApplyRecord rec;
  rec.environment = "prod";
  rec.commit = "0123abcd";
  rec.commit_subject = "Bump nginx";
  rec.commit_author = "Alice <alice@example.com>";
  rec.decl_hash = "decl";
  rec.plan_json = R"({"changes":3})";
  ResourceState x = Res("file.file", "x");
  auto id = store->BeginApply(*lock, rec,
                              {Intent("file.file/x", "create"), Intent("file.file/y", "update"),
                               Intent("file.file/z", "delete")});
  ASSERT_TRUE(id.ok()) << id.error().message;

  auto running = store->GetApply(*id);
  ASSERT_TRUE(running.ok());
  ASSERT_TRUE(running->has_value());
  const ApplyRecord& r = **running;
  EXPECT_EQ(r.id, *id);
  EXPECT_EQ(r.environment, "prod");
  EXPECT_EQ(r.kind, "apply");
  EXPECT_EQ(r.user, me.user);  // taken from the lock when not given
  EXPECT_EQ(r.host, me.host);
  EXPECT_EQ(r.pid, me.pid);
  EXPECT_EQ(r.commit, "0123abcd");
  EXPECT_EQ(r.commit_subject, "Bump nginx");
  EXPECT_EQ(r.commit_author, "Alice <alice@example.com>");
  EXPECT_EQ(r.decl_hash, "decl");
  EXPECT_EQ(r.plan_json, R"({"changes":3})");
  EXPECT_EQ(r.status, "running");
  EXPECT_GT(r.started_at, 0);
  EXPECT_EQ(r.finished_at, 0);
  ASSERT_EQ(r.changes.size(), 3u);
  EXPECT_EQ(r.changes[1].address, "file.file/y");
  EXPECT_EQ(r.changes[1].action, "update");
  EXPECT_EQ(r.changes[1].status, "pending");
  EXPECT_EQ(r.changes[1].diff, "+ file.file/y");

  ChangeResult failed_y;
  failed_y.address = "file.file/y";
  failed_y.status = "failed";
  failed_y.error = "permission denied";
  ChangeResult unplanned;
  unplanned.address = "file.file/w";
  unplanned.status = "skipped";
  unplanned.error = "dependency failed";
  ASSERT_TRUE(store->RecordResults(*lock, *id, {Done(x), failed_y, unplanned}).ok());
  Status s = store->FinishApply(*lock, *id, "failed", "1 created, 1 failed");
  ASSERT_TRUE(s.ok()) << s.error().message;

  auto finished = store->GetApply(*id);
  ASSERT_TRUE(finished.ok());
  const ApplyRecord& f = **finished;
  EXPECT_EQ(f.status, "failed");
  EXPECT_EQ(f.summary, "1 created, 1 failed");
  EXPECT_GE(f.finished_at, f.started_at);
  ASSERT_EQ(f.changes.size(), 4u);
  EXPECT_EQ(f.changes[0].status, "done");
  EXPECT_EQ(f.changes[1].status, "failed");
  EXPECT_EQ(f.changes[1].error, "permission denied");
  EXPECT_EQ(f.changes[2].status, "skipped");  // never attempted
  EXPECT_EQ(f.changes[2].error, "not attempted: the apply stopped before this change");
  EXPECT_EQ(f.changes[3].address, "file.file/w");  // appended
  EXPECT_EQ(f.changes[3].action, "");
  EXPECT_EQ(f.changes[3].status, "skipped");

  s = store->FinishApply(*lock, *id, "succeeded", "");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().message,
            "apply " + std::to_string(*id) + " of environment prod is already finished (failed)");
  s = store->RecordResults(*lock, *id, {Done(x)});
  ASSERT_FALSE(s.ok());
  s = store->FinishApply(*lock, *id, "done", "");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("unknown status \"done\""), std::string::npos);

  ApplyRecord destroy;
  destroy.kind = "destroy";
  auto id2 = store->BeginApply(*lock, destroy, {});
  ASSERT_TRUE(id2.ok());
  ASSERT_TRUE(store->FinishApply(*lock, *id2, "succeeded", "nothing to do").ok());
  ASSERT_TRUE(store->ReleaseLock(*lock).ok());
  auto dev_lock = store->AcquireLock("dev", me, "apply", 0);
  ASSERT_TRUE(dev_lock.ok());
  ApplyRecord wrong_env;
  wrong_env.environment = "prod";
  EXPECT_FALSE(store->BeginApply(*dev_lock, wrong_env, {}).ok());
  auto id3 = store->BeginApply(*dev_lock, ApplyRecord{}, {});
  ASSERT_TRUE(id3.ok());
  s = store->RecordResults(*dev_lock, *id, {});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().message,
            "apply " + std::to_string(*id) + " belongs to environment prod, not dev");

  auto all = store->ListApplies("", 0);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0].id, *id3);  // newest first
  EXPECT_EQ((*all)[1].id, *id2);
  EXPECT_EQ((*all)[1].kind, "destroy");
  EXPECT_EQ((*all)[2].id, *id);
  EXPECT_TRUE((*all)[2].changes.empty());  // only GetApply fills changes
  auto prod = store->ListApplies("prod", 1);
  ASSERT_TRUE(prod.ok());
  ASSERT_EQ(prod->size(), 1u);
  EXPECT_EQ((*prod)[0].id, *id2);
  auto none = store->GetApply(99999);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
}

// The commits applied, of every environment at once: each one's newest successful apply of a
// commit (not a destroy, a failed or a running apply, nor one without a commit).
TEST_P(StateStoreContract, IntentsAddedInBatchesFollowTheFirstInOrder) {
  auto store = OpenStore();
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->GetOrCreateEnvironment("prod").ok());
  auto lock = store->AcquireLock("prod", CurrentIdentity(), "apply", 0);
  ASSERT_TRUE(lock.ok()) << lock.error().message;
  auto id = store->BeginApply(*lock, ApplyRecord{},
                              {Intent("file.file/a", "create"), Intent("file.file/b", "update")});
  ASSERT_TRUE(id.ok()) << id.error().message;
  ASSERT_TRUE(store->AddIntents(*lock, *id, 2, {Intent("file.file/c", "delete")}).ok());
  Status added = store->AddIntents(
      *lock, *id, 3, {Intent("file.file/d", "create"), Intent("file.file/e", "heal")});
  ASSERT_TRUE(added.ok()) << added.error().message;
  ASSERT_TRUE(store->AddIntents(*lock, *id, 5, {}).ok());
  auto rec = store->GetApply(*id);
  ASSERT_TRUE(rec.ok() && rec->has_value());
  const std::vector<ChangeRecord>& changes = (**rec).changes;
  ASSERT_EQ(changes.size(), 5u);
  const char* addresses[] = {"file.file/a", "file.file/b", "file.file/c", "file.file/d",
                             "file.file/e"};
  const char* actions[] = {"create", "update", "delete", "create", "heal"};
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(changes[i].address, addresses[i]);
    EXPECT_EQ(changes[i].action, actions[i]);
    EXPECT_EQ(changes[i].status, "pending");
    EXPECT_EQ(changes[i].diff, std::string("+ ") + addresses[i]);
  }
  // All in doubt until their outcomes are recorded; results find the added ones too.
  ASSERT_TRUE(store->RecordResults(*lock, *id, {Done(Res("file.file", "d"))}).ok());
  rec = store->GetApply(*id);
  ASSERT_EQ((**rec).changes.size(), 5u);
  EXPECT_EQ((**rec).changes[3].status, "done");
  // Only to a running apply.
  ASSERT_TRUE(store->FinishApply(*lock, *id, "succeeded", "").ok());
  EXPECT_FALSE(store->AddIntents(*lock, *id, 5, {Intent("file.file/f", "create")}).ok());
  EXPECT_EQ(store->GetApply(*id)->value().changes.size(), 5u);
}

TEST_P(StateStoreContract, AppliedCommitsAreEachEnvironmentsNewestSuccessfulApply) {
  auto store = OpenStore();
  ASSERT_TRUE(store);
  Result<std::map<std::string, std::string>> applied = store->AppliedCommits();
  ASSERT_TRUE(applied.ok()) << applied.error().message;
  EXPECT_TRUE(applied->empty());
  for (const char* env : {"prod", "dev", "qa"}) {
    ASSERT_TRUE(store->GetOrCreateEnvironment(env).ok());
  }
  auto apply = [&](const std::string& env, const std::string& kind, const std::string& commit,
                   const std::string& status) {
    auto lock = store->AcquireLock(env, CurrentIdentity(), "apply", 0);
    ASSERT_TRUE(lock.ok()) << lock.error().message;
    ApplyRecord rec;
    rec.kind = kind;
    rec.commit = commit;
    auto id = store->BeginApply(*lock, rec, {});
    ASSERT_TRUE(id.ok()) << id.error().message;
    if (status != "running") {
      ASSERT_TRUE(store->FinishApply(*lock, *id, status, "").ok());
    }
    ASSERT_TRUE(store->ReleaseLock(*lock).ok());
  };
  apply("prod", "apply", "c1", "succeeded");
  apply("prod", "apply", "c2", "succeeded");
  apply("prod", "apply", "c3", "failed");
  apply("prod", "destroy", "c4", "succeeded");
  apply("prod", "apply", "", "succeeded");
  apply("dev", "apply", "d1", "failed");
  apply("qa", "apply", "q1", "succeeded");
  apply("qa", "apply", "q2", "running");
  applied = store->AppliedCommits();
  ASSERT_TRUE(applied.ok()) << applied.error().message;
  EXPECT_EQ(*applied, (std::map<std::string, std::string>{{"prod", "c2"}, {"qa", "q1"}}));
}

TEST_P(StateStoreContract, LockTokensIncreaseAndLiveLocksRefuse) {
  auto store = OpenStore();
  ASSERT_TRUE(store);
  Identity me = CurrentIdentity();
  int64_t before = NowUnix();
  auto first = store->AcquireLock("prod", me, "apply", 0, 120);
  ASSERT_TRUE(first.ok()) << first.error().message;
  EXPECT_EQ(first->environment, "prod");
  EXPECT_EQ(first->holder.pid, me.pid);
  EXPECT_GE(first->acquired_at, before);
  EXPECT_EQ(first->expires_at, first->acquired_at + 120);

  auto shown = store->GetLock("prod");
  ASSERT_TRUE(shown.ok());
  ASSERT_TRUE(shown->has_value());
  EXPECT_EQ((*shown)->token, first->token);
  EXPECT_EQ((*shown)->operation, "apply");

  // Held by a live process (this one): refused at once, not reentrant.
  auto second = store->AcquireLock("prod", Elsewhere(), "destroy", 0);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().message, "environment prod is locked by " + HolderText(*first) +
                                        " (use --lock-timeout to wait)");
  auto waited = store->AcquireLock("prod", me, "apply", 0.2);
  ASSERT_FALSE(waited.ok());
  EXPECT_NE(waited.error().message.find("waited"), std::string::npos);

  Lock renewed = *first;
  ASSERT_TRUE(store->RenewLock(renewed, 600).ok());
  EXPECT_GE(renewed.expires_at, first->acquired_at + 600);
  EXPECT_EQ(store->GetLock("prod")->value().expires_at, renewed.expires_at);

  // Other environments are independent.
  auto dev = store->AcquireLock("dev", me, "apply", 0);
  ASSERT_TRUE(dev.ok());

  ASSERT_TRUE(store->ReleaseLock(*first).ok());
  EXPECT_FALSE(store->GetLock("prod")->has_value());
  ASSERT_TRUE(store->ReleaseLock(*first).ok());  // releasing twice is harmless

  auto third = store->AcquireLock("prod", Elsewhere(), "destroy", 0);
  ASSERT_TRUE(third.ok());
  EXPECT_GT(third->token, first->token);  // strictly increasing even after release
  // A stale handle cannot release the new holder's lock.
  ASSERT_TRUE(store->ReleaseLock(*first).ok());
  EXPECT_EQ(store->GetLock("prod")->value().token, third->token);
  Lock old = *first;
  Status s = store->RenewLock(old, 60);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().message, LostText(*third));
}

TEST_P(StateStoreContract, ExpiredLeaseIsTakenOverAndTheOldHolderIsFenced) {
  auto store = OpenStore();
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->GetOrCreateEnvironment("prod").ok());
  // The first holder is on another host: only its lease can make it stale.
  auto old_lock = store->AcquireLock("prod", Elsewhere(), "apply", 0, 60);
  ASSERT_TRUE(old_lock.ok());
  ResourceState a = Res("file.file", "a");
  ResourceState b = Res("file.file", "b");
  auto old_id = store->BeginApply(*old_lock, ApplyRecord{},
                                  {Intent(a.address, "create"), Intent(b.address, "create")});
  ASSERT_TRUE(old_id.ok());
  ASSERT_TRUE(store->RecordResults(*old_lock, *old_id, {Done(a)}).ok());

  // Still live: a newcomer is refused.
  EXPECT_FALSE(store->AcquireLock("prod", CurrentIdentity(), "apply", 0).ok());
  backend_->ExpireLease("prod");

  auto new_lock = store->AcquireLock("prod", CurrentIdentity(), "apply", 0);
  ASSERT_TRUE(new_lock.ok()) << new_lock.error().message;
  EXPECT_GT(new_lock->token, old_lock->token);
  auto old_apply = store->GetApply(*old_id);
  ASSERT_TRUE(old_apply.ok());
  EXPECT_EQ((*old_apply)->status, "interrupted");
  EXPECT_GT((*old_apply)->finished_at, 0);

  const std::string lost = LostText(*new_lock);
  Status s = store->RecordResults(*old_lock, *old_id, {Done(b)});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().message, lost);
  EXPECT_EQ(store->FinishApply(*old_lock, *old_id, "succeeded", "").error().message, lost);
  EXPECT_EQ(store->RemoveResource(*old_lock, a.address).error().message, lost);
  EXPECT_EQ(store->MoveResource(*old_lock, a.address, "file.file/c").error().message, lost);
  EXPECT_EQ(store->BeginApply(*old_lock, ApplyRecord{}, {}).error().message, lost);
  EXPECT_EQ(
      store->AddIntents(*old_lock, *old_id, 2, {Intent("file.file/c", "create")}).error().message,
      lost);
  Lock renew = *old_lock;
  EXPECT_EQ(store->RenewLock(renew, 60).error().message, lost);

  // Nothing was written by the fenced calls.
  EXPECT_EQ(store->GetEnvironment("prod")->value().serial, 1);
  auto listed = store->ListResources("prod");
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].address, a.address);
  EXPECT_EQ(store->ListApplies("prod", 0)->size(), 1u);
  old_apply = store->GetApply(*old_id);
  EXPECT_EQ((*old_apply)->status, "interrupted");
  EXPECT_EQ((*old_apply)->changes[1].status, "pending");

  // The outcome of b is in doubt; a is not.
  auto pending = store->PendingChanges("prod");
  ASSERT_TRUE(pending.ok()) << pending.error().message;
  ASSERT_EQ(pending->size(), 1u);
  EXPECT_EQ((*pending)[0].address, b.address);
  EXPECT_EQ((*pending)[0].action, "create");

  // The old holder's release leaves the new lock alone.
  ASSERT_TRUE(store->ReleaseLock(*old_lock).ok());
  EXPECT_EQ(store->GetLock("prod")->value().token, new_lock->token);
}

TEST_P(StateStoreContract, PendingChangesIgnoreTheLiveHolderAndSettledAddresses) {
  auto store = OpenStore();
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->GetOrCreateEnvironment("prod").ok());
  auto lock = store->AcquireLock("prod", CurrentIdentity(), "apply", 0);
  ASSERT_TRUE(lock.ok());
  auto id = store->BeginApply(*lock, ApplyRecord{},
                              {Intent("file.file/a", "create"), Intent("file.file/b", "create")});
  ASSERT_TRUE(id.ok());
  // Running under a live lock: nothing is in doubt yet.
  EXPECT_TRUE(store->PendingChanges("prod")->empty());
  // Released without finishing: the apply is interrupted and both changes are in doubt.
  ASSERT_TRUE(store->ReleaseLock(*lock).ok());
  EXPECT_EQ(store->GetApply(*id)->value().status, "interrupted");
  auto pending = store->PendingChanges("prod");
  ASSERT_EQ(pending->size(), 2u);
  EXPECT_EQ((*pending)[0].address, "file.file/a");
  EXPECT_EQ(store->PendingChanges("")->size(), 2u);
  EXPECT_TRUE(store->PendingChanges("dev")->empty());

  // A later apply settles a.
  auto next = store->AcquireLock("prod", CurrentIdentity(), "apply", 0);
  ASSERT_TRUE(next.ok());
  auto id2 = store->BeginApply(*next, ApplyRecord{}, {Intent("file.file/a", "update")});
  ASSERT_TRUE(id2.ok());
  ASSERT_TRUE(store->RecordResults(*next, *id2, {Done(Res("file.file", "a"))}).ok());
  pending = store->PendingChanges("prod");
  ASSERT_EQ(pending->size(), 1u);
  EXPECT_EQ((*pending)[0].address, "file.file/b");
}

TEST_P(StateStoreContract, CrashedHolderIsInterruptedAndItsLockTaken) {
  {
    auto store = OpenStore();
    ASSERT_TRUE(store);
    ASSERT_TRUE(store->GetOrCreateEnvironment("prod").ok());
  }  // closed before fork: a child must not inherit an open SQLite connection
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto store = backend_->Open();
    if (!store) _exit(2);
    auto lock = store->AcquireLock("prod", CurrentIdentity(), "apply", 0);
    if (!lock.ok()) _exit(3);
    auto id = store->BeginApply(*lock, ApplyRecord{},
                                {Intent("file.file/a", "create"), Intent("file.file/b", "create"),
                                 Intent("file.file/c", "delete")});
    if (!id.ok()) _exit(4);
    if (!store->RecordResults(*lock, *id, {Done(Res("file.file", "a"))}).ok()) _exit(5);
    _exit(0);  // a crash: no release, no finish, no destructors
  }
  ChildGuard guard(child);
  ASSERT_EQ(guard.Wait(), 0);

  auto store = OpenStore();
  ASSERT_TRUE(store);
  auto dead = store->GetLock("prod");
  ASSERT_TRUE(dead.ok());
  ASSERT_TRUE(dead->has_value());
  EXPECT_EQ((*dead)->holder.pid, child);
  auto applies = store->ListApplies("prod", 0);
  ASSERT_EQ(applies->size(), 1u);
  EXPECT_EQ((*applies)[0].status, "running");
  // The holder is dead, so its changes are in doubt even before anyone takes the lock.
  EXPECT_EQ(store->PendingChanges("prod")->size(), 2u);

  auto lock = store->AcquireLock("prod", CurrentIdentity(), "apply", 0);
  ASSERT_TRUE(lock.ok()) << lock.error().message;
  EXPECT_GT(lock->token, (*dead)->token);
  auto old = store->GetApply((*applies)[0].id);
  ASSERT_TRUE(old.ok());
  EXPECT_EQ((*old)->status, "interrupted");
  EXPECT_GT((*old)->finished_at, 0);
  EXPECT_EQ(store->ListResources("prod")->size(), 1u);  // a's result survived the crash
  auto pending = store->PendingChanges("prod");
  ASSERT_TRUE(pending.ok());
  ASSERT_EQ(pending->size(), 2u);
  EXPECT_EQ((*pending)[0].address, "file.file/b");
  EXPECT_EQ((*pending)[1].address, "file.file/c");
  EXPECT_EQ((*pending)[1].action, "delete");
}

TEST_P(StateStoreContract, TwoProcessesContendForTheLock) {
  {
    auto store = OpenStore();
    ASSERT_TRUE(store);
  }
  int to_parent[2];
  int to_child[2];
  ASSERT_EQ(pipe(to_parent), 0);
  ASSERT_EQ(pipe(to_child), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(to_parent[0]);
    close(to_child[1]);
    auto store = backend_->Open();
    if (!store) _exit(2);
    auto lock = store->AcquireLock("prod", CurrentIdentity(), "apply", 0);
    char c = lock.ok() ? 'L' : 'E';
    if (write(to_parent[1], &c, 1) != 1 || c != 'L') _exit(3);
    if (read(to_child[0], &c, 1) != 1) _exit(4);
    if (!store->ReleaseLock(*lock).ok()) _exit(5);
    _exit(0);
  }
  ChildGuard guard(child);
  close(to_parent[1]);
  close(to_child[0]);
  char c = 0;
  ASSERT_EQ(read(to_parent[0], &c, 1), 1);
  ASSERT_EQ(c, 'L');

  auto store = OpenStore();
  ASSERT_TRUE(store);
  auto held = store->GetLock("prod");
  ASSERT_TRUE(held.ok());
  ASSERT_TRUE(held->has_value());
  EXPECT_EQ((*held)->holder.pid, child);

  // Refused at once: the wait observer is not told (nothing waits).
  int told = 0;
  store->SetLockWaitObserver([&](const Lock&, double) { ++told; });
  auto refused = store->AcquireLock("prod", CurrentIdentity(), "destroy", 0);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().message, "environment prod is locked by " + (*held)->holder.user + "@" +
                                         (*held)->holder.host + " (pid " + std::to_string(child) +
                                         ") for apply since " + FormatTime((*held)->acquired_at) +
                                         " (use --lock-timeout to wait)");
  EXPECT_EQ(told, 0);

  // A wait that runs out: told once, then refused, saying it waited.
  auto ran_out = store->AcquireLock("prod", CurrentIdentity(), "destroy", 0.2);
  ASSERT_FALSE(ran_out.ok());
  EXPECT_LE(told, 1) << "told once, unless the deadline had passed at the first look";
  EXPECT_EQ(ran_out.error().message.rfind(
                "environment prod is locked by " + HolderText(**held) + " (waited ", 0),
            0u)
      << ran_out.error().message;
  EXPECT_NE(ran_out.error().message.find("; use a longer --lock-timeout to wait more)"),
            std::string::npos)
      << ran_out.error().message;

  // Waiting: the child is told to release only once this store says that it waits, so the lock
  // is taken inside the wait, after the release, on every run.
  told = 0;
  store->SetLockWaitObserver([&](const Lock& holder, double timeout_seconds) {
    ++told;
    EXPECT_EQ(holder.holder.pid, child);
    EXPECT_EQ(holder.token, (*held)->token);
    EXPECT_EQ(timeout_seconds, 120);
    char release = 'R';
    EXPECT_EQ(write(to_child[1], &release, 1), 1);
  });
  auto lock = store->AcquireLock("prod", CurrentIdentity(), "destroy", 120);
  store->SetLockWaitObserver({});
  ASSERT_TRUE(lock.ok()) << lock.error().message;
  EXPECT_EQ(told, 1) << "the observer is told once per call";
  EXPECT_GT(lock->token, (*held)->token);
  EXPECT_EQ(lock->operation, "destroy");
  EXPECT_EQ(guard.Wait(), 0);
  close(to_parent[0]);
  close(to_child[1]);
}

TEST_P(StateStoreContract, ReopeningKeepsEverything) {
  std::string salt;
  int64_t id = 0;
  int64_t token = 0;
  {
    auto store = OpenStore();
    ASSERT_TRUE(store);
    salt = store->GetOrCreateEnvironment("prod")->salt;
    auto lock = store->AcquireLock("prod", CurrentIdentity(), "apply", 0);
    ASSERT_TRUE(lock.ok());
    token = lock->token;
    auto started = store->BeginApply(*lock, ApplyRecord{}, {Intent("file.file/a", "create")});
    ASSERT_TRUE(started.ok());
    id = *started;
    ASSERT_TRUE(store->RecordResults(*lock, id, {Done(Res("file.file", "a"))}).ok());
    ASSERT_TRUE(store->FinishApply(*lock, id, "succeeded", "1 created").ok());
    ASSERT_TRUE(store->ReleaseLock(*lock).ok());
  }
  auto store = OpenStore();
  ASSERT_TRUE(store);
  EXPECT_EQ(store->GetEnvironment("prod")->value().salt, salt);
  EXPECT_EQ(store->GetEnvironment("prod")->value().serial, 1);
  EXPECT_EQ(store->ListResources("prod")->size(), 1u);
  auto apply = store->GetApply(id);
  ASSERT_TRUE(apply.ok());
  EXPECT_EQ((*apply)->status, "succeeded");
  EXPECT_EQ((*apply)->changes.size(), 1u);
  auto lock = store->AcquireLock("prod", CurrentIdentity(), "apply", 0);
  ASSERT_TRUE(lock.ok());
  EXPECT_GT(lock->token, token);
}

TEST_P(StateStoreContract, ManySmallBatches) {
  auto store = OpenStore();
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->GetOrCreateEnvironment("prod").ok());
  auto lock = store->AcquireLock("prod", CurrentIdentity(), "apply", 0);
  ASSERT_TRUE(lock.ok());
  constexpr int kCount = 10000;
  constexpr int kBatch = 200;
  std::vector<ChangeRecord> intents;
  std::vector<ResourceState> states;
  for (int i = 0; i < kCount; ++i) {
    states.push_back(
        Res("file.file", "f" + std::to_string(100000 + i),
            R"({"content":"line )" + std::to_string(i) + R"("})",
            i > 0 ? std::vector<std::string>{states.back().address} : std::vector<std::string>{}));
    intents.push_back(Intent(states.back().address, "create"));
  }
  auto id = store->BeginApply(*lock, ApplyRecord{}, intents);
  ASSERT_TRUE(id.ok());
  for (int i = 0; i < kCount; i += kBatch) {
    std::vector<ChangeResult> batch;
    for (int j = i; j < i + kBatch; ++j) batch.push_back(Done(states[j]));
    Status s = store->RecordResults(*lock, *id, batch);
    ASSERT_TRUE(s.ok()) << s.error().message;
  }
  EXPECT_EQ(store->GetEnvironment("prod")->value().serial, kCount / kBatch);
  auto listed = store->ListResources("prod");
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), static_cast<size_t>(kCount));
  EXPECT_EQ((*listed)[kCount - 1].depends_on,
            std::vector<std::string>{(*listed)[kCount - 2].address});
  EXPECT_TRUE(store->PendingChanges("prod")->empty());
}

TEST_P(StateStoreContract, OutboxDeliversRetriesAndCounts) {
  auto store = OpenStore();
  ASSERT_TRUE(store);
  OutboxEntry a;
  a.sink = "audit";
  a.environment = "prod";
  a.event_type = "apply.succeeded";
  a.event_id = "e1";
  a.event_json = "{\"type\":\"apply.succeeded\"}";
  a.created_at = 100;
  OutboxEntry b = a;
  b.sink = "ops";
  b.subject = "drift:prod:file.file/a";
  ASSERT_TRUE(store->Enqueue({a, b}).ok());

  auto due = store->DueDeliveries(100, 10);
  ASSERT_TRUE(due.ok()) << due.error().message;
  ASSERT_EQ(due->size(), 2u);
  EXPECT_EQ((*due)[0].event_json, a.event_json);
  ASSERT_TRUE(store->MarkDelivered((*due)[0].id, 101).ok());
  ASSERT_TRUE(store->MarkFailed((*due)[1].id, "connection refused", 200).ok());

  due = store->DueDeliveries(150, 10);
  ASSERT_TRUE(due.ok());
  EXPECT_TRUE(due->empty());  // delivered, or not due before 200
  due = store->DueDeliveries(200, 10);
  ASSERT_TRUE(due.ok());
  ASSERT_EQ(due->size(), 1u);
  EXPECT_EQ((*due)[0].sink, "ops");
  EXPECT_EQ((*due)[0].attempts, 1);
  EXPECT_EQ((*due)[0].last_error, "connection refused");

  auto status = store->OutboxStatus();
  ASSERT_TRUE(status.ok());
  ASSERT_EQ(status->size(), 2u);
  EXPECT_EQ((*status)[0].sink, "audit");
  EXPECT_EQ((*status)[0].delivered, 1);
  EXPECT_EQ((*status)[0].last_delivered_at, 101);
  EXPECT_EQ((*status)[1].sink, "ops");
  EXPECT_EQ((*status)[1].failing, 1);
  EXPECT_EQ((*status)[1].pending, 0);
  EXPECT_EQ((*status)[1].next_attempt_at, 200);
  EXPECT_EQ((*status)[1].last_error, "connection refused");

  auto last = store->LastEnqueuedAt("ops", "drift:prod:file.file/a");
  ASSERT_TRUE(last.ok());
  EXPECT_EQ(*last, 100);
  last = store->LastEnqueuedAt("audit", "drift:prod:file.file/a");
  ASSERT_TRUE(last.ok());
  EXPECT_EQ(*last, 0);
}

TEST_P(StateStoreContract, PruneOutboxKeepsWhatIsUndeliveredRecentOrNewest) {
  auto store = OpenStore();
  ASSERT_TRUE(store);
  auto entry = [](const std::string& sink, const std::string& subject, int64_t created) {
    OutboxEntry e;
    e.sink = sink;
    e.environment = "prod";
    e.event_type = "apply.succeeded";
    e.event_id = sink + subject + std::to_string(created);
    e.subject = subject;
    e.event_json = "{}";
    e.created_at = created;
    return e;
  };
  // audit: four plain entries delivered at 110, 120, 130, 140 and one never delivered.
  // ops: two reminders about one drift, delivered at 110 and 120.
  ASSERT_TRUE(
      store
          ->Enqueue({entry("audit", "", 100), entry("audit", "", 101), entry("audit", "", 102),
                     entry("audit", "", 103), entry("audit", "", 104), entry("ops", "drift:x", 100),
                     entry("ops", "drift:x", 101)})
          .ok());
  auto due = store->DueDeliveries(1000, 100);
  ASSERT_TRUE(due.ok());
  ASSERT_EQ(due->size(), 7u);
  int64_t t = 110;
  for (const OutboxEntry& e : *due) {
    if (e.sink == "audit" && e.created_at == 104) continue;  // stays undelivered
    ASSERT_TRUE(
        store->MarkDelivered(e.id, e.sink == "ops" ? 110 + 10 * (e.created_at - 100) : t).ok());
    if (e.sink == "audit") t += 10;
  }
  // Delivered before 135: audit's 110, 120 and 130 go; 140 is after; ops's older reminder goes,
  // its newest stays (reminders are counted from it).
  auto removed = store->PruneOutbox(135);
  ASSERT_TRUE(removed.ok()) << removed.error().message;
  EXPECT_EQ(*removed, 4);
  auto status = store->OutboxStatus();
  ASSERT_TRUE(status.ok());
  ASSERT_EQ(status->size(), 2u);
  EXPECT_EQ((*status)[0].delivered, 1);
  EXPECT_EQ((*status)[0].pending, 1);
  EXPECT_EQ((*status)[0].last_delivered_at, 140);
  EXPECT_EQ((*status)[1].delivered, 1);
  EXPECT_EQ(*store->LastEnqueuedAt("ops", "drift:x"), 101);
  // Everything is old now, but each sink keeps its last delivery, and nothing undelivered goes.
  removed = store->PruneOutbox(10000);
  ASSERT_TRUE(removed.ok());
  EXPECT_EQ(*removed, 0);
  EXPECT_EQ((*store->OutboxStatus())[0].last_delivered_at, 140);
  EXPECT_EQ(store->DueDeliveries(1000, 10)->size(), 1u);
}

TEST_P(StateStoreContract, DriftOnsetLastSeenAndResolution) {
  auto store_ = OpenStore();
  ASSERT_TRUE(store_);
  ASSERT_TRUE(store_->GetOrCreateEnvironment("prod").ok());
  auto opened = store_->ObserveDrift("prod", {{"file.file/a", "-x\n+y\n", ""}}, {}, "", 100);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  ASSERT_EQ(opened->size(), 1u);
  EXPECT_EQ((*opened)[0].onset, 100);
  // Seen again in the same second, then later: not new; last_seen and diff move on.
  auto same_second = store_->ObserveDrift("prod", {{"file.file/a", "-x\n+y\n", ""}}, {}, "", 100);
  ASSERT_TRUE(same_second.ok());
  EXPECT_TRUE(same_second->empty());
  auto again = store_->ObserveDrift("prod", {{"file.file/a", "-x\n+z\n", ""}}, {}, "", 160);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->empty());
  EXPECT_EQ(*store_->CountRemediation("prod", "file.file/a"), 1);
  EXPECT_EQ(*store_->CountRemediation("prod", "file.file/other"), 0);
  auto open = store_->ListDrift("prod", false, 10);
  ASSERT_TRUE(open.ok());
  ASSERT_EQ(open->size(), 1u);
  EXPECT_EQ((*open)[0].onset, 100);
  EXPECT_EQ((*open)[0].last_seen, 160);
  EXPECT_EQ((*open)[0].diff, "-x\n+z\n");
  EXPECT_EQ((*open)[0].remediations, 1);
  // Resolved; a new drift of the same resource is a new record.
  ASSERT_TRUE(store_->ObserveDrift("prod", {}, {"file.file/a", "file.file/b"}, "undone", 200).ok());
  EXPECT_TRUE(store_->ListDrift("prod", false, 10)->empty());
  auto reopened = store_->ObserveDrift("prod", {{"file.file/a", "d", "alice"}}, {}, "", 300);
  ASSERT_EQ(reopened->size(), 1u);
  auto all = store_->ListDrift("", true, 10);
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].actor, "alice");
  EXPECT_EQ((*all)[0].resolved_at, 0);
  EXPECT_EQ((*all)[1].resolution, "undone");
  EXPECT_EQ((*all)[1].resolved_at, 200);
}

// A lease runs out on the store's clock without anyone touching the row: a waiter takes the lock
// over once it expired, and the old holder is fenced.
TEST_P(StateStoreContract, LeaseExpiresOnTheStoreClock) {
  auto store = OpenStore();
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->GetOrCreateEnvironment("prod").ok());
  // On another host: only the lease can make it stale. A minute, so that it is live for sure
  // when it refuses the next acquirer; then its last renewal makes it end a second later.
  auto old_lock = store->AcquireLock("prod", Elsewhere(), "apply", 0, 60);
  ASSERT_TRUE(old_lock.ok()) << old_lock.error().message;
  auto old_id = store->BeginApply(*old_lock, ApplyRecord{}, {Intent("file.file/a", "create")});
  ASSERT_TRUE(old_id.ok());
  auto refused = store->AcquireLock("prod", CurrentIdentity(), "apply", 0);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().message, "environment prod is locked by " + HolderText(*old_lock) +
                                         " (use --lock-timeout to wait)");
  ASSERT_TRUE(store->RenewLock(*old_lock, 1).ok());
  // Only the lease running out can let this waiter in (the holder is on another host); had it
  // to wait for the timeout, it would fail.
  auto new_lock = store->AcquireLock("prod", CurrentIdentity(), "apply", 120);
  ASSERT_TRUE(new_lock.ok()) << new_lock.error().message;
  EXPECT_GT(new_lock->token, old_lock->token);
  EXPECT_EQ(store->GetApply(*old_id)->value().status, "interrupted");
  Lock renew = *old_lock;
  Status s = store->RenewLock(renew, 60);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().message, LostText(*new_lock));
  s = store->RecordResults(*old_lock, *old_id, {Done(Res("file.file", "a"))});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().message, LostText(*new_lock));
  EXPECT_TRUE(store->ListResources("prod")->empty());
  EXPECT_EQ(store->GetEnvironment("prod")->value().serial, 0);
}

// A holder whose lock was released (not taken over) is fenced too, and says which token it had.
TEST_P(StateStoreContract, ReleasedLockFencesItsHolder) {
  auto store = OpenStore();
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->GetOrCreateEnvironment("prod").ok());
  auto lock = store->AcquireLock("prod", CurrentIdentity(), "apply", 0);
  ASSERT_TRUE(lock.ok());
  auto id = store->BeginApply(*lock, ApplyRecord{}, {Intent("file.file/a", "create")});
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(store->ReleaseLock(*lock).ok());
  Status s = store->FinishApply(*lock, *id, "succeeded", "");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().message,
            "lost the lock of environment prod: it was released or taken over "
            "since (token " +
                std::to_string(lock->token) + " was ours)");
  EXPECT_EQ(store->GetApply(*id)->value().status, "interrupted");
}

// Many store objects (connections) at once on one environment: with a timeout every one gets
// the lock in turn, never two at a time; tokens are distinct; every write lands. Each holder
// keeps the lock until every thread has asked for it, so that the others are trying while it
// holds.
TEST_P(StateStoreContract, ConcurrentHoldersAreSerialised) {
  constexpr int kThreads = 8;
  std::vector<std::unique_ptr<StateStore>> stores = OpenStores(kThreads, "prod");
  ASSERT_EQ(stores.size(), static_cast<size_t>(kThreads));
  std::atomic<int> asked{0};
  std::atomic<int> inside{0};
  std::atomic<int> overlaps{0};
  std::vector<int64_t> tokens(kThreads, 0);
  std::vector<std::string> errors(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      StateStore& s = *stores[static_cast<size_t>(i)];
      ++asked;
      auto lock = s.AcquireLock("prod", CurrentIdentity(), "apply", 600);
      if (!lock.ok()) {
        errors[static_cast<size_t>(i)] = lock.error().message;
        return;
      }
      if (inside.fetch_add(1) != 0) ++overlaps;
      tokens[static_cast<size_t>(i)] = lock->token;
      ResourceState r = Res("file.file", "t" + std::to_string(i));
      auto id = s.BeginApply(*lock, ApplyRecord{}, {Intent(r.address, "create")});
      Status st = id.ok() ? s.RecordResults(*lock, *id, {Done(r)}) : Status(id.error());
      while (asked.load() < kThreads) std::this_thread::yield();
      if (st.ok()) st = s.FinishApply(*lock, *id, "succeeded", "1 created");
      if (!st.ok()) errors[static_cast<size_t>(i)] = st.error().message;
      inside.fetch_sub(1);
      if (Status rel = s.ReleaseLock(*lock); !rel.ok()) {
        errors[static_cast<size_t>(i)] = rel.error().message;
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kThreads; ++i) EXPECT_EQ(errors[static_cast<size_t>(i)], "") << i;
  EXPECT_EQ(overlaps.load(), 0);
  std::set<int64_t> distinct(tokens.begin(), tokens.end());
  EXPECT_EQ(distinct.size(), static_cast<size_t>(kThreads));
  auto store = OpenStore();
  ASSERT_TRUE(store);
  EXPECT_EQ(store->GetEnvironment("prod")->value().serial, kThreads);
  EXPECT_EQ(store->ListResources("prod")->size(), static_cast<size_t>(kThreads));
  auto applies = store->ListApplies("prod", 0);
  ASSERT_EQ(applies->size(), static_cast<size_t>(kThreads));
  for (const ApplyRecord& a : *applies) EXPECT_EQ(a.status, "succeeded");
  EXPECT_FALSE(store->GetLock("prod")->has_value());
}

// Without a timeout, of many simultaneous acquirers exactly one gets the lock; the others are
// told who holds it.
TEST_P(StateStoreContract, ConcurrentAcquirersWithoutTimeoutGetOneLock) {
  constexpr int kThreads = 8;
  std::vector<std::unique_ptr<StateStore>> stores = OpenStores(kThreads, "");
  ASSERT_EQ(stores.size(), static_cast<size_t>(kThreads));
  std::atomic<int> ready{0};
  std::atomic<int> tried{0};
  std::atomic<int> won{0};
  std::vector<std::string> refusals(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      ++ready;
      while (ready.load() < kThreads) std::this_thread::yield();
      auto lock =
          stores[static_cast<size_t>(i)]->AcquireLock("prod", CurrentIdentity(), "apply", 0);
      ++tried;
      if (!lock.ok()) {
        refusals[static_cast<size_t>(i)] = lock.error().message;
        return;
      }
      ++won;
      while (tried.load() < kThreads) std::this_thread::yield();  // hold until all have tried
      (void)stores[static_cast<size_t>(i)]->ReleaseLock(*lock);
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(won.load(), 1);
  int refused = 0;
  for (const std::string& m : refusals) {
    if (m.empty()) continue;
    ++refused;
    EXPECT_EQ(m.rfind("environment prod is locked by " + CurrentIdentity().UserAtHost() + " (pid " +
                          std::to_string(getpid()) + ") for apply since ",
                      0),
              0u)
        << m;
  }
  EXPECT_EQ(refused, kThreads - 1);
}

// Concurrent checkers that see the same drift open it once (the open-drift index).
TEST_P(StateStoreContract, ConcurrentObserversOpenOneDrift) {
  constexpr int kThreads = 6;
  std::vector<std::unique_ptr<StateStore>> stores = OpenStores(kThreads, "prod");
  ASSERT_EQ(stores.size(), static_cast<size_t>(kThreads));
  std::atomic<int> ready{0};
  std::atomic<int> opened{0};
  std::atomic<int> failed{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      ++ready;
      while (ready.load() < kThreads) std::this_thread::yield();
      auto got = stores[static_cast<size_t>(i)]->ObserveDrift(
          "prod", {{"file.file/a", "-x\n+y\n", ""}}, {}, "", 100);
      if (!got.ok()) {
        ++failed;
        return;
      }
      opened += static_cast<int>(got->size());
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(opened.load(), 1);
  auto store = OpenStore();
  ASSERT_TRUE(store);
  EXPECT_EQ(store->ListDrift("prod", true, 100)->size(), 1u);
}

}  // namespace
}  // namespace driftless::state::testing
