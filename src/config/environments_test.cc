#include "config/environments.h"

#include <gtest/gtest.h>

#include "config/evaluate.h"
#include "config/loader.h"
#include "fakes/memory_provider.h"
#include "fakes/memory_source.h"

namespace driftless::config {
namespace {

using value::Value;

std::vector<std::string> Captures(std::string_view pattern, std::string_view branch) {
  std::vector<std::string> caps;
  if (!MatchBranchPattern(pattern, branch, &caps)) return {"(no match)"};
  return caps;
}

TEST(BranchPatternTest, StarMatchesOneSegmentAndDoubleStarAnything) {
  EXPECT_EQ(Captures("main", "main"), std::vector<std::string>{});
  EXPECT_EQ(Captures("main", "mainx"), std::vector<std::string>{"(no match)"});
  EXPECT_EQ(Captures("*/*", "staging/login-fix"),
            (std::vector<std::string>{"staging", "login-fix"}));
  EXPECT_EQ(Captures("*/*", "a/b/c"), std::vector<std::string>{"(no match)"});
  EXPECT_EQ(Captures("*/**", "a/b/c"), (std::vector<std::string>{"a", "b/c"}));
  EXPECT_EQ(Captures("release-*", "release-1.4"), std::vector<std::string>{"1.4"});
  EXPECT_EQ(Captures("release-*", "release-"), std::vector<std::string>{"(no match)"});
  EXPECT_EQ(Captures("*-*", "a-b-c"), (std::vector<std::string>{"a", "b-c"}));
  EXPECT_EQ(Captures("*", "feature/x"), std::vector<std::string>{"(no match)"});
}

TEST(BranchPatternTest, TemplatesAndNames) {
  EXPECT_EQ(*ExpandTemplate("{1}-{2}", {"staging", "login-fix"}), "staging-login-fix");
  EXPECT_EQ(*ExpandTemplate("plain", {}), "plain");
  Result<std::string> bad = ExpandTemplate("{3}", {"a"});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message, "\"{3}\" uses {3} but the branch pattern has 1 capture");
  EXPECT_FALSE(ExpandTemplate("{x}", {"a"}).ok());
  EXPECT_EQ(EnvironmentNameOfBranch("feature/new.api"), "feature-new-api");
  EXPECT_TRUE(ValidEnvironmentName("staging-login_fix2"));
  EXPECT_FALSE(ValidEnvironmentName("a/b"));
  EXPECT_FALSE(ValidEnvironmentName(""));
  EXPECT_EQ(ParseTtl("72h"), 72 * 3600);
  EXPECT_EQ(ParseTtl("7d"), 7 * 86400);
  EXPECT_EQ(ParseTtl("90s"), 90);
  EXPECT_EQ(ParseTtl("h"), std::nullopt);
  EXPECT_EQ(ParseTtl("3w"), std::nullopt);
}

class EnvironmentRulesTest : public ::testing::Test {
 protected:
  EnvironmentRulesTest() : world_(std::make_shared<test::MemoryWorld>()) {
    registry_.Register(test::NewMemoryProvider(world_));
    src_.files["driftless.yaml"] =
        "project: shop\n"
        "vars: {replicas: 1, tier: none, size: s}\n"
        "defaults:\n  policy: {drift: report}\n"
        "environments:\n"
        "  - branch: main\n    name: production\n    protected: true\n"
        "    vars: {replicas: 3, tier: prod}\n    policy: {drift: enforce}\n"
        "  - branch: staging\n    sync: auto\n    ttl: 240h\n"
        "    vars: {replicas: 2, tier: stage}\n    policy: {upgrade: stepwise}\n"
        "  - branch: \"feature/*/*\"\n    name: \"{1}-{2}\"\n    base: \"{1}\"\n    ttl: 72h\n"
        "    vars: {size: xs}\n"
        "targets:\n  mem: {provider: mem}\n";
    src_.files["r.yaml"] =
        "kind: mem.object\nname: a\nspec: {key: a, value: \"${var.replicas}/${var.tier}/"
        "${var.size}/${branch}/${env}\"}\n"
        "---\nkind: mem.object\nname: b\nspec: {key: b}\npolicy: {drift: ignore}\n";
  }

