#include <gtest/gtest.h>

#include "e2e/harness.h"

namespace driftless::test {
namespace {

TEST(Smoke, VersionAndHelp) {
  Sandbox s;
  RunResult v = s.Run({"--version"});
  EXPECT_EQ(v.exit_code, 0);
  EXPECT_EQ(v.out.rfind("driftless ", 0), 0u) << v.out;
  RunResult h = s.Run({"plan", "--help"});
  EXPECT_EQ(h.exit_code, 0) << h.err;
  EXPECT_NE(h.out.find("--detailed-exitcode"), std::string::npos) << h.out;
}

TEST(Smoke, PlanApplyPlan) {
  Sandbox s;
  s.WriteProject();
  s.WriteRepoFile("app.yaml",
                  "kind: file.file\nname: a\nspec: {path: a.txt, content: \"hi\\n\"}\n");
  RunResult p = s.Run({"plan", "--detailed-exitcode"});
  EXPECT_EQ(p.exit_code, 2) << p.err;
  RunResult a = s.Run({"apply", "--auto-approve"});
  ASSERT_EQ(a.exit_code, 0) << a.err << a.out;
  EXPECT_EQ(ReadFile(s.root() + "/a.txt"), "hi\n");
  RunResult again = s.Run({"plan", "--detailed-exitcode"});
  EXPECT_EQ(again.exit_code, 0) << again.out << again.err;
}

TEST(Smoke, EachVarTakesOneValueSoTheEnvironmentAfterItStaysPositional) {
  Sandbox s;
  s.WriteProject("vars: {greeting: Hello}\n");
  s.WriteRepoFile("app.yaml",
                  "kind: file.file\nname: a\nspec: {path: a.txt, content: \"${var.greeting} "
                  "${env}\"}\n");
  RunResult p = s.Run({"plan", "--var", "greeting=Hi", "--var", "greeting=Hey", "staging"});
  EXPECT_EQ(p.exit_code, 0) << p.err;
  EXPECT_NE(p.out.find("Environment staging "), std::string::npos) << p.out;
  EXPECT_NE(p.out.find("+content: Hey staging"), std::string::npos) << "the last --var wins\n"
                                                                    << p.out;
}

}  // namespace
}  // namespace driftless::test
