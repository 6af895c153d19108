// Git as the source of truth, end to end on real repositories made by the tests: branches map to
// environments, commits are recorded, stepwise resources replay commit by commit, versions step,
// a failing step stops the environment, downgrades, merges, pruning, remotes and the worktree.

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "e2e/harness.h"

namespace driftless::test {
namespace {

bool Contains(const std::string& text, const std::string& needle) {
  return text.find(needle) != std::string::npos;
}

std::string Quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'')
      out += "'\\''";
    else
      out += c;
  }
  return out + "'";
}

class GitFlowTest : public ::testing::Test {
 protected:
  // Runs git in the repository; fails the test when git fails. `env` is prefixed (NAME=V ...).
  std::string Git(const std::string& args, const std::string& env = "") {
    std::string out_file = box_.dir() + "/git.out";
    std::string cmd = "cd " + Quote(box_.repo()) +
                      " && env GIT_CONFIG_NOSYSTEM=1 HOME=" + Quote(box_.dir()) + " " + env +
                      " git -c user.name=Dev -c user.email=dev@example.com "
                      "-c init.defaultBranch=main -c advice.detachedHead=false " +
                      args + " >" + Quote(out_file) + " 2>&1";
    int rc = std::system(cmd.c_str());
    std::string out = ReadFile(out_file);
    EXPECT_TRUE(WIFEXITED(rc) && WEXITSTATUS(rc) == 0) << "git " << args << ":\n" << out;
    return out;
  }

  std::string Head() {
    std::string id = Git("rev-parse HEAD");
    return id.substr(0, id.find('\n'));
  }

  void Commit(const std::string& message, const std::string& env = "") {
    Git("add -A");
    Git("commit -q --allow-empty -m " + Quote(message), env);
  }

  // A project with file targets rooted per environment; previews are feature/<env>/<name>.
  void WriteProject(const std::string& extra_rules = "") {
    box_.WriteRepoFile("driftless.yaml",
                       "project: shop\ninclude: [\"res/*.yaml\"]\nvars: {replicas: 1, tier: none}\n"
                       "environments:\n"
                       "  - branch: main\n    name: production\n    protected: true\n"
                       "    vars: {replicas: 3, tier: prod}\n"
                       "  - branch: staging\n    vars: {replicas: 2, tier: stage}\n"
                       "  - branch: \"feature/*/*\"\n    name: \"{1}-{2}\"\n    base: \"{1}\"\n"
                       "    ttl: 72h\n" +
                           extra_rules + "targets:\n  host: {provider: file, root: \"" +
                           box_.root() + "/${env}\"}\n");
  }

  void WriteApp(const std::string& version, const std::string& other = "same",
                const std::string& app_path = "app.conf") {
    box_.WriteRepoFile("res/app.yaml",
                       "kind: file.file\nname: app\ntarget: host\nspec:\n  path: " + app_path +
                           "\n  content: \"" + version +
                           "\"\npolicy: {upgrade: stepwise}\n"
                           "---\nkind: file.file\nname: other\ntarget: host\nspec:\n"
                           "  path: other.conf\n  content: \"" +
                           other + " ${var.replicas} ${var.tier} ${branch} ${commit}\"\n");
  }

  RunResult Ok(const std::vector<std::string>& args, const std::vector<std::string>& env = {}) {
    RunResult r = box_.Run(args, env);
    EXPECT_EQ(r.exit_code, 0) << "driftless " << args[0] << "\n" << r.out << r.err;
    return r;
  }

  std::vector<Json> History(const std::string& env) {
    RunResult r = Ok({"history", env, "--json"});
    Json j;
    EXPECT_TRUE(ReadJson(r.out, &j)) << r.out;
    return j.items;  // newest first
  }

  std::string EnvFile(const std::string& env, const std::string& name) {
    return ReadFile(box_.root() + "/" + env + "/" + name);
  }

  void SetUp() override {
    box_.WriteRepoFile(".keep", "");
    Git("init -q");
  }

  Sandbox box_;
};

