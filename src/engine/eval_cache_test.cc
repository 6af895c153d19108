// The evaluation cache (config::EvalCache) through the workspace, on a plain folder with real
// files (the file provider) and a real SQLite state: a file whose bytes did not change is taken
// from the cache, and every changed input is evaluated again.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <map>
#include <string>

#include "base/file_util.h"
#include "engine/apply.h"
#include "engine/plan.h"
#include "support/shell.h"

namespace driftless::engine {
namespace {

namespace fs = std::filesystem;

class EvalCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = test::GitTestDir("driftless-eval-cache-test");
    ASSERT_FALSE(dir_.empty());
    WriteProject("hello");
    // Static: cached. b depends on a (same file) and x (another file) explicitly.
    Write("res/a.yaml",
          "kind: file.file\nname: a\ntarget: host\nspec: {path: a.txt, content: AAAA}\n---\n"
          "kind: file.file\nname: b\ntarget: host\nspec: {path: b.txt, content: bbb}\n"
          "depends_on: [file.file/a, file.file/x]\n");
    // Expressions: never cached. c refers to a (another file) and to a variable.
    Write("res/c.yaml",
          "kind: file.file\nname: c\ntarget: host\n"
          "spec: {path: c.txt, content: \"${file.file.a.path} ${var.greeting}\"}\n");
    // A folder and a file inside it (the folder's spec gets its descendants): cached.
    Write("res/d.yaml",
          "kind: file.directory\nname: d\ntarget: host\nspec: {path: sub}\n---\n"
          "kind: file.file\nname: x\ntarget: host\nspec: {path: sub/x.txt, content: x}\n");
    // A `source:` file: never cached.
    Write("files/s.txt", "from the source\n");
    Write("res/s.yaml",
          "kind: file.file\nname: s\ntarget: host\nspec: {path: s.txt, source: files/s.txt}\n");
  }
  void TearDown() override { fs::remove_all(dir_); }

  void WriteProject(const std::string& greeting) {
    Write("driftless.yaml", "project: cache\ninclude: [\"res/*.yaml\"]\nvars:\n  greeting: " +
                                greeting + "\n  root: " + dir_ + "/root\ntargets:\n" +
                                "  host: {provider: file, root: \"${var.root}\"}\n");
  }
  void Write(const std::string& rel, const std::string& content) {
    test::WriteIn(dir_ + "/repo", rel, content);
  }
  std::string Path(const std::string& rel) const { return dir_ + "/repo/" + rel; }

  std::unique_ptr<Workspace> Open() {
    WorkspaceOptions options;
    options.dir = dir_ + "/repo";
    options.state = dir_ + "/state.db";
    options.vars = vars_;
    options.eval_cache_engine = engine_;
    auto ws = std::make_unique<Workspace>(options);
    Status s = ws->Select("");
    EXPECT_TRUE(s.ok()) << s.error().message;
    return ws;
  }
  // Plans; the actions that are not no-ops, "ADDRESS ACTION" sorted; the cache's work in *stats.
  std::map<std::string, std::string> Plan(EvalCacheStats* stats = nullptr) {
    std::unique_ptr<Workspace> ws = Open();
    PlanReport report = PlanEnvironment(*ws, PlanRequest{"default"});
    EXPECT_TRUE(report.ok()) << report.failure.message;
    if (stats != nullptr) *stats = ws->eval_cache_stats();
    std::map<std::string, std::string> out;
    if (!report.plan) return out;
    for (const auto& c : report.plan->changes) {
      if (c.action != plan::Action::kNoop) out[c.address] = std::string(plan::ActionName(c.action));
    }
    return out;
  }
  void Apply() {
    std::unique_ptr<Workspace> ws = Open();
    Observer observer;
    ApplyReport report = ApplyEnvironment(*ws, ApplyRequest{}, observer);
    ASSERT_TRUE(report.ok()) << report.failure.message;
  }
  // Applies, then plans once so that the cache is written: the next plan reuses it.
  void ApplyAndCache() {
    Apply();
    EvalCacheStats stats;
    EXPECT_TRUE(Plan(&stats).empty());
    EvalCacheStats again;
    EXPECT_TRUE(Plan(&again).empty());
    ASSERT_EQ(again.reused, 2u) << "a.yaml and d.yaml come from the cache";
  }
  std::string Live(const std::string& rel) {
    Result<std::string> text = ReadFileToString(dir_ + "/root/" + rel);
    return text.ok() ? *text : "(missing)";
  }

  std::string dir_;
  std::map<std::string, std::string> vars_;
  std::string engine_ = "engine 1";
};

