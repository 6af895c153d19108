#include "base/diagnostics.h"

#include <gtest/gtest.h>

namespace driftless {
namespace {

TEST(Diagnostics, FormatsAndSorts) {
  Diagnostics d;
  d.Error({"b.yaml", 3, 1}, "second");
  d.Error({"a.yaml", 10, 4}, "first", "do this");
  d.Warning({"a.yaml", 0, 0}, "just a file");
  d.Sort();
  EXPECT_EQ(d.ToString(),
            "a.yaml: warning: just a file\n"
            "a.yaml:10:4: error: first (do this)\n"
            "b.yaml:3:1: error: second\n");
  EXPECT_EQ(d.ErrorCount(), 2u);
}

}  // namespace
}  // namespace driftless
