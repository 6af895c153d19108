// The stamp checks of a plan through the workspace, on a plain folder with real files (the file
// provider) and a real SQLite state: the folders they hold open are closed when the plan ends.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <time.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

#include "engine/apply.h"
#include "engine/plan.h"
#include "support/shell.h"

namespace driftless::engine {
namespace {

namespace fs = std::filesystem;

int64_t NowNs() {
  struct timespec t {};
  clock_gettime(CLOCK_REALTIME, &t);
  return int64_t{t.tv_sec} * 1'000'000'000 + t.tv_nsec;
}

int64_t LastChangeNs(const std::string& path) {
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0) return 0;
  auto ns = [](const struct timespec& t) { return int64_t{t.tv_sec} * 1'000'000'000 + t.tv_nsec; };
  return std::max(ns(st.st_mtim), ns(st.st_ctim));
}

class StampScopeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = test::GitTestDir("driftless-stamp-scope-test");
    ASSERT_FALSE(dir_.empty());
    test::WriteIn(dir_ + "/repo", "driftless.yaml",
                  "project: scope\ninclude: [\"res/*.yaml\"]\ntargets:\n  host: {provider: file, "
                  "root: \"" +
                      dir_ + "/root\"}\n");
    std::string res;
    for (int d = 0; d < 3; ++d) {
      for (int f = 0; f < 4; ++f) {
        std::string name = "f" + std::to_string(d) + std::to_string(f);
        files_.push_back("d" + std::to_string(d) + "/" + name + ".txt");
        res += "---\nkind: file.file\nname: " + name +
               "\ntarget: host\nspec: {path: " + files_.back() + ", content: " + name + "}\n";
      }
    }
    test::WriteIn(dir_ + "/repo", "res/files.yaml", res);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::unique_ptr<Workspace> Open() {
    WorkspaceOptions options;
    options.dir = dir_ + "/repo";
    options.state = dir_ + "/state.db";
    auto ws = std::make_unique<Workspace>(options);
    Status s = ws->Select("");
    EXPECT_TRUE(s.ok()) << s.error().message;
    return ws;
  }
  // Plans in a workspace of its own: nothing to do.
  void Plan() {
    std::unique_ptr<Workspace> ws = Open();
    PlanReport report = PlanEnvironment(*ws, PlanRequest{"default"});
    EXPECT_TRUE(report.ok()) << report.failure.message;
    ASSERT_TRUE(report.plan);
    for (const auto& c : report.plan->changes) {
      EXPECT_EQ(c.action, plan::Action::kNoop) << c.address;
    }
  }

  std::string dir_;
  std::vector<std::string> files_;
};

TEST_F(StampScopeTest, APlanUsingStampsLeavesNoDescriptorOpen) {
  {
    std::unique_ptr<Workspace> ws = Open();
    Observer observer;
    ApplyReport report = ApplyEnvironment(*ws, ApplyRequest{}, observer);
    ASSERT_TRUE(report.ok()) << report.failure.message;
  }
  // A stamp is recorded only for a file whose last change is older than the racy window (50 ms):
  // wait until every file is.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(1);
  auto settled = [&] {
    for (const std::string& f : files_) {
      if (LastChangeNs(dir_ + "/root/" + f) >= NowNs() - 100'000'000) return false;
    }
    return true;
  };
  while (!settled() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(settled());
  Plan();  // the first plan after the apply reads every file and records its stamp
  const size_t before = test::OpenDescriptors();
  // Every file is checked by its stamp, through its folder's descriptor held for the plan.
  Plan();
  Plan();
  EXPECT_EQ(test::OpenDescriptors(), before);
}

}  // namespace
}  // namespace driftless::engine