TEST_F(EvalCacheTest, UnchangedFilesComeFromTheCacheAndPlanTheSame) {
  Apply();
  EXPECT_EQ(Live("c.txt"), "a.txt hello");
  EvalCacheStats first;
  EXPECT_TRUE(Plan(&first).empty());
  EXPECT_EQ(first.files, 4u);
  EXPECT_EQ(first.reused, 0u);
  EXPECT_TRUE(first.written);
  EXPECT_EQ(first.written_files, 2u) << "c.yaml (expressions) and s.yaml (source:) are not cached";
  EvalCacheStats second;
  EXPECT_TRUE(Plan(&second).empty());
  EXPECT_TRUE(second.used);
  EXPECT_EQ(second.reused, 2u);
  EXPECT_FALSE(second.written) << "nothing differed from what was read";
  // A cached resource still orders and plans as declared: a drift on it is seen.
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/root/sub/x.txt", "changed by hand").ok());
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/root/a.txt", "changed too").ok());
  EvalCacheStats third;
  std::map<std::string, std::string> actions = Plan(&third);
  EXPECT_EQ(third.reused, 2u);
  EXPECT_EQ(actions.size(), 2u);
  EXPECT_EQ(actions.count("file.file/x"), 1u);
  EXPECT_EQ(actions.count("file.file/a"), 1u);
}

TEST_F(EvalCacheTest, AChangedFileWithTheSameSizeAndMtimePutBackIsEvaluatedAgain) {
  ApplyAndCache();
  struct stat before {};
  ASSERT_EQ(stat(Path("res/a.yaml").c_str(), &before), 0);
  std::string text = *ReadFileToString(Path("res/a.yaml"));
  text.replace(text.find("AAAA"), 4, "ZZZZ");
  Write("res/a.yaml", text);
  struct timespec times[2] = {before.st_atim, before.st_mtim};
  ASSERT_EQ(utimensat(AT_FDCWD, Path("res/a.yaml").c_str(), times, 0), 0);
  struct stat after {};
  ASSERT_EQ(stat(Path("res/a.yaml").c_str(), &after), 0);
  ASSERT_EQ(after.st_size, before.st_size);
  EvalCacheStats stats;
  std::map<std::string, std::string> actions = Plan(&stats);
  EXPECT_EQ(stats.reused, 1u) << "d.yaml only";
  ASSERT_EQ(actions.size(), 1u);
  EXPECT_EQ(actions["file.file/a"], "update");
  Apply();
  EXPECT_EQ(Live("a.txt"), "ZZZZ");
}

TEST_F(EvalCacheTest, AResourceReferringToAChangedOneInAnotherFileIsEvaluatedAgain) {
  ApplyAndCache();
  std::string text = *ReadFileToString(Path("res/a.yaml"));
  text.replace(text.find("path: a.txt"), 11, "path: A.txt");
  Write("res/a.yaml", text);
  std::map<std::string, std::string> actions = Plan();
  EXPECT_EQ(actions["file.file/c"], "update") << "its content is ${file.file.a.path}";
  EXPECT_EQ(actions.count("file.file/a"), 1u);
  Apply();
  EXPECT_EQ(Live("c.txt"), "A.txt hello");
}

TEST_F(EvalCacheTest, AChangedVariableIsSeen) {
  ApplyAndCache();
  WriteProject("bonjour");
  EvalCacheStats stats;
  std::map<std::string, std::string> actions = Plan(&stats);
  EXPECT_EQ(stats.reused, 0u) << "driftless.yaml changed";
  ASSERT_EQ(actions.size(), 1u);
  EXPECT_EQ(actions["file.file/c"], "update");
}

TEST_F(EvalCacheTest, AVarOnTheCommandLineIsSeenInResourcesAndTargets) {
  ApplyAndCache();
  vars_["greeting"] = "hola";
  std::map<std::string, std::string> actions = Plan();
  ASSERT_EQ(actions.size(), 1u);
  EXPECT_EQ(actions["file.file/c"], "update");
  // The target's root comes from a variable: every cached file was evaluated for another
  // target, so nothing is reused, and every object is missing (healed) under the new root.
  vars_["root"] = dir_ + "/elsewhere";
  EvalCacheStats stats;
  actions = Plan(&stats);
  EXPECT_TRUE(stats.mismatch);
  EXPECT_EQ(stats.reused, 0u);
  EXPECT_EQ(actions.size(), 6u);
  EXPECT_EQ(actions["file.file/a"], "heal");
  EXPECT_EQ(actions["file.file/x"], "heal");
  EXPECT_EQ(actions["file.directory/d"], "heal");
}

TEST_F(EvalCacheTest, AProblemFoundBeforeTheContextDifferedIsReportedOnce) {
  ApplyAndCache();
  vars_["root"] = dir_ + "/elsewhere";  // another context: evaluated again
  Write("vars/default.yaml", "- not a mapping\n");
  std::unique_ptr<Workspace> ws = Open();
  PlanReport report = PlanEnvironment(*ws, PlanRequest{"default"});
  EXPECT_FALSE(report.ok());
  EXPECT_TRUE(ws->eval_cache_stats().mismatch || !ws->eval_cache_stats().used);
  const std::string text = report.failure.diagnostics.ToString();
  const std::string what = "vars/default.yaml must be a mapping of variables";
  size_t first = text.find(what);
  ASSERT_NE(first, std::string::npos) << text;
  EXPECT_EQ(text.find(what, first + 1), std::string::npos) << "reported twice:\n" << text;
}

