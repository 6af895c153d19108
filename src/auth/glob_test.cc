#include "auth/glob.h"

#include <gtest/gtest.h>

namespace driftless::auth {
namespace {

TEST(Glob, OneStarStopsAtSlashTwoDoNot) {
  struct Case {
    const char* glob;
    const char* name;
    bool match;
  };
  const Case kCases[] = {
      {"**", "", true},
      {"**", "production", true},
      {"**", "team/a/b", true},
      {"*", "production", true},
      {"*", "team/a", false},
      {"*", "", true},
      {"production", "production", true},
      {"production", "production2", false},
      {"production", "Production", false},
      {"preview-*", "preview-12", true},
      {"preview-*", "preview-", true},
      {"preview-*", "preview-12/api", false},
      {"preview-*", "xpreview-12", false},
      {"team/*", "team/a", true},
      {"team/*", "team/a/b", false},
      {"team/*", "team", false},
      {"team/**", "team/a", true},
      {"team/**", "team/a/b", true},
      {"team/**", "team/", true},
      {"team/**", "team", false},
      {"team/**", "teams/a", false},
      {"*/api", "team/api", true},
      {"*/api", "a/b/api", false},
      {"**/api", "a/b/api", true},
      {"**/api", "api", false},
      {"*-*-*", "a-b-c", true},
      {"*-*-*", "a-b", false},
      {"a*b*c", "aXXbYYc", true},
      {"a*b*c", "aXX/bYYc", false},
      {"a**c", "a/b/c", true},
      {"st*ng", "staging", true},
      {"st*ng", "st/ng", false},
      {"*.example", "x.example", true},
  };
  for (const Case& c : kCases) {
    EXPECT_EQ(GlobMatch(c.glob, c.name), c.match) << c.glob << " vs " << c.name;
  }
}

TEST(Glob, ManyStarsStayFast) {
  // A naive backtracking matcher takes exponential time here; the table is quadratic.
  std::string glob;
  for (int i = 0; i < 40; ++i) glob += "a*";
  glob += "b";
  EXPECT_FALSE(GlobMatch(glob, std::string(200, 'a')));
  EXPECT_TRUE(GlobMatch(glob, std::string(200, 'a') + "b"));
}

TEST(Glob, CheckRefusesWhatCannotNameAnEnvironment) {
  EXPECT_TRUE(CheckGlob("**").ok());
  EXPECT_TRUE(CheckGlob("team/*").ok());
  Status empty = CheckGlob("");
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.error().message, "an environment glob is empty (use ** for every environment)");
  EXPECT_FALSE(CheckGlob("a\nb").ok());
  EXPECT_FALSE(CheckGlob(std::string("a\0b", 3)).ok());
  Status stars = CheckGlob("team/***");
  ASSERT_FALSE(stars.ok());
  EXPECT_NE(stars.error().message.find("***"), std::string::npos);
}

}  // namespace
}  // namespace driftless::auth
