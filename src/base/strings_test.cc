#include "base/strings.h"

#include <gtest/gtest.h>

namespace driftless {
namespace {

TEST(GlobMatch, SegmentsAndDoubleStar) {
  EXPECT_TRUE(GlobMatch("infra/**/*.yaml", "infra/a.yaml"));
  EXPECT_TRUE(GlobMatch("infra/**/*.yaml", "infra/x/y/a.yaml"));
  EXPECT_FALSE(GlobMatch("infra/*.yaml", "infra/x/a.yaml"));
  EXPECT_FALSE(GlobMatch("infra/**/*.yaml", "apps/a.yaml"));
  EXPECT_TRUE(GlobMatch("**", "a/b/c"));
  EXPECT_TRUE(GlobMatch("a?c.yml", "abc.yml"));
  EXPECT_FALSE(GlobMatch("*.yaml", "a.yml"));
}

TEST(Strings, SplitJoinTrimQuote) {
  EXPECT_EQ(Split("a.b..c", '.'), (std::vector<std::string>{"a", "b", "", "c"}));
  EXPECT_EQ(Join({"a", "b"}, "->"), "a->b");
  EXPECT_EQ(Trim("  x \n"), "x");
  EXPECT_EQ(Quote("a\"b\n"), "\"a\\\"b\\n\"");
}

}  // namespace
}  // namespace driftless
