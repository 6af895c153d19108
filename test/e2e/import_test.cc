// `driftless state import ADDR ID` end to end with the file provider: hand-made files, a folder
// and a symlink are taken under management unchanged; the next plan shows each as unchanged or
// as exactly the update its declaration asks for; history records one "import" entry each; the
// refused cases (not declared, already in state, an ID that names nothing, another object than
// declared, another type at the path, the lock held) say why and change nothing.

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "e2e/harness.h"

namespace driftless::test {
namespace {

bool Contains(const std::string& text, const std::string& needle) {
  return text.find(needle) != std::string::npos;
}

void WriteRoot(const Sandbox& s, const std::string& rel, const std::string& content) {
  std::filesystem::create_directories(std::filesystem::path(s.root() + "/" + rel).parent_path());
  std::ofstream(s.root() + "/" + rel, std::ios::binary) << content;
}

class ImportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    box_.WriteProject();
    box_.WriteRepoFile(
        "app.yaml",
        "kind: file.file\nname: same\nspec: {path: same.txt, content: \"hi\\n\", "
        "mode: \"0640\"}\n"
        "---\nkind: file.file\nname: differs\nspec: {path: differs.txt, content: "
        "\"new\\n\"}\n"
        "---\nkind: file.directory\nname: etc\nspec: {path: etc, mode: \"0755\"}\n"
        "---\nkind: file.symlink\nname: link\nspec: {path: link, target: same.txt}\n"
        "---\nkind: file.file\nname: absent\nspec: {path: absent.txt, content: x}\n");
    WriteRoot(box_, "same.txt", "hi\n");
    chmod((box_.root() + "/same.txt").c_str(), 0640);
    WriteRoot(box_, "differs.txt", "old\n");
    std::filesystem::create_directories(box_.root() + "/etc");
    chmod((box_.root() + "/etc").c_str(), 0755);
    ASSERT_EQ(symlink("same.txt", (box_.root() + "/link").c_str()), 0);
  }
  RunResult Import(const std::string& address, const std::string& id) {
    return box_.Run({"state", "import", address, id});
  }
  Sandbox box_;
};

TEST_F(ImportTest, HandMadeObjectsBecomeManagedUnchanged) {
  for (const auto& [address, id] :
       std::vector<std::pair<std::string, std::string>>{{"file.file/same", "same.txt"},
                                                        {"file.directory/etc", "etc"},
                                                        {"file.symlink/link", "link"}}) {
    RunResult r = Import(address, id);
    ASSERT_EQ(r.exit_code, 0) << address << "\n" << r.out << r.err;
    EXPECT_TRUE(Contains(r.out, "Imported " + address)) << r.out;
    EXPECT_TRUE(Contains(r.out, "leaves it unchanged")) << r.out;
  }
  RunResult d = Import("file.file/differs", "differs.txt");
  ASSERT_EQ(d.exit_code, 0) << d.out << d.err;
  EXPECT_TRUE(Contains(d.out, "The next plan will update it")) << d.out;
  EXPECT_EQ(ReadFile(box_.root() + "/differs.txt"), "old\n") << "import changes nothing";

  // The next plan: the three unchanged, the one update the declaration asks for, the absent
  // file to create.
  RunResult p = box_.Run({"plan", "--json"});
  ASSERT_EQ(p.exit_code, 0) << p.err;
  Json plan;
  ASSERT_TRUE(ReadJson(p.out, &plan)) << p.out;
  std::map<std::string, std::string> actions;
  for (const Json& c : plan.Find("changes")->items) actions[c.Str("address")] = c.Str("action");
  EXPECT_EQ(actions["file.file/same"], "no-op");
  EXPECT_EQ(actions["file.directory/etc"], "no-op");
  EXPECT_EQ(actions["file.symlink/link"], "no-op");
  EXPECT_EQ(actions["file.file/differs"], "update");
  EXPECT_EQ(actions["file.file/absent"], "create");
  RunResult text = box_.Run({"plan"});
  EXPECT_TRUE(Contains(text.out, "-  old")) << text.out;
  EXPECT_TRUE(Contains(text.out, "+  new")) << text.out;

  // History: one "import" entry per import, with who and what.
  RunResult h = box_.Run({"history", "--json"});
  Json history;
  ASSERT_TRUE(ReadJson(h.out, &history)) << h.out;
  ASSERT_EQ(history.items.size(), 4u) << h.out;
  for (const Json& a : history.items) {
    EXPECT_EQ(a.Str("kind"), "import");
    EXPECT_EQ(a.Str("status"), "succeeded");
    EXPECT_FALSE(a.Str("actor").empty());
  }
  RunResult show = box_.Run({"history", "show", std::to_string(history.items[0].Int("id"))});
  EXPECT_TRUE(Contains(show.out, "file.file/differs")) << show.out;

  // Apply does what the plan said, and afterwards nothing is left to do.
  RunResult a = box_.Run({"apply", "--auto-approve"});
  ASSERT_EQ(a.exit_code, 0) << a.out << a.err;
  EXPECT_EQ(ReadFile(box_.root() + "/differs.txt"), "new\n");
  EXPECT_EQ(box_.Run({"plan", "--detailed-exitcode"}).exit_code, 0);
  // Destroy deletes an imported object like any other managed one.
  RunResult gone = box_.Run({"destroy", "default", "--auto-approve"});
  ASSERT_EQ(gone.exit_code, 0) << gone.out << gone.err;
  EXPECT_FALSE(std::filesystem::exists(box_.root() + "/same.txt"));
}