TEST_F(EvalCacheTest, AnotherEngineDoesNotReadTheCache) {
  ApplyAndCache();
  engine_ = "engine 2";
  EvalCacheStats stats;
  EXPECT_TRUE(Plan(&stats).empty());
  EXPECT_EQ(stats.reused, 0u);
  EXPECT_TRUE(stats.written);
  EvalCacheStats again;
  EXPECT_TRUE(Plan(&again).empty());
  EXPECT_EQ(again.reused, 2u);
}

TEST_F(EvalCacheTest, AChangedSourceFileIsSeen) {
  ApplyAndCache();
  Write("files/s.txt", "from the source, changed\n");
  std::map<std::string, std::string> actions = Plan();
  ASSERT_EQ(actions.size(), 1u);
  EXPECT_EQ(actions["file.file/s"], "update");
}

TEST_F(EvalCacheTest, ADamagedCacheIsNotUsed) {
  ApplyAndCache();
  std::unique_ptr<Workspace> ws = Open();
  const std::string cache = ws->EvalCachePath("default");
  ws.reset();
  std::string bytes = *ReadFileToString(cache);
  ASSERT_GT(bytes.size(), 100u);
  // A cached spec changed by one byte (its path "a.txt" becomes "q.txt"): the entry's check
  // fails, and the file is parsed and evaluated again.
  size_t at = bytes.find("a.txt");
  ASSERT_NE(at, std::string::npos);
  bytes[at] = 'q';
  ASSERT_TRUE(WriteFileAtomic(cache, bytes).ok());
  EvalCacheStats stats;
  EXPECT_TRUE(Plan(&stats).empty());
  EXPECT_EQ(stats.reused, 1u) << "d.yaml only";
  // A truncated file: nothing is used.
  ASSERT_TRUE(WriteFileAtomic(cache, bytes.substr(0, 40)).ok());
  EXPECT_TRUE(Plan(&stats).empty());
  EXPECT_EQ(stats.reused, 0u);
}

TEST_F(EvalCacheTest, ARemovedDependencyOfACachedFileIsReported) {
  ApplyAndCache();
  // b (cached, in a.yaml) depends on x, which goes away from d.yaml.
  Write("res/d.yaml", "kind: file.directory\nname: d\ntarget: host\nspec: {path: sub}\n");
  std::unique_ptr<Workspace> ws = Open();
  PlanReport report = PlanEnvironment(*ws, PlanRequest{"default"});
  EXPECT_FALSE(report.ok());
  EXPECT_NE(
      report.failure.diagnostics.ToString().find("depends on file.file/x, which is not declared"),
      std::string::npos)
      << report.failure.diagnostics.ToString() << report.failure.message;
}

TEST_F(EvalCacheTest, ProblemsOfOtherFilesAreAllReportedBesideCachedOnes) {
  ApplyAndCache();
  // A load error in one file and an evaluation error (an undeclared reference) in another,
  // while a.yaml and d.yaml are still in the cache.
  Write("res/c.yaml", "kind: file.file\nname: c\ntarget: host\nspec: {path: c.txt, bogus: 1}\n");
  Write("res/s.yaml",
        "kind: file.file\nname: s\ntarget: host\n"
        "spec: {path: s.txt, content: \"${file.file.nothing.path}\"}\n");
  std::unique_ptr<Workspace> ws = Open();
  PlanReport report = PlanEnvironment(*ws, PlanRequest{"default"});
  EXPECT_FALSE(report.ok());
  const std::string text = report.failure.diagnostics.ToString();
  EXPECT_NE(text.find("res/c.yaml:4"), std::string::npos) << text;
  EXPECT_NE(text.find("unknown field \"bogus\""), std::string::npos) << text;
  EXPECT_NE(text.find("file.file.nothing"), std::string::npos) << text;
  // Put right, the next plan reuses the cache again.
  Write("res/c.yaml",
        "kind: file.file\nname: c\ntarget: host\n"
        "spec: {path: c.txt, content: \"${file.file.a.path} ${var.greeting}\"}\n");
  Write("res/s.yaml",
        "kind: file.file\nname: s\ntarget: host\nspec: {path: s.txt, source: files/s.txt}\n");
  EvalCacheStats stats;
  EXPECT_TRUE(Plan(&stats).empty());
  EXPECT_EQ(stats.reused, 2u);
}

}  // namespace
}  // namespace driftless::engine
