// kill -9 in the middle of large applies, updates and destroys, at random moments, and what the
// next plan and apply make of the state left behind.
//
// The suite is named e2e_slow_crash so that `ctest -R e2e_slow_crash` selects it (ctest knows the
// discovered tests by their GoogleTest names only). Every random choice comes from one seed,
// printed at the start; set DRIFTLESS_CRASH_SEED to replay a run.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "e2e/harness.h"

namespace driftless::test {
namespace {

// Collects the problems of one check: the first few are reported in full, then only counted, so
// that a systematic fault does not print thousands of lines.
class Problems {
 public:
  explicit Problems(std::string what) : what_(std::move(what)) {}
  ~Problems() { EXPECT_EQ(count_, 0) << "problems found with " << what_; }
  Problems(const Problems&) = delete;
  Problems& operator=(const Problems&) = delete;

  void Check(bool ok, const std::string& message) {
    if (ok) return;
    if (++count_ <= 12) ADD_FAILURE() << message;
  }

 private:
  std::string what_;
  int count_ = 0;
};

// --- the declarations ---

constexpr int kResources = 3000;  // in all, directories included
constexpr int kDirs = 5;
constexpr int kFiles = kResources - kDirs;

struct Decl {
  std::string kind;
  std::string name;
  std::string path;  // relative to the target root
  std::vector<std::string> deps;
  bool directory = false;

