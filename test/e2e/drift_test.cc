// `driftless drift`: live against last applied, with diffs, exit 2 when anything drifted; fields
// in policy.ignore and resources with drift: ignore are not compared; secrets stay secret.

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdio>
#include <string>

#include "e2e/harness.h"

namespace driftless::test {
namespace {

bool Contains(const std::string& text, const std::string& needle) {
  return text.find(needle) != std::string::npos;
}

void Overwrite(const std::string& path, const std::string& bytes) {
  std::FILE* f = std::fopen(path.c_str(), "w");
  ASSERT_TRUE(f != nullptr) << path;
  std::fputs(bytes.c_str(), f);
  std::fclose(f);
}

class DriftTest : public ::testing::Test {
 protected:
  void SetUp() override {
    box_.WriteProject();
    box_.WriteRepoFile(
        "app.yaml",
        "kind: file.file\nname: a\ntarget: host\nspec: {path: a.txt, content: \"a\\n\"}\n"
        "---\nkind: file.file\nname: b\ntarget: host\nspec: {path: b.txt, content: \"b\\n\"}\n"
        "---\nkind: file.file\nname: c\ntarget: host\n"
        "spec: {path: c.txt, content: \"c\\n\", mode: \"0644\"}\n"
        "---\nkind: file.file\nname: loose\ntarget: host\nspec: {path: loose.txt, content: x}\n"
        "policy: {drift: ignore}\n"
        "---\nkind: file.file\nname: modeless\ntarget: host\n"
        "spec: {path: m.txt, content: m, mode: \"0644\"}\npolicy: {ignore: [spec.mode]}\n"
        "---\nkind: file.file\nname: secret\ntarget: host\n"
        "spec: {path: s.txt, content: \"${secret.TOKEN}\"}\n");
    RunResult a = box_.Run({"apply", "--auto-approve"}, {"DRIFTLESS_SECRET_TOKEN=hunter2"});
    ASSERT_EQ(a.exit_code, 0) << a.out << a.err;
  }

  RunResult Drift(const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = {"drift"};
    args.insert(args.end(), extra.begin(), extra.end());
    return box_.Run(args, {"DRIFTLESS_SECRET_TOKEN=hunter2"});
  }

  Sandbox box_;
};

TEST_F(DriftTest, NothingChangedIsExitZero) {
  RunResult r = Drift();
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(Contains(r.out, "No drift: 6 resources checked")) << r.out;
}

TEST_F(DriftTest, EditDeleteAndChmodAreEachReportedWithADiff) {
  Overwrite(box_.root() + "/a.txt", "edited by hand\n");
  std::remove((box_.root() + "/b.txt").c_str());
  chmod((box_.root() + "/c.txt").c_str(), 0600);
  Overwrite(box_.root() + "/loose.txt", "ignored");
  chmod((box_.root() + "/m.txt").c_str(), 0600);
  Overwrite(box_.root() + "/s.txt", "leaked?");
  RunResult r = Drift();
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_TRUE(Contains(r.out, "~ file.file/a  (modified outside driftless)")) << r.out;
  EXPECT_TRUE(Contains(r.out, "edited by hand")) << r.out;
  EXPECT_TRUE(Contains(r.out, "~ file.file/b  (deleted outside driftless)")) << r.out;
  EXPECT_TRUE(Contains(r.out, "~ file.file/c  (modified outside driftless)")) << r.out;
  EXPECT_TRUE(Contains(r.out, "+mode: \"0600\"")) << r.out;
  EXPECT_FALSE(Contains(r.out, "file.file/loose")) << "drift: ignore is never compared";
  EXPECT_FALSE(Contains(r.out, "file.file/modeless")) << "policy.ignore fields are not compared";
  EXPECT_TRUE(Contains(r.out, "file.file/secret")) << r.out;
  EXPECT_FALSE(Contains(r.out, "hunter2")) << r.out;
  EXPECT_TRUE(Contains(r.out, "Drift: 4 of 6 resources changed outside driftless")) << r.out;

  RunResult j = Drift({"--json"});
  EXPECT_EQ(j.exit_code, 2);
  Json doc;
  ASSERT_TRUE(ReadJson(j.out, &doc)) << j.out;
  const Json* drifted = doc.Find("drifted");
  ASSERT_TRUE(drifted != nullptr);
  ASSERT_EQ(drifted->items.size(), 4u);
  EXPECT_EQ(drifted->items[0].Str("address"), "file.file/a");
  EXPECT_TRUE(drifted->items[1].IsNull("live")) << "b was deleted";
  EXPECT_FALSE(Contains(j.out, "hunter2"));

  // apply reverts; drift is gone.
  RunResult heal = box_.Run({"apply", "--auto-approve"}, {"DRIFTLESS_SECRET_TOKEN=hunter2"});
  ASSERT_EQ(heal.exit_code, 0) << heal.out << heal.err;
  EXPECT_EQ(Drift().exit_code, 0);
}

TEST_F(DriftTest, ADeclarationChangeAloneIsNotDrift) {
  std::string app = ReadFile(box_.repo() + "/app.yaml");
  const std::string old_content = "content: \"a\\n\"";
  size_t at = app.find(old_content);
  ASSERT_NE(at, std::string::npos);
  box_.WriteRepoFile("app.yaml", app.replace(at, old_content.size(), "content: new"));
  RunResult r = Drift();
  EXPECT_EQ(r.exit_code, 0) << "a changed in the declarations only: " << r.out << r.err;
  Overwrite(box_.root() + "/a.txt", "by hand");
  r = Drift();
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_TRUE(Contains(r.out, "applied -> declared (a change not applied yet)")) << r.out;
  EXPECT_TRUE(Contains(r.out, "+content: new")) << r.out;
}

TEST_F(DriftTest, TimelineRecordsOnsetAndResolution) {
  Overwrite(box_.root() + "/a.txt", "by hand\n");
  Overwrite(box_.root() + "/b.txt", "by hand\n");
  EXPECT_EQ(Drift().exit_code, 2);
  EXPECT_EQ(Drift().exit_code, 2);  // seen again: still one drift each
  RunResult open = box_.Run({"drift", "--history", "--json"});
  Json j;
  ASSERT_TRUE(ReadJson(open.out, &j)) << open.out << open.err;
  ASSERT_EQ(j.items.size(), 2u);
  EXPECT_TRUE(j.items[0].IsNull("resolved_at"));

  // b is put back by hand: undone. a is reverted by apply.
  Overwrite(box_.root() + "/b.txt", "b\n");
  EXPECT_EQ(Drift().exit_code, 2);
  RunResult heal = box_.Run({"apply", "--auto-approve"}, {"DRIFTLESS_SECRET_TOKEN=hunter2"});
  ASSERT_EQ(heal.exit_code, 0) << heal.out << heal.err;
  RunResult h = box_.Run({"drift", "--history", "--json"});
  ASSERT_TRUE(ReadJson(h.out, &j)) << h.out;
  ASSERT_EQ(j.items.size(), 2u);
  for (const auto& d : j.items) {
    std::string want = d.Str("resource") == "file.file/a" ? "apply" : "undone";
    EXPECT_EQ(d.Str("resolution"), want) << d.Str("resource");
    EXPECT_FALSE(d.IsNull("resolved_at"));
  }
  RunResult text = box_.Run({"drift", "--history"});
  EXPECT_TRUE(Contains(text.out, "RESOLVED BY")) << text.out;
}

}  // namespace
}  // namespace driftless::test