  Project LoadProject() {
    Diagnostics diags;
    decls_ = LoadDeclarations(src_, registry_, diags);
    EXPECT_FALSE(diags.HasErrors()) << diags.ToString();
    return decls_.project;
  }

  std::unique_ptr<Environment> Eval(const std::string& env, const std::string& branch) {
    Diagnostics diags;
    decls_ = LoadDeclarations(src_, registry_, diags);
    EvalOptions o;
    o.env = env;
    o.branch = branch;
    o.salt = "s";
    auto out = Environment::Evaluate(decls_, registry_, src_, o, diags);
    EXPECT_FALSE(diags.HasErrors()) << diags.ToString();
    return out;
  }

  std::shared_ptr<test::MemoryWorld> world_;
  provider::Registry registry_;
  test::MemorySource src_;
  Declarations decls_;
};

TEST_F(EnvironmentRulesTest, BranchesMapToEnvironmentsWithCapturesAndBases) {
  Project p = LoadProject();
  auto prod = MatchBranch(p, "main");
  ASSERT_TRUE(prod.ok() && *prod);
  EXPECT_EQ((*prod)->name, "production");
  EXPECT_TRUE((*prod)->is_protected());

  auto preview = MatchBranch(p, "feature/staging/login-fix");
  ASSERT_TRUE(preview.ok() && *preview);
  EXPECT_EQ((*preview)->name, "staging-login-fix");
  ASSERT_EQ((*preview)->rules.size(), 2u);
  EXPECT_EQ((*preview)->rules[1]->branch, "staging");
  EXPECT_EQ((*preview)->ttl_seconds(), 72 * 3600);
  EXPECT_FALSE((*preview)->is_protected());

  auto none = MatchBranch(p, "scratch");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(*none) << "unmatched branches are ignored";

  auto by_name = MatchName(p, "staging");
  ASSERT_TRUE(by_name.ok());
  EXPECT_EQ(by_name->branch, "staging");
  EXPECT_EQ(by_name->sync(), "auto");
}

TEST_F(EnvironmentRulesTest, BaseThatNamesNothingOrCyclesIsAnError) {
  src_.files["driftless.yaml"] =
      "project: shop\nenvironments:\n"
      "  - branch: \"x/*\"\n    name: \"x-{1}\"\n    base: \"{1}\"\n"
      "  - branch: a\n    base: b\n  - branch: b\n    base: a\n"
      "targets:\n  mem: {provider: mem}\n";
  Project p = LoadProject();
  auto missing = MatchBranch(p, "x/nothing");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("base nothing names no environment"), std::string::npos)
      << missing.error().message;
  EXPECT_NE(missing.error().message.find("driftless.yaml:3:"), std::string::npos);
  auto cycle = MatchBranch(p, "a");
  ASSERT_FALSE(cycle.ok());
  EXPECT_NE(cycle.error().message.find("cycle: a -> b -> a"), std::string::npos)
      << cycle.error().message;
}

TEST_F(EnvironmentRulesTest, InvalidNameFromATemplateIsAnError) {
  src_.files["driftless.yaml"] =
      "project: shop\nenvironments:\n  - branch: \"**\"\n    name: \"env-{1}\"\n"
      "targets:\n  mem: {provider: mem}\n";
  Project p = LoadProject();
  auto bad = MatchBranch(p, "a/b");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("\"env-a/b\""), std::string::npos) << bad.error().message;
}