TEST_F(GitFlowTest, BranchesAreEnvironmentsWithCapturesAndInheritance) {
  WriteProject();
  WriteApp("1");
  Commit("first");
  // (Git cannot hold branches `staging` and `staging/login-fix` at once, hence feature/staging/;
  // the preview inherits from the staging environment's rule without the staging branch.)
  Git("checkout -q -b feature/staging/login-fix");

  // On the preview branch: its environment, with the base's variables.
  RunResult plan = box_.Run({"plan", "--detailed-exitcode"});
  EXPECT_EQ(plan.exit_code, 2) << plan.out << plan.err;
  EXPECT_TRUE(Contains(plan.out, "Environment staging-login-fix (commit ")) << plan.out;
  Ok({"apply", "--auto-approve"});
  std::string short_id = Head().substr(0, 7);
  EXPECT_EQ(EnvFile("staging-login-fix", "other.conf"),
            "same 2 stage feature/staging/login-fix " + short_id);

  // ENV names another branch's environment: its branch head is read.
  Ok({"apply", "production", "--auto-approve"});
  EXPECT_EQ(EnvFile("production", "other.conf"), "same 3 prod main " + short_id);

  RunResult list = Ok({"env", "list", "--json"});
  Json envs;
  ASSERT_TRUE(ReadJson(list.out, &envs)) << list.out;
  std::vector<std::string> names;
  for (const auto& e : envs.items) {
    names.push_back(e.Str("name") + "@" + e.Str("branch"));
    if (e.Str("name") == "production") {
      EXPECT_TRUE(e.Bool("protected"));
      EXPECT_EQ(e.Str("applied_commit"), short_id);
      EXPECT_EQ(e.Int("behind"), 0);
    }
  }
  EXPECT_EQ(names, (std::vector<std::string>{"production@main",
                                             "staging-login-fix@feature/staging/login-fix"}));

  // A new commit on main: production is one behind.
  Git("checkout -q main");
  WriteApp("1", "changed");
  Commit("change other");
  list = Ok({"env", "list"});
  EXPECT_TRUE(Contains(list.out, "production *")) << list.out;
  EXPECT_TRUE(Contains(list.out, short_id + "  " + Head().substr(0, 7) + "  1 ")) << list.out;

  // History records the commit with its subject and author.
  std::vector<Json> h = History("production");
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h[0].Str("commit").substr(0, 7), short_id);
  EXPECT_EQ(h[0].Str("commit_subject"), "first");
  EXPECT_EQ(h[0].Str("commit_author"), "Dev <dev@example.com>");
}

TEST_F(GitFlowTest, StepwiseResourcesReplayEachCommitOthersJumpStraight) {
  WriteProject();
  WriteApp("A", "o1");
  Commit("A");
  Git("checkout -q -b staging");
  Ok({"apply", "--auto-approve"});
  WriteApp("B", "o2");
  Commit("B");
  WriteApp("B", "o3");
  Commit("only other changes");  // no stepwise change: not a step
  WriteApp("C", "o4");
  Commit("C");

  RunResult plan = box_.Run({"plan", "--detailed-exitcode"});
  EXPECT_EQ(plan.exit_code, 2) << plan.out << plan.err;
  EXPECT_TRUE(Contains(plan.out, "Stepwise upgrade: 1 step first")) << plan.out;
  EXPECT_TRUE(Contains(plan.out, " B\n")) << plan.out;

  RunResult apply = Ok({"apply", "--auto-approve"});
  EXPECT_TRUE(Contains(apply.out, "(step 1 of 2, commit ")) << apply.out;
  EXPECT_EQ(EnvFile("staging", "app.conf"), "C");
  EXPECT_TRUE(Contains(EnvFile("staging", "other.conf"), "o4 "));

  std::vector<Json> h = History("staging");
  ASSERT_EQ(h.size(), 3u);  // newest first: C (final), B (step), A
  EXPECT_EQ(h[1].Str("commit_subject"), "B (stepwise upgrade)");
  EXPECT_EQ(h[0].Str("commit_subject"), "C");
  // The step applied the stepwise resource only; `other` went straight from o1 to o4.
  RunResult step = Ok({"history", "show", std::to_string(h[1].Int("id")), "--json"});
  Json sj;
  ASSERT_TRUE(ReadJson(step.out, &sj));
  const Json* changes = sj.Find("changes");
  ASSERT_TRUE(changes != nullptr);
  ASSERT_EQ(changes->items.size(), 1u);
  EXPECT_EQ(changes->items[0].Str("address"), "file.file/app");
  RunResult final_apply = Ok({"history", "show", std::to_string(h[0].Int("id"))});
  EXPECT_TRUE(Contains(final_apply.out, "-content: o1 ")) << final_apply.out;
  EXPECT_TRUE(Contains(final_apply.out, "+content: o4 ")) << final_apply.out;

  // Up to date: nothing to do.
  RunResult again = Ok({"apply", "--auto-approve"});
  EXPECT_TRUE(Contains(again.out, "No changes")) << again.out;
}