  std::string Address() const { return kind + "/" + name; }
  std::string Content(int generation) const {
    return "generation " + std::to_string(generation) + " of " + name + "\n";
  }
};

// 5 directories and 2,995 files. Every file in a directory depends on it, directly or through a
// chain: one group of ten files in four is a chain of ten (each file depends on the previous
// one, the first on the directory); one file in a hundred lies outside the directories and has
// no dependency at all.
std::vector<Decl> MakeDecls() {
  std::vector<Decl> out;
  for (int d = 0; d < kDirs; ++d) {
    Decl dir;
    dir.kind = "file.directory";
    dir.name = "d" + std::to_string(d);
    dir.path = "d" + std::to_string(d);
    dir.directory = true;
    out.push_back(dir);
  }
  for (int i = 0; i < kFiles; ++i) {
    Decl f;
    f.kind = "file.file";
    f.name = "f" + std::to_string(i);
    int group = i / 10;
    int dir = group % kDirs;
    if (i % 100 == 99) {
      f.path = "loose/f" + std::to_string(i) + ".txt";
    } else {
      f.path = "d" + std::to_string(dir) + "/f" + std::to_string(i) + ".txt";
      if (group % 4 == 0 && i % 10 != 0) {
        f.deps.push_back("file.file/f" + std::to_string(i - 1));
      } else {
        f.deps.push_back("file.directory/d" + std::to_string(dir));
      }
    }
    out.push_back(f);
  }
  return out;
}

// Writes the declarations of `generation` into ten files of the repository.
void WriteDecls(const Sandbox& s, const std::vector<Decl>& decls, int generation) {
  constexpr size_t kParts = 10;
  std::vector<std::string> parts(kParts);
  for (size_t i = 0; i < decls.size(); ++i) {
    const Decl& d = decls[i];
    std::string doc =
        "kind: " + d.kind + "\nname: " + d.name + "\ntarget: host\nspec: {path: " + d.path;
    if (d.directory) {
      doc += ", mode: \"0755\"}\n";
    } else {
      std::string content = d.Content(generation);
      content.pop_back();  // the final newline, written as an escape below
      doc += ", content: \"" + content + "\\n\"}\n";
    }
    if (!d.deps.empty()) {
      doc += "depends_on: [";
      for (size_t k = 0; k < d.deps.size(); ++k) doc += (k ? ", " : "") + d.deps[k];
      doc += "]\n";
    }
    std::string& part = parts[i % kParts];
    if (!part.empty()) part += "---\n";
    part += doc;
  }
  for (size_t p = 0; p < kParts; ++p) {
    s.WriteRepoFile("decls/part" + std::to_string(p) + ".yaml", parts[p]);
  }
}

// What is at a resource's path.
enum class Disk { kMissing, kRight, kOld, kWrong };

const char* DiskName(Disk d) {
  switch (d) {
    case Disk::kMissing:
      return "missing";
    case Disk::kRight:
      return "as declared";
    case Disk::kOld:
      return "with the previous content";
    case Disk::kWrong:
      return "with unexpected content";
  }
  return "?";
}

// `old_generation` < 0: there is no previous content.
Disk Inspect(const Sandbox& s, const Decl& d, int generation, int old_generation) {
  std::string p = s.root() + "/" + d.path;
  struct stat st {};
  if (lstat(p.c_str(), &st) != 0) return Disk::kMissing;
  if (d.directory) return S_ISDIR(st.st_mode) ? Disk::kRight : Disk::kWrong;
  if (!S_ISREG(st.st_mode)) return Disk::kWrong;
  std::string content = ReadFile(p);
  if (content == d.Content(generation)) return Disk::kRight;
  if (old_generation >= 0 && content == d.Content(old_generation)) return Disk::kOld;
  return Disk::kWrong;
}

// --- reading the state through the command line ---

std::set<std::string> StateAddresses(const Sandbox& s) {
  RunResult r = s.Run({"state", "list", "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::set<std::string> out;
  Json j = ParseJsonOrFail(r.out, "state list --json");
  for (const Json& item : j.items) out.insert(item.Str("address"));
  return out;
}

std::vector<Json> History(const Sandbox& s) {
  RunResult r = s.Run({"history", "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return ParseJsonOrFail(r.out, "history --json").items;
}

// The history entry of the apply run by `pid`, if any.
std::unique_ptr<Json> ApplyOfPid(const Sandbox& s, int pid) {
  for (Json& a : History(s)) {
    if (a.Int("pid") == pid) return std::make_unique<Json>(std::move(a));
  }
  return nullptr;
}

// address -> status of its change in apply `id` ("pending", "done", ...).
std::map<std::string, std::string> ChangesOf(const Sandbox& s, int64_t id) {
  RunResult r = s.Run({"history", "show", std::to_string(id), "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  Json j = ParseJsonOrFail(r.out, "history show --json");
  std::map<std::string, std::string> out;
  if (const Json* changes = j.Find("changes")) {
    for (const Json& c : changes->items) out[c.Str("address")] = c.Str("status");
  }
  return out;
}

// --- process control ---

uint64_t Seed() {
  if (const char* fixed = std::getenv("DRIFTLESS_CRASH_SEED"); fixed != nullptr && *fixed) {
    return std::strtoull(fixed, nullptr, 10);
  }
  return (static_cast<uint64_t>(std::random_device()()) << 32) ^ std::random_device()();
}

// How many files there are under the target root's folders.
int CountFiles(const Sandbox& s) {
  int n = 0;
  for (const char* dir : {"d0", "d1", "d2", "d3", "d4", "loose"}) {
    std::error_code ec;
    for (auto it = std::filesystem::directory_iterator(s.root() + "/" + dir, ec);
         !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
      ++n;
    }
  }
  return n;
}

// Kills `pid` with SIGKILL once `reached()` holds (or once it exited by itself). Moments are
// drawn as points of the work's progress, not as times, so that they fall where they should on
// a fast machine and on a loaded one alike. Returns how it ended: -SIGKILL when the kill hit it,
// else its exit code (it finished first).
int KillWhen(int pid, const std::function<bool()>& reached) {
  PollUntil([&] { return Exited(pid) || reached(); }, std::chrono::minutes(10));
  kill(pid, SIGKILL);
  return Wait(pid);  // reaps it: a zombie would still count as alive for the lock check
}

const std::map<std::string, std::string>& PastTense() {
  static const std::map<std::string, std::string> m = {
      {"create", "created"}, {"update", "updated"}, {"replace", "replaced"},
      {"delete", "deleted"}, {"heal", "healed"},    {"record", "recorded"}};
  return m;
}

// "Apply #N succeeded: 3 created, 1 recorded." as printed for these per-action counts.
std::string ExpectedSummary(const std::map<std::string, int>& counts) {
  std::string out;
  for (const char* a : {"create", "update", "replace", "delete", "heal", "record"}) {
    auto it = counts.find(a);
    if (it == counts.end() || it->second == 0) continue;
    out += (out.empty() ? "" : ", ") + std::to_string(it->second) + " " + PastTense().at(a);
  }
  return out;
}

// The plan's action per address; fails the test on a malformed plan or a duplicate address.
struct PlanView {
  std::map<std::string, const Json*> by_address;
  Json root;
};

void ReadPlan(const Sandbox& s, PlanView* view) {
  RunResult r = s.Run({"plan", "--json"});
  ASSERT_EQ(r.exit_code, 0) << "plan --json after the kill failed:\n" << r.err;
  view->root = ParseJsonOrFail(r.out, "plan --json");
  const Json* changes = view->root.Find("changes");
  ASSERT_NE(changes, nullptr) << r.out.substr(0, 2000);
  const Json* summary = view->root.Find("summary");
  ASSERT_NE(summary, nullptr);
  EXPECT_EQ(summary->Int("drifted"), 0)
      << "only driftless touched the files, yet the plan after the kill counts drift";
  for (const Json& c : changes->items) {
    bool fresh = view->by_address.emplace(c.Str("address"), &c).second;
    EXPECT_TRUE(fresh) << "the plan lists " << c.Str("address") << " twice";
  }
}

// After a kill during an apply that creates (old_generation < 0) or updates everything:
// checks that the plan shows exactly the remaining work and returns the count per action.
std::map<std::string, int> CheckRemainingApplyWork(const Sandbox& s, const std::vector<Decl>& decls,
                                                   int generation, int old_generation,
                                                   const std::map<std::string, std::string>& killed,
                                                   const std::set<std::string>& in_state) {
  PlanView plan;
  ReadPlan(s, &plan);
  if (::testing::Test::HasFatalFailure()) return {};
  EXPECT_EQ(plan.by_address.size(), decls.size()) << "the plan should list every resource, once";

  std::map<std::string, Disk> disk;
  for (const Decl& d : decls) disk[d.Address()] = Inspect(s, d, generation, old_generation);

  std::map<std::string, int> counts;
  Problems problems("the plan after the kill");
  for (const Decl& d : decls) {
    const std::string address = d.Address();
    auto it = plan.by_address.find(address);
    if (it == plan.by_address.end()) {
      problems.Check(false, address + " is missing from the plan");
      continue;
    }
    const Json& c = *it->second;
    const std::string action = c.Str("action");
    const std::string warning = c.Str("warning");
    const Disk on_disk = disk[address];
    auto k = killed.find(address);
    const std::string outcome = k == killed.end() ? "" : k->second;  // "": not an intent
    const bool known = in_state.count(address) > 0;
    ++counts[action];
    const std::string where =
        address + " (" + DiskName(on_disk) + ", planned " + action +
        ", change in the killed apply: " + (outcome.empty() ? "none" : outcome) + ", " +
        (known ? "in state" : "not in state") + (warning.empty() ? "" : ", warning: " + warning) +
        ")";
    problems.Check(warning.empty(), where + ": no plan after a kill may warn");
    // Nothing was touched outside driftless: what the killed apply itself did is not drift.
    problems.Check(!c.Bool("drift"), where +
                                         ": reported as drift (changed outside driftless), "
                                         "though only the killed apply touched it; reason: " +
                                         c.Str("reason"));
    problems.Check(outcome == "" || outcome == "pending" || outcome == "done",
                   where + ": a kill leaves changes pending or done, nothing else");
    switch (on_disk) {
      case Disk::kRight:
        problems.Check(action == "no-op" || action == "record",
                       where + ": as declared, so unchanged or recorded");
        if (action == "no-op") {
          problems.Check(known, where + ": unchanged, so state must know it");
          problems.Check(outcome != "pending", where + ": in doubt, yet planned as unchanged");
        }
        if (action == "record") {
          problems.Check(outcome == "pending", where + ": record is for changes in doubt only");
        }
        break;
      case Disk::kMissing:
        problems.Check(action == "create", where + ": missing, so to create");
        problems.Check(outcome != "done", where + ": recorded as done, yet missing");
        problems.Check(!known, where + ": missing, yet state knows it");
        break;
      case Disk::kOld:
        problems.Check(action == "update", where + ": still the old content, so to update");
        problems.Check(outcome != "done", where + ": recorded as done, yet still the old content");
        problems.Check(known, where + ": an update does not remove it from state");
        break;
      case Disk::kWrong:
        problems.Check(false, where + ": a kill must never leave a half-written object");
        break;
    }
    if (outcome == "done") {
      problems.Check(on_disk == Disk::kRight && action == "no-op",
                     where + ": recorded as done, so as declared and unchanged");
    }
    // Dependency order: nothing is done before what it depends on.
    if (on_disk == Disk::kRight) {
      for (const auto& dep : d.deps) {
        problems.Check(disk[dep] == Disk::kRight, address + " is done but its dependency " + dep +
                                                      " is " + DiskName(disk[dep]));
      }
    }
  }
  int sum = 0;
  for (const auto& [a, n] : counts) sum += n;
  EXPECT_EQ(sum, kResources);
  if (old_generation < 0) {
    EXPECT_EQ(counts["no-op"] + counts["record"] + counts["create"], kResources);
  } else {
    EXPECT_EQ(counts["no-op"] + counts["record"] + counts["update"], kResources);
  }
  return counts;
}

// Every file as declared, and a plan without changes.
void ExpectConverged(const Sandbox& s, const std::vector<Decl>& decls, int generation) {
  RunResult p = s.Run({"plan", "--detailed-exitcode"});
  EXPECT_EQ(p.exit_code, 0) << p.out.substr(0, 3000) << p.err;
  Problems problems("the files after convergence");
  for (const Decl& d : decls) {
    Disk got = Inspect(s, d, generation, -1);
    problems.Check(got == Disk::kRight, d.Address() + " at " + d.path + " is " + DiskName(got));
  }
}

// The apply killed as `pid`: "running" before the next apply; returns its id (0: none).
int64_t KilledApplyBeforeNext(const Sandbox& s, int pid, const std::string& kind) {
  std::unique_ptr<Json> a = ApplyOfPid(s, pid);
  if (a == nullptr) return 0;  // killed before it recorded its start
  EXPECT_EQ(a->Str("kind"), kind);
  EXPECT_TRUE(a->Str("status") == "running" || a->Str("status") == "succeeded" ||
              a->Str("status") == "failed")
      << "status of the killed " << kind << " before the next one: " << a->Str("status");
  return a->Int("id");
}

// Once the next apply took the lock, the killed one that was running is "interrupted".
void ExpectInterrupted(const Sandbox& s, int pid, const std::string& status_before) {
  std::unique_ptr<Json> a = ApplyOfPid(s, pid);
  ASSERT_NE(a, nullptr) << "the killed apply (pid " << pid << ") vanished from history";
  if (status_before == "running") {
    EXPECT_EQ(a->Str("status"), "interrupted") << "apply #" << a->Int("id");
    EXPECT_FALSE(a->IsNull("finished_at")) << "an interrupted apply has an end time";
  } else {
    EXPECT_EQ(a->Str("status"), status_before) << "a finished apply keeps its status";
  }
}

// --- the tests ---

// Eight applies killed at random moments spread over their progress (the k-th in the k-th eighth
// of the files created), each in a fresh sandbox.
TEST(e2e_slow_crash, KillDuringCreateAtRandomMoments) {
  const uint64_t seed = Seed();
  std::printf("[ crash ] seed %llu (set DRIFTLESS_CRASH_SEED=%llu to replay)\n",
              static_cast<unsigned long long>(seed), static_cast<unsigned long long>(seed));
  RecordProperty("seed", std::to_string(seed));
  std::mt19937_64 rng(seed);
  const std::vector<Decl> decls = MakeDecls();

  constexpr int kMoments = 8;
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  for (int k = 0; k < kMoments; ++k) {
    // Moment k falls in the k-th eighth of the files created (the first eighth begins before
    // anything is done, when the apply may not even have recorded its start).
    const double fraction = (k + unit(rng)) / kMoments;
    const int threshold = static_cast<int>(kFiles * fraction);
    SCOPED_TRACE("moment " + std::to_string(k) + ": kill once " + std::to_string(threshold) +
                 " files exist (seed " + std::to_string(seed) + ")");
    Sandbox s;
    s.WriteProject();
    WriteDecls(s, decls, 1);
    const int pid = s.Start({"apply", "--auto-approve"});
    const int ended = KillWhen(pid, [&] { return CountFiles(s) >= threshold; });
    ASSERT_TRUE(ended == -SIGKILL || ended == 0) << "the apply ended with " << ended;

    const int64_t killed_id = KilledApplyBeforeNext(s, pid, "apply");
    std::string status_before;
    std::map<std::string, std::string> killed;
    if (killed_id != 0) {
      status_before = ApplyOfPid(s, pid)->Str("status");
      killed = ChangesOf(s, killed_id);
      EXPECT_EQ(killed.size(), static_cast<size_t>(kResources))
          << "the apply records every intended change before it touches anything";
    }
    const std::set<std::string> in_state = StateAddresses(s);
    std::map<std::string, int> counts = CheckRemainingApplyWork(s, decls, 1, -1, killed, in_state);
    if (HasFatalFailure()) return;
    std::printf(
        "[ crash ] moment %d: killed once %d files existed (%s), apply #%lld %s: %d "
        "unchanged, %d to record, %d to create\n",
        k, threshold, ended == 0 ? "it had finished" : "SIGKILL", static_cast<long long>(killed_id),
        killed_id ? status_before.c_str() : "not begun", counts["no-op"], counts["record"],
        counts["create"]);
    if (killed_id == 0) {
      EXPECT_EQ(counts["create"], kResources)
          << "nothing may be touched before the apply is recorded";
    }

    RunResult again = s.Run({"apply", "--auto-approve"});
    ASSERT_EQ(again.exit_code, 0) << again.err;
    std::string summary = ExpectedSummary(counts);
    if (summary.empty()) {
      EXPECT_NE(again.out.find("No changes."), std::string::npos) << again.out.substr(0, 2000);
    } else {
      EXPECT_NE(again.out.find(" succeeded: " + summary + ".\n"), std::string::npos)
          << "expected \"" << summary << "\" in the output of the next apply:\n"
          << again.out.substr(again.out.size() > 2000 ? again.out.size() - 2000 : 0);
    }
    if (killed_id != 0) ExpectInterrupted(s, pid, status_before);
    ExpectConverged(s, decls, 1);
    if (HasFailure()) return;  // one broken moment is enough to read
  }
}

// An apply that changes the content of every file, killed in the middle of its work.
TEST(e2e_slow_crash, KillDuringUpdate) {
  const uint64_t seed = Seed();
  std::printf("[ crash ] seed %llu (set DRIFTLESS_CRASH_SEED=%llu to replay)\n",
              static_cast<unsigned long long>(seed), static_cast<unsigned long long>(seed));
  RecordProperty("seed", std::to_string(seed));
  std::mt19937_64 rng(seed);
  const std::vector<Decl> decls = MakeDecls();
  Sandbox s;
  s.WriteProject();
  WriteDecls(s, decls, 1);
  RunResult first = s.Run({"apply", "--auto-approve"});
  ASSERT_EQ(first.exit_code, 0) << first.err;

  // Killed while history shows it running with a random share (10% to 90%) of its changes
  // recorded done and some still pending: stepped through its work (frozen at every look, let
  // on by a few ticks of CPU at a time, fewer as it nears the share), caught there, then killed,
  // so that the moment lies in the middle of the work on every run. Should the apply still
  // finish between two looks (its pace changed more than the steps allow for), the next
  // generation is tried with a new share: finishing is correct, only not what this test is for.
  int generation = 1;
  int pid = -1;
  double fraction = 0;
  ApplyProgress progress;
  bool caught = false;
  for (int attempt = 0; attempt < 5 && !caught; ++attempt) {
    fraction = std::uniform_real_distribution<double>(0.1, 0.9)(rng);
    ++generation;
    WriteDecls(s, decls, generation);
    SCOPED_TRACE("generation " + std::to_string(generation) + ": kill once " +
                 std::to_string(fraction) + " of the changes are recorded (seed " +
                 std::to_string(seed) + ")");
    pid = s.Start({"apply", "--auto-approve"});
    int asked = 1, last_done = 0;
    double per_tick = 0;  // the fastest pace seen, in changes recorded per tick
    caught = StepUntil(
        pid,
        [&] {
          progress = ProgressOf(s, "default", pid);
          const int total = progress.done + progress.pending;
          if (progress.status == "running" && progress.done > 0 && progress.pending > 0 &&
              progress.done >= fraction * total) {
            return 0;
          }
          if (progress.done > last_done) {
            per_tick = std::max(per_tick, (progress.done - last_done) / double(asked));
          }
          last_done = progress.done;
          const double left = fraction * (total > 0 ? total : kResources) - progress.done;
          // Half the way left at the fastest pace seen; before any pace is known, a doubling
          // quantum of at most 8 ticks.
          asked = per_tick > 0 ? std::clamp(static_cast<int>(left / per_tick / 2), 1, 1000)
                               : std::min(asked * 2, 8);
          return asked;
        },
        std::chrono::minutes(10));
    if (!caught) {
      const int ended = Wait(pid);
      ASSERT_EQ(ended, 0) << "the update was never caught with " << fraction
                          << " of its changes done, and it failed";
      std::printf("[ crash ] generation %d finished between two looks; trying the next\n",
                  generation);
    }
  }
  ASSERT_TRUE(caught) << "five updates in a row finished between two looks";
  kill(pid, SIGKILL);
  ASSERT_EQ(Wait(pid), -SIGKILL);

  const int64_t killed_id = KilledApplyBeforeNext(s, pid, "apply");
  std::string status_before;
  std::map<std::string, std::string> killed;
  if (killed_id != 0) {
    status_before = ApplyOfPid(s, pid)->Str("status");
    killed = ChangesOf(s, killed_id);
  }
  const std::set<std::string> in_state = StateAddresses(s);
  EXPECT_EQ(in_state.size(), static_cast<size_t>(kResources)) << "an update removes nothing";
  std::map<std::string, int> counts =
      CheckRemainingApplyWork(s, decls, generation, generation - 1, killed, in_state);
  if (HasFatalFailure()) return;
  std::printf(
      "[ crash ] update killed with %d of %d changes recorded, apply #%lld %s: %d "
      "unchanged, %d to record, %d to update\n",
      progress.done, progress.done + progress.pending, static_cast<long long>(killed_id),
      killed_id ? status_before.c_str() : "not begun", counts["no-op"], counts["record"],
      counts["update"]);

  RunResult again = s.Run({"apply", "--auto-approve"});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  std::string summary = ExpectedSummary(counts);
  if (!summary.empty()) {
    EXPECT_NE(again.out.find(" succeeded: " + summary + ".\n"), std::string::npos)
        << "expected \"" << summary << "\" in:\n"
        << again.out.substr(again.out.size() > 2000 ? again.out.size() - 2000 : 0);
  }
  if (killed_id != 0) ExpectInterrupted(s, pid, status_before);
  ExpectConverged(s, decls, generation);
  EXPECT_EQ(status_before, "running");
  EXPECT_GT(counts["no-op"], kDirs) << "some files' updates were recorded";
  EXPECT_GT(counts["record"] + counts["update"], 0) << "and some were not";
}

// A destroy killed at a random point of its progress. Deletes are much faster than creates, so
// the moment is drawn as a fraction of the resources deleted rather than as a time: the test
// watches the target root and kills the destroy when that fraction is gone.
TEST(e2e_slow_crash, KillDuringDestroy) {
  const uint64_t seed = Seed();
  std::printf("[ crash ] seed %llu (set DRIFTLESS_CRASH_SEED=%llu to replay)\n",
              static_cast<unsigned long long>(seed), static_cast<unsigned long long>(seed));
  RecordProperty("seed", std::to_string(seed));
  std::mt19937_64 rng(seed);
  const std::vector<Decl> decls = MakeDecls();
  Sandbox s;
  s.WriteProject();
  WriteDecls(s, decls, 1);
  RunResult first = s.Run({"apply", "--auto-approve"});
  ASSERT_EQ(first.exit_code, 0) << first.err;

  const double fraction = std::uniform_real_distribution<double>(0.1, 0.9)(rng);
  SCOPED_TRACE("kill once " + std::to_string(fraction) + " of the files are gone (seed " +
               std::to_string(seed) + ")");
  const int threshold = static_cast<int>(kFiles * (1.0 - fraction));
  const int pid = s.Start({"destroy", "default", "--auto-approve"});
  // Finished before the threshold: checked below all the same.
  const int ended = KillWhen(pid, [&] { return CountFiles(s) <= threshold; });
  ASSERT_TRUE(ended == -SIGKILL || ended == 0) << "the destroy ended with " << ended;

  const int64_t killed_id = KilledApplyBeforeNext(s, pid, "destroy");
  std::string status_before;
  std::map<std::string, std::string> killed;
  if (killed_id != 0) {
    status_before = ApplyOfPid(s, pid)->Str("status");
    killed = ChangesOf(s, killed_id);
  }
  const std::set<std::string> in_state = StateAddresses(s);

  // The (non-destroy) plan shows what the destroy left: what is still there is unchanged; what
  // is gone is to create when the deletion was recorded, to heal when it is in doubt.
  PlanView plan;
  ReadPlan(s, &plan);
  if (HasFatalFailure()) return;
  EXPECT_EQ(plan.by_address.size(), decls.size());
  std::map<std::string, Disk> disk;
  for (const Decl& d : decls) disk[d.Address()] = Inspect(s, d, 1, -1);
  std::map<std::string, int> counts;
  int present = 0, in_doubt = 0, deleted = 0;
  {
    Problems problems("the plan after the killed destroy");
    for (const Decl& d : decls) {
      const std::string address = d.Address();
      auto it = plan.by_address.find(address);
      if (it == plan.by_address.end()) {
        problems.Check(false, address + " is missing from the plan");
        continue;
      }
      const std::string action = it->second->Str("action");
      ++counts[action];
      auto k = killed.find(address);
      const std::string outcome = k == killed.end() ? "" : k->second;
      const bool known = in_state.count(address) > 0;
      const std::string where =
          address + " (" + DiskName(disk[address]) + ", planned " + action +
          ", change in the killed destroy: " + (outcome.empty() ? "none" : outcome) + ", " +
          (known ? "in state" : "not in state") + ")";
      problems.Check(it->second->Str("warning").empty(), where + ": no plan after a kill may warn");
      problems.Check(!it->second->Bool("drift"),
                     where +
                         ": reported as drift (changed outside driftless), though only the "
                         "killed destroy touched it; reason: " +
                         it->second->Str("reason"));
      if (disk[address] == Disk::kRight) {
        ++present;
        problems.Check(action == "no-op", where + ": still there, so unchanged");
        problems.Check(known, where + ": still there, so still in state");
        problems.Check(outcome != "done", where + ": recorded as deleted, yet still there");
        for (const auto& dep : d.deps) {
          problems.Check(
              disk[dep] == Disk::kRight,
              address + " is still there but its dependency " + dep + " was deleted first");
        }
      } else if (disk[address] == Disk::kMissing) {
        if (known) {
          ++in_doubt;
          problems.Check(action == "heal", where + ": gone but in state, so to heal");
          problems.Check(outcome == "pending", where + ": gone and still in state, so in doubt");
        } else {
          ++deleted;
          problems.Check(action == "create", where + ": gone and forgotten, so to create");
          problems.Check(outcome == "done", where + ": forgotten, so its deletion was recorded");
        }
      } else {
        problems.Check(false, where);
      }
    }
  }
  EXPECT_EQ(present + in_doubt + deleted, kResources);
  EXPECT_EQ(in_state.size(), static_cast<size_t>(present + in_doubt));
  std::printf(
      "[ crash ] destroy killed with %.2f of the files gone (%s): %d still there, %d "
      "deleted in doubt, %d deleted and recorded\n",
      fraction, ended == 0 ? "it had finished" : "SIGKILL", present, in_doubt, deleted);

  // Destroying again finishes the work and marks the killed destroy interrupted.
  RunResult again = s.Run({"destroy", "default", "--auto-approve"});
  ASSERT_EQ(again.exit_code, 0) << again.err << again.out.substr(0, 2000);
  if (present + in_doubt > 0) {
    EXPECT_NE(again.out.find(" succeeded: " + std::to_string(present + in_doubt) + " deleted.\n"),
              std::string::npos)
        << again.out.substr(again.out.size() > 2000 ? again.out.size() - 2000 : 0);
  }
  if (killed_id != 0) ExpectInterrupted(s, pid, status_before);
  EXPECT_TRUE(StateAddresses(s).empty());
  {
    Problems problems("the target root after the second destroy");
    for (const Decl& d : decls) {
      problems.Check(!Exists(s.root() + "/" + d.path), d.path + " survived the destroy");
    }
  }
  // And the environment comes back whole.
  RunResult back = s.Run({"apply", "--auto-approve"});
  ASSERT_EQ(back.exit_code, 0) << back.err;
  ExpectConverged(s, decls, 1);
}

}  // namespace
}  // namespace driftless::test