TEST_F(EnvironmentRulesTest, LoaderChecksRuleFields) {
  src_.files["driftless.yaml"] =
      "project: shop\nenvironments:\n  - branch: main\n    ttl: soon\n    targets: [x]\n"
      "    policy: {drift: sometimes}\n"
      "targets:\n  mem: {provider: mem}\n";
  Diagnostics diags;
  LoadDeclarations(src_, registry_, diags);
  std::string text = diags.ToString();
  EXPECT_NE(text.find("driftless.yaml:4:10: error: ttl must be a duration"), std::string::npos)
      << text;
  EXPECT_NE(text.find("driftless.yaml:5:14: error: targets of an environment rule"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("policy.drift must be enforce, report or ignore"), std::string::npos) << text;
}

TEST_F(EnvironmentRulesTest, ApprovalsAreAtLeastOneOnAProtectedEnvironment) {
  src_.files["driftless.yaml"] =
      "project: shop\nenvironments:\n"
      "  - branch: main\n    name: production\n    protected: true\n"
      "  - branch: release\n    approvals: 2\n    remediation: auto\n"
      "  - branch: \"feature/*\"\n"
      "targets:\n  mem: {provider: mem}\n";
  Project p = LoadProject();
  auto prod = MatchBranch(p, "main");
  ASSERT_TRUE(prod.ok() && *prod);
  EXPECT_EQ((*prod)->required_approvals(), 1);
  EXPECT_FALSE((*prod)->remediates_unapproved());  // remediation: approve by default
  auto release = MatchBranch(p, "release");
  ASSERT_TRUE(release.ok() && *release);
  EXPECT_EQ((*release)->required_approvals(), 2);
  EXPECT_TRUE((*release)->remediates_unapproved());
  auto feature = MatchBranch(p, "feature/x");
  ASSERT_TRUE(feature.ok() && *feature);
  EXPECT_EQ((*feature)->required_approvals(), 0);
  EXPECT_TRUE((*feature)->remediates_unapproved());

  src_.files["driftless.yaml"] =
      "project: shop\nenvironments:\n  - branch: main\n    remediation: later\n"
      "    approvals: 101\ntargets:\n  mem: {provider: mem}\n";
  Diagnostics diags;
  LoadDeclarations(src_, registry_, diags);
  const std::string text = diags.ToString();
  EXPECT_NE(text.find("driftless.yaml:4:18: error: remediation must be `approve` or `auto`"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("driftless.yaml:5:16: error: approvals must be a whole number"),
            std::string::npos)
      << text;
}

TEST_F(EnvironmentRulesTest, VarsAndPoliciesInheritFromBaseAndDefaults) {
  auto preview = Eval("staging-login-fix", "feature/staging/login-fix");
  ASSERT_TRUE(preview);
  const auto& a = preview->resources()[0];
  EXPECT_EQ(a.spec.Find("value")->as_string(),
            "2/stage/xs/feature/staging/login-fix/staging-login-fix");
  // upgrade comes from the base rule (staging); the resource's own drift policy wins.
  EXPECT_EQ(a.decl->policy.upgrade, Policy::Upgrade::kStepwise);
  EXPECT_EQ(a.decl->policy.drift, Policy::Drift::kReport);
  EXPECT_EQ(preview->resources()[1].decl->policy.drift, Policy::Drift::kIgnore);

  auto prod = Eval("production", "main");
  ASSERT_TRUE(prod);
  EXPECT_EQ(prod->resources()[0].spec.Find("value")->as_string(), "3/prod/s/main/production");
  EXPECT_EQ(prod->resources()[0].decl->policy.drift, Policy::Drift::kEnforce);
  EXPECT_EQ(prod->resources()[0].decl->policy.upgrade, Policy::Upgrade::kDirect);
  EXPECT_EQ(prod->resources()[1].decl->policy.drift, Policy::Drift::kIgnore);
  EXPECT_TRUE(prod->match().is_protected());

  // Known by name only (a folder): the literal rule still applies.
  auto by_name = Eval("staging", "");
  ASSERT_TRUE(by_name);
  EXPECT_EQ(by_name->resources()[0].spec.Find("value")->as_string(), "2/stage/s//staging");
  // A preview whose branch is gone (destroyed by env prune): its rule and base still apply.
  auto gone = Eval("staging-login-fix", "");
  ASSERT_TRUE(gone);
  EXPECT_EQ(gone->resources()[0].spec.Find("value")->as_string(), "2/stage/xs//staging-login-fix");
  EXPECT_EQ(gone->resources()[0].decl->policy.upgrade, Policy::Upgrade::kStepwise);
}

TEST_F(EnvironmentRulesTest, VarsFilesOfTheBasesLayerBetweenTheRules) {
  src_.files["vars/staging.yaml"] = "tier: from-file\nsize: m\n";
  src_.files["vars/staging-login-fix.yaml"] = "replicas: 9\n";
  // Project, staging's rule, vars/staging.yaml, the preview's rule (size: xs), its own file.
  auto preview = Eval("staging-login-fix", "feature/staging/login-fix");
  ASSERT_TRUE(preview);
  EXPECT_EQ(preview->resources()[0].spec.Find("value")->as_string(),
            "9/from-file/xs/feature/staging/login-fix/staging-login-fix");
  auto staging = Eval("staging", "staging");
  ASSERT_TRUE(staging);
  EXPECT_EQ(staging->resources()[0].spec.Find("value")->as_string(),
            "2/from-file/m/staging/staging");
  // A base's vars file is part of the declarations' hash (plan files are bound to it).
  const std::string before = preview->hash();
  src_.files["vars/staging.yaml"] = "tier: changed\nsize: m\n";
  EXPECT_NE(Eval("staging-login-fix", "feature/staging/login-fix")->hash(), before);
}

TEST_F(EnvironmentRulesTest, NameOfAGoneBranchFindsItsRuleAndBase) {
  Project p = LoadProject();
  auto m = MatchName(p, "staging-login-fix");
  ASSERT_TRUE(m.ok());
  ASSERT_EQ(m->rules.size(), 2u);
  EXPECT_EQ(m->rules[0]->branch, "feature/*/*");
  EXPECT_EQ(m->rules[1]->branch, "staging");
  EXPECT_EQ(m->captures, (std::vector<std::string>{"staging", "login-fix"}));
  EXPECT_EQ(m->branch, "") << "the branch is not known";
  EXPECT_EQ(m->ttl_seconds(), 72 * 3600);
  // {1} = qa names no environment: no rule gives this name.
  auto qa = MatchName(p, "qa-login-fix");
  ASSERT_TRUE(qa.ok());
  EXPECT_TRUE(qa->rules.empty());
  EXPECT_TRUE(MatchName(p, "nothing")->rules.empty());
}

TEST_F(EnvironmentRulesTest, NameReadBackTriesLongerCapturesAndChecksTheBranch) {
  src_.files["driftless.yaml"] =
      "project: shop\nenvironments:\n"
      "  - branch: eu-staging\n"
      "  - branch: feature/eu-staging/hot\n    name: hot\n"
      "  - branch: \"feature/*/*\"\n    name: \"{1}-{2}\"\n    base: \"{1}\"\n"
      "  - branch: \"preview/*\"\n    base: eu-staging\n"
      "  - branch: \"other/*/*\"\n    name: \"other-{2}\"\n    base: eu-staging\n"
      "targets:\n  mem: {provider: mem}\n";
  Project p = LoadProject();
  // {eu, staging-fix}: base eu names nothing; {eu-staging, fix} is the one.
  auto longer = MatchName(p, "eu-staging-fix");
  ASSERT_TRUE(longer.ok());
  ASSERT_EQ(longer->rules.size(), 2u);
  EXPECT_EQ(longer->captures, (std::vector<std::string>{"eu-staging", "fix"}));
  // {eu-staging, hot} makes branch feature/eu-staging/hot, which maps to an earlier rule (hot).
  EXPECT_TRUE(MatchName(p, "eu-staging-hot")->rules.empty());
  EXPECT_EQ(MatchName(p, "hot")->rules.size(), 1u);
  // Without `name:`, the template is the branch pattern as a name: preview/* -> preview-{1}.
  auto unnamed = MatchName(p, "preview-one");
  ASSERT_TRUE(unnamed.ok());
  ASSERT_EQ(unnamed->rules.size(), 2u);
  EXPECT_EQ(unnamed->rules[0]->branch, "preview/*");
  EXPECT_EQ(unnamed->captures, std::vector<std::string>{"one"});
  // A template that leaves out a capture cannot be read back: the branch is not known.
  EXPECT_TRUE(MatchName(p, "other-x")->rules.empty());
}

}  // namespace
}  // namespace driftless::config