TEST_F(GitFlowTest, VersionsStepOneMinorAtATime) {
  WriteProject();
  box_.WriteRepoFile("res/app.yaml",
                     "kind: file.file\nname: k8s\ntarget: host\nspec:\n  path: version\n"
                     "  content: \"1.27\"\npolicy:\n  upgrade: stepwise\n"
                     "  step: {field: spec.content, by: minor}\n");
  Commit("1.27");
  Git("checkout -q -b staging");
  Ok({"apply", "--auto-approve"});
  box_.WriteRepoFile("res/app.yaml",
                     "kind: file.file\nname: k8s\ntarget: host\nspec:\n  path: version\n"
                     "  content: \"1.29\"\npolicy:\n  upgrade: stepwise\n"
                     "  step: {field: spec.content, by: minor}\n");
  Commit("jump to 1.29");
  RunResult plan = Ok({"plan"});
  EXPECT_TRUE(Contains(plan.out, "file.file/k8s spec.content: 1.27 -> 1.28")) << plan.out;
  RunResult apply = Ok({"apply", "--auto-approve"});
  EXPECT_EQ(EnvFile("staging", "version"), "1.29");
  std::vector<Json> h = History("staging");
  ASSERT_EQ(h.size(), 3u);
  EXPECT_EQ(h[1].Str("commit_subject"), "jump to 1.29 (intermediate version)");
  RunResult mid = Ok({"history", "show", std::to_string(h[1].Int("id"))});
  EXPECT_TRUE(Contains(mid.out, "-content: \"1.27\"")) << mid.out;
  EXPECT_TRUE(Contains(mid.out, "+content: \"1.28\"")) << mid.out;
  RunResult last = Ok({"history", "show", std::to_string(h[0].Int("id"))});
  EXPECT_TRUE(Contains(last.out, "-content: \"1.28\"")) << last.out;
  EXPECT_TRUE(Contains(last.out, "+content: \"1.29\"")) << last.out;
}

TEST_F(GitFlowTest, AFailingStepStopsAtTheLastGoodCommit) {
  WriteProject();
  WriteApp("A", "o1");
  Commit("A");
  Git("checkout -q -b staging");
  Ok({"apply", "--auto-approve"});
  std::string a = Head();
  WriteApp("B", "o1");
  Commit("B");
  std::string b = Head();
  // C's step fails: its folder is a regular file on the host.
  WriteApp("C", "o1", "blocked/app.conf");
  Commit("C");
  WriteApp("D", "o2", "blocked/app.conf");
  Commit("D");
  std::filesystem::create_directories(box_.root() + "/staging");
  {
    std::FILE* f = std::fopen((box_.root() + "/staging/blocked").c_str(), "w");
    ASSERT_TRUE(f != nullptr);
    std::fclose(f);
  }
  RunResult apply = box_.Run({"apply", "--auto-approve"});
  EXPECT_EQ(apply.exit_code, 1) << apply.out << apply.err;
  EXPECT_TRUE(Contains(apply.err, "stopped at step 2 of 3 (commit ")) << apply.err;
  EXPECT_TRUE(Contains(apply.err, "stays at commit " + b.substr(0, 7) + " (B)")) << apply.err;
  // C's step was a replace (the path changed): the old file was deleted, the new one failed;
  // state and history say exactly that.
  EXPECT_FALSE(Exists(box_.root() + "/staging/app.conf"));
  EXPECT_TRUE(Contains(EnvFile("staging", "other.conf"), "o1 ")) << "D was not applied";
  std::vector<Json> h = History("staging");
  ASSERT_EQ(h.size(), 3u);
  EXPECT_EQ(h[0].Str("status"), "failed");
  EXPECT_EQ(h[1].Str("commit"), b);
  EXPECT_EQ(h[2].Str("commit"), a);
  RunResult list = Ok({"env", "list", "--json"});
  Json envs;
  ASSERT_TRUE(ReadJson(list.out, &envs));
  for (const auto& e : envs.items) {
    if (e.Str("name") == "staging") {
      EXPECT_EQ(e.Str("applied_commit"), b.substr(0, 7));
    }
  }
}

