// `driftless watch` on real files: each edit, delete, chmod and rename of a managed file is one
// drift event; enforce reverts and records a remediation; report records; ignore is never
// compared; paused is reported, never touched; a flapping resource is backed off.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "e2e/harness.h"

namespace driftless::test {
namespace {

void Overwrite(const std::string& path, const std::string& bytes) {
  std::FILE* f = std::fopen(path.c_str(), "w");
  ASSERT_TRUE(f != nullptr) << path;
  std::fputs(bytes.c_str(), f);
  std::fclose(f);
}

class WatchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    box_.WriteProject();
    std::string docs;
    for (const char* n : {"a", "b", "c", "d"}) {
      docs += std::string("---\nkind: file.file\nname: ") + n +
              "\ntarget: host\nspec: {path: " + n + ".txt, content: " + n + ", mode: \"0644\"}\n";
    }
    docs +=
        "---\nkind: file.file\nname: e\ntarget: host\nspec: {path: e.txt, content: e}\n"
        "policy: {drift: enforce}\n"
        "---\nkind: file.file\nname: ign\ntarget: host\nspec: {path: ign.txt, content: i}\n"
        "policy: {drift: ignore}\n"
        "---\nkind: file.file\nname: p\ntarget: host\nspec: {path: p.txt, content: p}\n"
        "policy: {drift: enforce}\n";
    box_.WriteRepoFile("files.yaml", docs);
    docs_ = docs;
    RunResult a = box_.Run({"apply", "--auto-approve"});
    ASSERT_EQ(a.exit_code, 0) << a.out << a.err;
  }

  void StartWatch(const std::vector<std::string>& extra = {}) {
    // It runs until the test ends it (SIGTERM in TearDown), however long the test takes.
    std::vector<std::string> args = {"watch", "--interval", "1h"};
    args.insert(args.end(), extra.begin(), extra.end());
    pid_ = box_.Start(args);
    ASSERT_TRUE(WaitForOutput(box_, "\"type\":\"watch.started\""))
        << Output() << ReadFile(BackgroundFile(box_, ".err"));
  }

  void TearDown() override {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      EXPECT_EQ(Wait(pid_), 0) << ReadFile(BackgroundFile(box_, ".err"));
    }
  }

  std::string Output() const { return BackgroundOutput(box_); }

  // Events of `type` about file.file/`name` so far.
  size_t Events(const std::string& type, const std::string& name) {
    std::string out = Output();
    size_t n = 0, start = 0;
    while (start < out.size()) {
      size_t nl = out.find('\n', start);
      std::string line = out.substr(start, nl - start);
      if (line.find("\"type\":\"" + type + "\"") != std::string::npos &&
          line.find("\"resource\":\"file.file/" + name + "\"") != std::string::npos)
        ++n;
      if (nl == std::string::npos) break;
      start = nl + 1;
    }
    return n;
  }
  bool WaitForEvent(const std::string& type, const std::string& name) {
    return PollUntil([&] { return Events(type, name) > 0; });
  }

  // Pauses resource p (after it was applied: a paused resource is never created either).
  void PauseP() {
    std::string docs = docs_;
    size_t at = docs.rfind("policy: {drift: enforce}");
    docs.replace(at, 24, "policy: {drift: enforce, paused: true}");
    box_.WriteRepoFile("files.yaml", docs);
  }

  Sandbox box_;
  std::string docs_;
  int pid_ = -1;
};

TEST_F(WatchTest, EachKindOfChangeIsOneDriftEvent) {
  PauseP();
  StartWatch();
  const std::string r = box_.root();
  Overwrite(r + "/a.txt", "edited");
  ASSERT_TRUE(WaitForEvent("drift.detected", "a")) << Output();
  std::filesystem::remove(r + "/b.txt");
  ASSERT_TRUE(WaitForEvent("drift.detected", "b")) << Output();
  chmod((r + "/c.txt").c_str(), 0600);
  ASSERT_TRUE(WaitForEvent("drift.detected", "c")) << Output();
  std::filesystem::rename(r + "/d.txt", r + "/d-moved.txt");
  ASSERT_TRUE(WaitForEvent("drift.detected", "d")) << Output();
  Overwrite(r + "/ign.txt", "ignored");
  // More writes to an already drifted file are not new drift. The watch handles changes in the
  // order they happen, so p's event, written after, shows that it has looked at these.
  Overwrite(r + "/a.txt", "edited again");
  Overwrite(r + "/p.txt", "paused");
  ASSERT_TRUE(WaitForEvent("drift.detected", "p")) << Output();
  EXPECT_NE(Output().find("\"policy\":\"paused\""), std::string::npos) << Output();
  for (const char* n : {"a", "b", "c", "d", "p"}) EXPECT_EQ(Events("drift.detected", n), 1u) << n;
  EXPECT_EQ(Events("drift.detected", "ign"), 0u);
  EXPECT_EQ(ReadFile(r + "/p.txt"), "paused") << "paused resources are never touched";

  // The timeline has them open; report left them for the next apply.
  RunResult h = box_.Run({"drift", "--history", "--json"});
  Json j;
  ASSERT_TRUE(ReadJson(h.out, &j)) << h.out;
  EXPECT_EQ(j.items.size(), 5u);
  EXPECT_EQ(ReadFile(r + "/a.txt"), "edited again");
}

TEST_F(WatchTest, EnforceRevertsAtOnceAndRecordsARemediation) {
  StartWatch();
  Overwrite(box_.root() + "/e.txt", "hot-fix by hand");
  ASSERT_TRUE(WaitForOutput(box_, "\"resolution\":\"enforcement\"")) << Output();
  EXPECT_EQ(ReadFile(box_.root() + "/e.txt"), "e");
  EXPECT_EQ(Events("drift.detected", "e"), 1u);
  RunResult h = box_.Run({"history", "--json"});
  Json j;
  ASSERT_TRUE(ReadJson(h.out, &j)) << h.out;
  ASSERT_GE(j.items.size(), 2u);
  EXPECT_EQ(j.items[0].Str("kind"), "remediation");
  EXPECT_EQ(j.items[0].Str("summary"), "1 healed");
  RunResult d = box_.Run({"drift", "--history", "--json"});
  ASSERT_TRUE(ReadJson(d.out, &j)) << d.out;
  ASSERT_EQ(j.items.size(), 1u);
  EXPECT_EQ(j.items[0].Str("resolution"), "enforcement");
}

TEST_F(WatchTest, AFlappingResourceIsBackedOff) {
  StartWatch({"--flap-limit", "2"});
  const std::string e = box_.root() + "/e.txt";
  for (int i = 1; i <= 2; ++i) {
    Overwrite(e, "fight " + std::to_string(i));
    ASSERT_TRUE(WaitForOutput(box_, "\"resolution\":\"enforcement\"", static_cast<size_t>(i)))
        << Output();
  }
  Overwrite(e, "fight 3");
  ASSERT_TRUE(WaitForOutput(box_, "\"type\":\"drift.flapping\"")) << Output();
  // The event is the decision: once it is out, nothing reverts the file before the next full
  // scan (an hour away).
  EXPECT_EQ(ReadFile(e), "fight 3") << "backed off: not reverted again";
  EXPECT_EQ(CountOf(Output(), "\"resolution\":\"enforcement\""), 2u);
}

}  // namespace
}  // namespace driftless::test
