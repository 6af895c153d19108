// Files nest in folders: a file is created after, and deleted before, the folder resource that
// contains it, without any reference between them; a purging folder keeps what is managed.
#include <gtest/gtest.h>

#include "e2e/harness.h"

namespace driftless::test {
namespace {

TEST(Hierarchy, FoldersBeforeFilesAndFilesBeforeFolders) {
  Sandbox s;
  s.WriteProject();
  s.WriteRepoFile("r.yaml",
                  "kind: file.file\nname: deep\nspec: {path: site/a/b/page.html, content: x}\n---\n"
                  "kind: file.directory\nname: site\nspec: {path: site, mode: \"0750\"}\n---\n"
                  "kind: file.directory\nname: a\nspec: {path: site/a, mode: \"0700\"}\n");
  for (int round = 0; round < 3; ++round) {
    RunResult a = s.Run({"apply", "--auto-approve", "--parallelism", "8"});
    ASSERT_EQ(a.exit_code, 0) << a.out << a.err;
    EXPECT_EQ(ModeOf(s.root() + "/site"), 0750);
    EXPECT_EQ(ModeOf(s.root() + "/site/a"), 0700);
    EXPECT_EQ(ReadFile(s.root() + "/site/a/b/page.html"), "x");
    RunResult d = s.Run({"destroy", "default", "--auto-approve", "--parallelism", "8"});
    ASSERT_EQ(d.exit_code, 0) << d.out << d.err;
    EXPECT_FALSE(Exists(s.root() + "/site"));
  }
}

TEST(Hierarchy, PurgeKeepsManagedFilesAndReportsStrayOnes) {
  Sandbox s;
  s.WriteProject();
  s.WriteRepoFile("r.yaml",
                  "kind: file.directory\nname: conf\nspec: {path: conf, purge: true}\n---\n"
                  "kind: file.file\nname: a\nspec: {path: conf/a.conf, content: a}\n---\n"
                  "kind: file.file\nname: b\nspec: {path: conf/sub/b.conf, content: b}\n");
  RunResult a = s.Run({"apply", "--auto-approve"});
  ASSERT_EQ(a.exit_code, 0) << a.out << a.err;
  EXPECT_EQ(s.Run({"plan", "--detailed-exitcode"}).exit_code, 0);
  // A stray file inside the purged folder is drift, and the next apply removes it.
  std::string stray = s.root() + "/conf/stray.conf";
  FILE* f = std::fopen(stray.c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fputs("stray", f);
  std::fclose(f);
  RunResult p = s.Run({"plan", "--detailed-exitcode"});
  EXPECT_EQ(p.exit_code, 2) << p.out;
  EXPECT_NE(p.out.find("stray.conf"), std::string::npos) << p.out;
  ASSERT_EQ(s.Run({"apply", "--auto-approve"}).exit_code, 0);
  EXPECT_FALSE(Exists(stray));
  EXPECT_EQ(ReadFile(s.root() + "/conf/a.conf"), "a");
  EXPECT_EQ(ReadFile(s.root() + "/conf/sub/b.conf"), "b");
}

}  // namespace
}  // namespace driftless::test