TEST_F(GitFlowTest, DowngradeByRefAndByReset) {
  WriteProject();
  WriteApp("A", "o1");
  Commit("A");
  std::string a = Head();
  Git("checkout -q -b staging");
  WriteApp("B", "o2");
  Commit("B");
  Ok({"apply", "--auto-approve"});
  EXPECT_EQ(EnvFile("staging", "app.conf"), "B");

  // An older commit of the same environment: the revert is planned and applied directly.
  RunResult plan = box_.Run({"plan", "staging", "--ref", a.substr(0, 8), "--detailed-exitcode"});
  EXPECT_EQ(plan.exit_code, 2) << plan.out << plan.err;
  EXPECT_TRUE(Contains(plan.out, "-content: B")) << plan.out;
  EXPECT_FALSE(Contains(plan.out, "Stepwise")) << plan.out;
  Ok({"apply", "staging", "--ref", a, "--auto-approve"});
  EXPECT_EQ(EnvFile("staging", "app.conf"), "A");

  // Back up to B, then `git reset --hard` to A and apply: downgrade again.
  Ok({"apply", "--auto-approve"});
  EXPECT_EQ(EnvFile("staging", "app.conf"), "B");
  Git("reset -q --hard " + a);
  Ok({"apply", "--auto-approve"});
  EXPECT_EQ(EnvFile("staging", "app.conf"), "A");
  std::vector<Json> h = History("staging");
  ASSERT_EQ(h.size(), 4u);
  EXPECT_EQ(h[0].Str("commit"), a);
  EXPECT_EQ(h[1].Str("commit_subject"), "B");
  EXPECT_EQ(h[2].Str("commit"), a);
}

TEST_F(GitFlowTest, MergesFollowTheFirstParent) {
  WriteProject();
  WriteApp("A");
  Commit("A");
  Git("checkout -q -b staging");
  Ok({"apply", "--auto-approve"});
  Git("checkout -q -b feature/x");
  WriteApp("F1");
  Commit("F1");
  WriteApp("F2");
  Commit("F2");
  Git("checkout -q staging");
  Git("merge -q --no-ff -m merge-x feature/x");
  RunResult plan = Ok({"plan"});
  EXPECT_FALSE(Contains(plan.out, "Stepwise"))
      << "the feature's commits are not steps: " << plan.out;
  Ok({"apply", "--auto-approve"});
  EXPECT_EQ(EnvFile("staging", "app.conf"), "F2");
  std::vector<Json> h = History("staging");
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h[0].Str("commit_subject"), "merge-x");
}

TEST_F(GitFlowTest, PruneDestroysGoneBranchesAndExpiredOnesButNotProtected) {
  WriteProject("  - branch: prod\n    protected: true\n  - branch: preview\n");
  WriteApp("A");
  Commit("A");
  Git("checkout -q -b prod");
  Ok({"apply", "--auto-approve"});
  Git("checkout -q -b feature/preview/one");
  Ok({"apply", "--auto-approve"});
  // An old branch: its last commit is far older than the 72h ttl.
  Git("checkout -q -b feature/preview/old");
  Commit("old", "GIT_COMMITTER_DATE=2020-01-01T00:00:00 GIT_AUTHOR_DATE=2020-01-01T00:00:00");
  Ok({"apply", "--auto-approve"});
  Git("checkout -q main");
  Git("branch -D feature/preview/one prod");
  ASSERT_TRUE(Exists(box_.root() + "/preview-one/app.conf"));

  RunResult dry = Ok({"env", "prune"});
  EXPECT_TRUE(Contains(dry.out, "preview-one: its branch is gone: would be destroyed")) << dry.out;
  EXPECT_TRUE(Contains(dry.out, "preview-old: no commit on feature/preview/old for ")) << dry.out;
  EXPECT_TRUE(Contains(dry.out, "prod: its branch is gone, but it is protected: not destroyed"))
      << dry.out;
  EXPECT_TRUE(Exists(box_.root() + "/preview-one/app.conf"));

  Ok({"env", "prune", "--auto-approve"});
  EXPECT_FALSE(Exists(box_.root() + "/preview-one/app.conf"));
  EXPECT_FALSE(Exists(box_.root() + "/preview-old/app.conf"));
  EXPECT_TRUE(Exists(box_.root() + "/prod/app.conf"));
  RunResult again = Ok({"env", "prune"});
  EXPECT_FALSE(Contains(again.out, "preview-one")) << again.out;
  EXPECT_TRUE(Contains(again.out, "prod: its branch is gone, but it is protected")) << again.out;
}