TEST_F(ImportTest, RefusedCasesSayWhyAndRecordNothing) {
  RunResult undeclared = Import("file.file/nope", "same.txt");
  EXPECT_EQ(undeclared.exit_code, 1);
  EXPECT_TRUE(Contains(undeclared.err, "file.file/nope is not declared in environment default"))
      << undeclared.err;
  EXPECT_TRUE(Contains(undeclared.err, "file.file/same")) << "names the declared ones";

  RunResult absent = Import("file.file/absent", "absent.txt");
  EXPECT_EQ(absent.exit_code, 1);
  EXPECT_TRUE(Contains(absent.err, "file.file/absent (file root " + box_.root() + ")"))
      << absent.err;
  EXPECT_TRUE(Contains(absent.err, "ID \"absent.txt\" names no file.file there")) << absent.err;

  RunResult other = Import("file.file/same", "differs.txt");
  EXPECT_EQ(other.exit_code, 1);
  EXPECT_TRUE(Contains(other.err, "names another object than file.file/same declares"))
      << other.err;
  EXPECT_TRUE(Contains(other.err, "import ID \"same.txt\"")) << other.err;

  RunResult escape = Import("file.file/same", "../outside");
  EXPECT_EQ(escape.exit_code, 1);
  EXPECT_TRUE(Contains(escape.err, "is not a path of file root")) << escape.err;

  // A folder where a file is declared is not a file.
  box_.WriteRepoFile("more.yaml", "kind: file.file\nname: dir\nspec: {path: etc, content: x}\n");
  RunResult type = Import("file.file/dir", "etc");
  EXPECT_EQ(type.exit_code, 1);
  EXPECT_TRUE(Contains(type.err, "is a directory, not a file")) << type.err;

  EXPECT_TRUE(box_.Run({"state", "list"}).out.empty()) << "nothing was recorded";
  RunResult h = box_.Run({"history"});
  EXPECT_FALSE(Contains(h.out, "import")) << h.out;

  // Importing an address already in state is refused, and says how to import another object.
  ASSERT_EQ(Import("file.file/same", "same.txt").exit_code, 0);
  RunResult twice = Import("file.file/same", "same.txt");
  EXPECT_EQ(twice.exit_code, 1);
  EXPECT_TRUE(Contains(twice.err, "file.file/same is already managed")) << twice.err;
  EXPECT_TRUE(Contains(twice.err, "driftless state rm file.file/same")) << twice.err;
}

TEST_F(ImportTest, TakesTheEnvironmentsLock) {
  // An apply that waits at its confirmation prompt (on a terminal the test holds) holds the
  // environment's lock; an import meanwhile fails at once, naming the lock and its holder.
  TerminalProc holder(box_, {"apply", "--no-color"}, "holder");
  ASSERT_TRUE(holder.WaitForScreen(kConfirmPrompt)) << holder.Screen();
  RunResult r = Import("file.file/same", "same.txt");
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_TRUE(Contains(r.err, "lock")) << r.err;
  EXPECT_TRUE(Contains(r.err, "(pid " + std::to_string(holder.pid()) + ")")) << r.err;
  holder.Type("no\n");
  EXPECT_EQ(holder.Wait(), 1) << holder.Screen();
  EXPECT_TRUE(box_.Run({"state", "list"}).out.empty());
  // Released: the import goes through now.
  RunResult after = Import("file.file/same", "same.txt");
  EXPECT_EQ(after.exit_code, 0) << after.err;
}

}  // namespace
}  // namespace driftless::test
