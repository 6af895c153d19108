// The README's first command runs scripts/demo.sh; this runs the same script against the binary
// under test, so that the demo repository and the script stay working.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "e2e/harness.h"

namespace driftless::test {
namespace {

TEST(Demo, ScriptRunsPlanApplyDriftHeal) {
  // Not __FILE__: with ccache's base_dir it is relative to the build folder, not to ctest's.
  std::filesystem::path source = DRIFTLESS_SOURCE_DIR;
  std::string command = "cd '" + source.string() + "' && DRIFTLESS_BIN='" + DRIFTLESS_BIN +
                        "' bash scripts/demo.sh 2>&1";
  FILE* p = popen(command.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  int status = pclose(p);
  ASSERT_EQ(status, 0) << out;
  EXPECT_NE(out.find("Valid: 8 resources"), std::string::npos) << out;
  EXPECT_NE(out.find("Apply #1 succeeded: 8 created."), std::string::npos) << out;
  EXPECT_NE(out.find("0 to heal, 8 unchanged."), std::string::npos) << out;
  EXPECT_NE(out.find("1 to heal, 7 unchanged; 1 drifted."), std::string::npos) << out;
  EXPECT_NE(out.find("Apply #2 succeeded: 1 healed."), std::string::npos) << out;
  // The preview of staging gets staging's variables (vars/staging.yaml) and is pruned.
  EXPECT_NE(out.find("Hello from the staging branch from demo (staging-more-workers)."),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("staging-more-workers: its branch is gone: destroying 8 resources"),
            std::string::npos)
      << out;
  EXPECT_EQ(out.find("\033["), std::string::npos) << "colour in a pipe";
  // The demo's own temporary folder is named in its last line; remove it.
  size_t at = out.rfind("The demo ran in ");
  if (at != std::string::npos) {
    std::string dir = out.substr(at + 16, out.find(' ', at + 16) - at - 16);
    if (dir.find("driftless-demo.") != std::string::npos) std::filesystem::remove_all(dir);
  }
}

}  // namespace
}  // namespace driftless::test