TEST_F(GitFlowTest, APreviewWhoseBranchIsGoneIsDestroyedWithItsBasesTargets) {
  // The base (staging) puts its files elsewhere; so must its previews, and so must their
  // destroy once the branch is gone (the rule is found again from the environment's name).
  WriteProject();
  std::string yaml = ReadFile(box_.repo() + "/driftless.yaml");
  const std::string staging = "  - branch: staging\n";
  yaml.insert(yaml.find(staging) + staging.size(),
              "    targets: {host: {root: \"" + box_.root() + "/elsewhere/${env}\"}}\n");
  box_.WriteRepoFile("driftless.yaml", yaml);
  WriteApp("A");
  Commit("A");
  Git("checkout -q -b feature/staging/login-fix");
  Ok({"apply", "--auto-approve"});
  const std::string file = box_.root() + "/elsewhere/staging-login-fix/app.conf";
  ASSERT_TRUE(Exists(file));
  EXPECT_EQ(EnvFile("elsewhere/staging-login-fix", "other.conf"),
            "same 2 stage feature/staging/login-fix " + Head().substr(0, 7));
  Git("checkout -q main");
  Git("branch -D feature/staging/login-fix");

  // Planned where it is: nothing to create or heal.
  RunResult plan = Ok({"plan", "staging-login-fix"});
  EXPECT_TRUE(Contains(plan.out, "Plan: 0 to create, ")) << plan.out;
  EXPECT_TRUE(Contains(plan.out, " 0 to heal")) << plan.out;
  RunResult prune = Ok({"env", "prune", "--auto-approve"});
  EXPECT_TRUE(Contains(prune.out, "staging-login-fix: its branch is gone: destroying"))
      << prune.out;
  EXPECT_FALSE(Exists(file)) << prune.out;
}

TEST_F(GitFlowTest, RemoteByFileUrlIsMirroredAndFetched) {
  WriteProject();
  WriteApp("A");
  Commit("A");
  Git("branch staging");
  std::string url = "file://" + box_.repo();
  std::vector<std::string> env = {"DRIFTLESS_CACHE=" + box_.dir() + "/cache"};
  std::string elsewhere = box_.dir() + "/elsewhere";
  std::filesystem::create_directories(elsewhere);
  Ok({"apply", "staging", "--repo", url, "--dir", elsewhere, "--auto-approve"}, env);
  EXPECT_EQ(EnvFile("staging", "app.conf"), "A");
  EXPECT_TRUE(std::filesystem::exists(box_.dir() + "/cache/repos"));

  Git("checkout -q staging");
  WriteApp("B");
  Commit("B");
  RunResult plan =
      box_.Run({"plan", "staging", "--repo", url, "--dir", elsewhere, "--detailed-exitcode"}, env);
  EXPECT_EQ(plan.exit_code, 2) << plan.out << plan.err;
  EXPECT_TRUE(Contains(plan.out, "+content: B")) << plan.out;
}

TEST_F(GitFlowTest, WorktreePlansUncommittedChangesButNeverAppliesThemToProtected) {
  WriteProject();
  WriteApp("A");
  Commit("A");
  Ok({"apply", "--auto-approve"});  // main -> production
  WriteApp("uncommitted");
  RunResult committed = Ok({"plan"});
  EXPECT_TRUE(Contains(committed.out, "No changes") || Contains(committed.out, "0 to update"))
      << committed.out;
  RunResult wt = box_.Run({"plan", "--worktree", "--detailed-exitcode"});
  EXPECT_EQ(wt.exit_code, 2) << wt.out << wt.err;
  EXPECT_TRUE(Contains(wt.out, "+content: uncommitted")) << wt.out;
  RunResult refused = box_.Run({"apply", "--worktree", "--auto-approve"});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_TRUE(Contains(refused.err, "environment production is protected")) << refused.err;
  EXPECT_EQ(EnvFile("production", "app.conf"), "A");

  // validate reads the working tree.
  box_.WriteRepoFile("res/bad.yaml", "kind: file.nope\nname: x\n");
  RunResult bad = box_.Run({"validate"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_TRUE(Contains(bad.err, "res/bad.yaml:1:")) << bad.err;
}

TEST_F(GitFlowTest, ClearErrorsForUnmappedBranchAndUnknownRef) {
  WriteProject();
  WriteApp("A");
  Commit("A");
  Git("checkout -q -b scratch");
  RunResult r = box_.Run({"plan"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(Contains(r.err, "branch scratch matches no environment rule")) << r.err;
  r = box_.Run({"plan", "staging", "--ref", "nope"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(Contains(r.err, "unknown revision nope")) << r.err;
  r = box_.Run({"plan", "nowhere"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(Contains(r.err, "no branch of ")) << r.err;
  EXPECT_TRUE(Contains(r.err, "maps to environment nowhere")) << r.err;
}

}  // namespace
}  // namespace driftless::test
