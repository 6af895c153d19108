// End-to-end flows of the real binary: validate, plan, apply, drift, heal, destroy, and what
// policies, secrets, saved plans, history and state commands do along the way.

#include <gtest/gtest.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "base/hash.h"
#include "base/identity.h"
#include "e2e/harness.h"

namespace driftless::test {
namespace {

namespace fs = std::filesystem;

bool Contains(const std::string& text, const std::string& needle) {
  return text.find(needle) != std::string::npos;
}

// Lines of `text` with their leading blanks removed (plan diffs are indented).
std::vector<std::string> TrimmedLines(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t nl = text.find('\n', start);
    std::string line = text.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
    size_t first = line.find_first_not_of(' ');
    out.push_back(first == std::string::npos ? "" : line.substr(first));
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
  return out;
}

// True when one line of `text`, leading blanks aside, is exactly `line`.
bool HasLine(const std::string& text, const std::string& line) {
  std::vector<std::string> lines = TrimmedLines(text);
  return std::find(lines.begin(), lines.end(), line) != lines.end();
}

// Writes a file outside the repository (in the target root, say), parents created.
void WriteFile(const std::string& path, const std::string& content) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary | std::ios::trunc) << content;
}

// Every path below `root`, relative and sorted; folders included.
std::vector<std::string> Tree(const std::string& root) {
  std::vector<std::string> out;
  std::error_code ec;
  if (!fs::exists(root, ec)) return out;
  for (auto it = fs::recursive_directory_iterator(root, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    out.push_back(fs::relative(it->path(), root).string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

ino_t InodeOf(const std::string& path) {
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0) return 0;
  return st.st_ino;
}

std::string Show(const RunResult& r) {
  return "exit " + std::to_string(r.exit_code) + "\n--- stdout\n" + r.out + "--- stderr\n" + r.err;
}

// ---------------------------------------------------------------------------------------------
// The scenario the project must show, start to end.

constexpr const char* kFlowFiles = R"(kind: file.directory
name: conf
spec: {path: etc, mode: "0750"}
---
kind: file.file
name: app
spec:
  path: "${file.directory.conf.path}/app.conf"
  mode: "0640"
  content: |
    line1
    line2
    line3
---
kind: file.file
name: motd
spec: {path: motd, content: "hello ${var.who}\n", mode: "0600"}
)";

TEST(Flow, ValidatePlanApplyDriftHealDestroy) {
  Sandbox s;
  s.WriteProject("vars:\n  who: world\n");
  s.WriteRepoFile("infra/files.yaml", kFlowFiles);
  fs::create_directories(s.root());
  WriteFile(s.root() + "/notes.txt", "not managed\n");  // must survive everything

  // validate
  RunResult v = s.Run({"validate"});
  ASSERT_EQ(v.exit_code, 0) << Show(v);
  EXPECT_TRUE(Contains(v.out, "3 resources")) << v.out;

  // plan: changes, exit 2, nothing touched
  RunResult p = s.Run({"plan", "--detailed-exitcode"});
  ASSERT_EQ(p.exit_code, 2) << Show(p);
  EXPECT_TRUE(Contains(p.out, "+ file.directory/conf")) << p.out;
  EXPECT_TRUE(Contains(p.out, "+ file.file/app")) << p.out;
  EXPECT_TRUE(Contains(p.out, "+ file.file/motd")) << p.out;
  EXPECT_TRUE(Contains(p.out, "3 to create")) << p.out;
  EXPECT_TRUE(HasLine(p.out, "+  line2")) << p.out;
  EXPECT_EQ(Tree(s.root()), std::vector<std::string>{"notes.txt"}) << "plan must not write";

  // apply
  RunResult a = s.Run({"apply", "--auto-approve"});
  ASSERT_EQ(a.exit_code, 0) << Show(a);
  EXPECT_TRUE(Contains(a.out, "3 created")) << a.out;
  EXPECT_EQ(ReadFile(s.root() + "/etc/app.conf"), "line1\nline2\nline3\n");
  EXPECT_EQ(ReadFile(s.root() + "/motd"), "hello world\n");
  EXPECT_EQ(ModeOf(s.root() + "/etc"), 0750);
  EXPECT_EQ(ModeOf(s.root() + "/etc/app.conf"), 0640);
  EXPECT_EQ(ModeOf(s.root() + "/motd"), 0600);
  EXPECT_EQ(Tree(s.root()), (std::vector<std::string>{"etc", "etc/app.conf", "motd", "notes.txt"}));

  // plan again: nothing to do
  RunResult clean = s.Run({"plan", "--detailed-exitcode"});
  EXPECT_EQ(clean.exit_code, 0) << Show(clean);

  // a manual edit of a managed file: content and mode
  WriteFile(s.root() + "/etc/app.conf", "line1\nEDITED\nline3\n");
  ASSERT_EQ(chmod((s.root() + "/etc/app.conf").c_str(), 0666), 0);
  RunResult drift = s.Run({"plan", "--detailed-exitcode"});
  EXPECT_EQ(drift.exit_code, 2) << Show(drift);
  EXPECT_TRUE(Contains(drift.out, "file.file/app")) << drift.out;
  EXPECT_TRUE(Contains(drift.out, "modified outside driftless")) << drift.out;
  EXPECT_TRUE(HasLine(drift.out, "-  EDITED")) << drift.out;
  EXPECT_TRUE(HasLine(drift.out, "+  line2")) << drift.out;
  EXPECT_TRUE(HasLine(drift.out, "-mode: \"0666\"")) << drift.out;
  EXPECT_TRUE(HasLine(drift.out, "+mode: \"0640\"")) << drift.out;
  EXPECT_FALSE(Contains(drift.out, "file.file/motd  (")) << "only the edited file is listed\n"
                                                         << drift.out;
  EXPECT_EQ(ReadFile(s.root() + "/etc/app.conf"), "line1\nEDITED\nline3\n") << "plan must not heal";

  // apply heals it
  RunResult heal = s.Run({"apply", "--auto-approve"});
  ASSERT_EQ(heal.exit_code, 0) << Show(heal);
  EXPECT_TRUE(Contains(heal.out, "1 healed")) << heal.out;
  EXPECT_EQ(ReadFile(s.root() + "/etc/app.conf"), "line1\nline2\nline3\n");
  EXPECT_EQ(ModeOf(s.root() + "/etc/app.conf"), 0640);
  RunResult healed = s.Run({"plan", "--detailed-exitcode"});
  EXPECT_EQ(healed.exit_code, 0) << Show(healed);

  // destroy, while the managed folder holds a file driftless does not manage: the folder is
  // kept (with that file), the error names it, everything else driftless made is gone.
  WriteFile(s.root() + "/etc/local.conf", "the operator's\n");
  RunResult d1 = s.Run({"destroy", "default", "--auto-approve"});
  EXPECT_EQ(d1.exit_code, 1) << Show(d1);
  EXPECT_TRUE(Contains(d1.err, "directory " + s.root() + "/etc is not empty")) << d1.err;
  EXPECT_TRUE(Contains(d1.err, "file.directory/conf")) << d1.err;
  EXPECT_TRUE(Contains(d1.out, "2 deleted")) << d1.out;
  EXPECT_TRUE(Contains(d1.out, "1 failed")) << d1.out;
  EXPECT_EQ(Tree(s.root()), (std::vector<std::string>{"etc", "etc/local.conf", "notes.txt"}));
  EXPECT_EQ(ReadFile(s.root() + "/etc/local.conf"), "the operator's\n");
  RunResult left = s.Run({"state", "list"});
  EXPECT_EQ(left.exit_code, 0) << Show(left);
  EXPECT_EQ(left.out, "file.directory/conf\n") << "the kept folder stays managed";

  // once the folder is empty, destroy finishes; the unmanaged file in the root survives.
  fs::remove(s.root() + "/etc/local.conf");
  RunResult d2 = s.Run({"destroy", "default", "--auto-approve"});
  EXPECT_EQ(d2.exit_code, 0) << Show(d2);
  EXPECT_EQ(Tree(s.root()), std::vector<std::string>{"notes.txt"});
  EXPECT_EQ(ReadFile(s.root() + "/notes.txt"), "not managed\n");
  RunResult none = s.Run({"state", "list"});
  EXPECT_EQ(none.exit_code, 0) << Show(none);
  EXPECT_EQ(none.out, "");
  RunResult again = s.Run({"plan", "--detailed-exitcode"});
  EXPECT_EQ(again.exit_code, 2) << Show(again);
  EXPECT_TRUE(Contains(again.out, "3 to create")) << again.out;
}

TEST(Flow, PlanJsonIsJson) {
  Sandbox s;
  s.WriteProject();
  s.WriteRepoFile("a.yaml", "kind: file.file\nname: a\nspec: {path: a.txt, content: \"a\\n\"}\n");
  RunResult p = s.Run({"plan", "--json"});
  ASSERT_EQ(p.exit_code, 0) << Show(p);
  ASSERT_FALSE(p.out.empty());
  EXPECT_EQ(p.out.front(), '{') << p.out;
  EXPECT_TRUE(Contains(p.out, "\"format_version\": 1")) << p.out;
  EXPECT_TRUE(Contains(p.out, "\"file.file/a\"")) << p.out;
  RunResult d = s.Run({"plan", "--json", "--detailed-exitcode"});
  EXPECT_EQ(d.exit_code, 2) << Show(d);
  EXPECT_EQ(d.out.front(), '{') << d.out;
}

// ---------------------------------------------------------------------------------------------
// Secrets.

constexpr const char* kSecretFiles = R"(kind: file.file
name: tok
spec: {path: token, content: "${secret.TOKEN}", mode: "0600"}
---
kind: file.file
name: env
spec: {path: app.env, content: "TOKEN=${secret.TOKEN}\n"}
)";

// Checks that neither the secret nor its SHA-256 shows in `text`.
void ExpectNoSecret(const std::string& text, const std::string& secret, const std::string& what) {
  EXPECT_FALSE(Contains(text, secret)) << what << " shows the secret:\n" << text;
  EXPECT_FALSE(Contains(text, Sha256Hex(secret))) << what << " shows the secret's hash:\n" << text;
  EXPECT_FALSE(Contains(text, Sha256Hex("TOKEN=" + secret + "\n")))
      << what << " shows the hash of a file holding the secret:\n"
      << text;
}

TEST(Flow, SecretsNeverShownAndChangesPlannedAsUpdates) {
  Sandbox s;
  s.WriteProject();
  s.WriteRepoFile("infra/secret.yaml", kSecretFiles);
  const std::string secret = "Sup3r-s3cret-value-7f9c";
  const std::string secret2 = "An0ther-s3cret-2b81";
  const std::vector<std::string> env = {"DRIFTLESS_SECRET_TOKEN=" + secret};
  const std::vector<std::string> env2 = {"DRIFTLESS_SECRET_TOKEN=" + secret2};
  const std::string plan_file = s.dir() + "/secret.plan";

  RunResult missing = s.Run({"plan"});
  EXPECT_EQ(missing.exit_code, 1) << Show(missing);
  EXPECT_TRUE(Contains(missing.err, "secret TOKEN is not set")) << missing.err;
  EXPECT_TRUE(Contains(missing.err, "DRIFTLESS_SECRET_TOKEN")) << missing.err;

  RunResult p = s.Run({"plan", "--out", plan_file}, env);
  ASSERT_EQ(p.exit_code, 0) << Show(p);
  EXPECT_TRUE(Contains(p.out, "(sensitive)")) << p.out;
  ExpectNoSecret(p.out + p.err, secret, "plan");
  ExpectNoSecret(ReadFile(plan_file), secret, "the plan file");
  RunResult pj = s.Run({"plan", "--json"}, env);
  ASSERT_EQ(pj.exit_code, 0) << Show(pj);
  ExpectNoSecret(pj.out + pj.err, secret, "plan --json");

  RunResult a = s.Run({"apply", "--auto-approve"}, env);
  ASSERT_EQ(a.exit_code, 0) << Show(a);
  ExpectNoSecret(a.out + a.err, secret, "apply");
  EXPECT_EQ(ReadFile(s.root() + "/token"), secret);
  EXPECT_EQ(ReadFile(s.root() + "/app.env"), "TOKEN=" + secret + "\n");

  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"state", "show", "file.file/tok"},
        std::vector<std::string>{"state", "show", "file.file/tok", "--json"},
        std::vector<std::string>{"state", "show", "file.file/env"},
        std::vector<std::string>{"state", "list", "--json"}, std::vector<std::string>{"history"},
        std::vector<std::string>{"history", "show", "1"},
        std::vector<std::string>{"history", "show", "1", "--json"},
        std::vector<std::string>{"env", "show", "default"}}) {
    RunResult r = s.Run(args, env);
    std::string what;
    for (const auto& x : args) what += x + " ";
    EXPECT_EQ(r.exit_code, 0) << what << Show(r);
    ExpectNoSecret(r.out + r.err, secret, what);
  }
  RunResult shown = s.Run({"state", "show", "file.file/tok"}, env);
  EXPECT_TRUE(HasLine(shown.out, "content: (sensitive)")) << shown.out;

  RunResult clean = s.Run({"plan", "--detailed-exitcode"}, env);
  EXPECT_EQ(clean.exit_code, 0) << Show(clean);

  // A changed secret is an update, shown without either value.
  RunResult changed = s.Run({"plan", "--detailed-exitcode"}, env2);
  EXPECT_EQ(changed.exit_code, 2) << Show(changed);
  EXPECT_TRUE(Contains(changed.out, "~ file.file/tok")) << changed.out;
  EXPECT_TRUE(Contains(changed.out, "~ file.file/env")) << changed.out;
  EXPECT_TRUE(Contains(changed.out, "2 to update")) << changed.out;
  ExpectNoSecret(changed.out + changed.err, secret, "plan after the change");
  ExpectNoSecret(changed.out + changed.err, secret2, "plan after the change");
  RunResult changed_json = s.Run({"plan", "--json"}, env2);
  ExpectNoSecret(changed_json.out, secret2, "plan --json after the change");
  RunResult a2 = s.Run({"apply", "--auto-approve"}, env2);
  ASSERT_EQ(a2.exit_code, 0) << Show(a2);
  ExpectNoSecret(a2.out + a2.err, secret2, "apply after the change");
  EXPECT_EQ(ReadFile(s.root() + "/token"), secret2);
  EXPECT_EQ(ReadFile(s.root() + "/app.env"), "TOKEN=" + secret2 + "\n");
  RunResult h2 = s.Run({"history", "show", "2"}, env2);
  EXPECT_EQ(h2.exit_code, 0) << Show(h2);
  ExpectNoSecret(h2.out, secret2, "history show 2");
  RunResult clean2 = s.Run({"plan", "--detailed-exitcode"}, env2);
  EXPECT_EQ(clean2.exit_code, 0) << Show(clean2);

  // The database never holds either value (nor its hash), in any of its files.
  ASSERT_TRUE(Exists(s.state()));
  std::string bytes = StateBytes(s);
  ExpectNoSecret(bytes, secret, "the state database");
  ExpectNoSecret(bytes, secret2, "the state database");
}

// ---------------------------------------------------------------------------------------------
// Saved plans and approval.

TEST(Flow, SavedPlanIsApplied) {
  Sandbox s;
  s.WriteProject();
  s.WriteRepoFile("a.yaml", "kind: file.file\nname: a\nspec: {path: a.txt, content: \"one\\n\"}\n");
  const std::string plan_file = s.dir() + "/a.plan";
  RunResult p = s.Run({"plan", "--out", plan_file});
  ASSERT_EQ(p.exit_code, 0) << Show(p);
  ASSERT_TRUE(Exists(plan_file));
  EXPECT_FALSE(Exists(s.root() + "/a.txt"));
  RunResult a = s.Run({"apply", plan_file});  // a saved plan needs no --auto-approve
  ASSERT_EQ(a.exit_code, 0) << Show(a);
  EXPECT_EQ(ReadFile(s.root() + "/a.txt"), "one\n");
  EXPECT_TRUE(Contains(a.out, "1 created")) << a.out;
  RunResult clean = s.Run({"plan", "--detailed-exitcode"});
  EXPECT_EQ(clean.exit_code, 0) << Show(clean);
  // Applied once, the same file is stale: the state moved on.
  RunResult twice = s.Run({"apply", plan_file});
  EXPECT_EQ(twice.exit_code, 1) << Show(twice);
  EXPECT_TRUE(Contains(twice.err, "stale")) << twice.err;
}

TEST(Flow, StalePlanRefusedWhenDeclarationsChanged) {
  Sandbox s;
  s.WriteProject();
  s.WriteRepoFile("a.yaml", "kind: file.file\nname: a\nspec: {path: a.txt, content: \"one\\n\"}\n");
  const std::string plan_file = s.dir() + "/a.plan";
  ASSERT_EQ(s.Run({"plan", "--out", plan_file}).exit_code, 0);
  s.WriteRepoFile("a.yaml", "kind: file.file\nname: a\nspec: {path: a.txt, content: \"two\\n\"}\n");
  RunResult a = s.Run({"apply", plan_file});
  EXPECT_EQ(a.exit_code, 1) << Show(a);
  EXPECT_TRUE(Contains(a.err, "plan file " + plan_file + " is stale")) << a.err;
  EXPECT_TRUE(Contains(a.err, "declarations changed")) << a.err;
  EXPECT_TRUE(Contains(a.err, "driftless plan --out")) << "says what to do: " << a.err;
  EXPECT_FALSE(Exists(s.root() + "/a.txt")) << "a refused plan changes nothing";
  RunResult h = s.Run({"history"});
  EXPECT_TRUE(Contains(h.out, "No applies yet")) << h.out;
}

TEST(Flow, StalePlanRefusedWhenStateChanged) {
  Sandbox s;
  s.WriteProject();
  s.WriteRepoFile("a.yaml", "kind: file.file\nname: a\nspec: {path: a.txt, content: \"one\\n\"}\n");
  ASSERT_EQ(s.Run({"apply", "--auto-approve"}).exit_code, 0);
  WriteFile(s.root() + "/a.txt", "edited\n");
  const std::string plan_file = s.dir() + "/heal.plan";
  RunResult p = s.Run({"plan", "--out", plan_file, "--detailed-exitcode"});
  ASSERT_EQ(p.exit_code, 2) << Show(p);
  // Another apply gets there first.
  RunResult other = s.Run({"apply", "--auto-approve"});
  ASSERT_EQ(other.exit_code, 0) << Show(other);
  WriteFile(s.root() + "/a.txt", "edited again\n");
  RunResult a = s.Run({"apply", plan_file});
  EXPECT_EQ(a.exit_code, 1) << Show(a);
  EXPECT_TRUE(Contains(a.err, "plan file " + plan_file + " is stale")) << a.err;
  EXPECT_TRUE(Contains(a.err, "state changed")) << a.err;
  EXPECT_EQ(ReadFile(s.root() + "/a.txt"), "edited again\n") << "a refused plan changes nothing";
}

TEST(Flow, ApplyAndDestroyRefuseWithoutApprovalOffTerminal) {
  Sandbox s;
  s.WriteProject();
  s.WriteRepoFile("a.yaml", "kind: file.file\nname: a\nspec: {path: a.txt, content: \"one\\n\"}\n");
  RunResult a = s.Run({"apply"}, {}, "yes\n");
  EXPECT_EQ(a.exit_code, 1) << Show(a);
  EXPECT_TRUE(Contains(a.err, "--auto-approve")) << a.err;
  EXPECT_FALSE(Exists(s.root()));
  ASSERT_EQ(s.Run({"apply", "--auto-approve"}).exit_code, 0);
  RunResult d = s.Run({"destroy", "default"}, {}, "yes\n");
  EXPECT_EQ(d.exit_code, 1) << Show(d);
  EXPECT_TRUE(Contains(d.err, "--auto-approve")) << d.err;
  EXPECT_EQ(ReadFile(s.root() + "/a.txt"), "one\n");
}

// ---------------------------------------------------------------------------------------------
// Policies.

TEST(Flow, PreventDestroyFailsAPlanThatDeletes) {
  Sandbox s;
  s.WriteProject();
  s.WriteRepoFile("keep.yaml",
                  "kind: file.file\nname: keep\nspec: {path: keep.txt, content: \"k\\n\"}\n"
                  "policy: {prevent_destroy: true}\n");
  s.WriteRepoFile("other.yaml",
                  "kind: file.file\nname: other\nspec: {path: other.txt, content: \"o\\n\"}\n");
  ASSERT_EQ(s.Run({"apply", "--auto-approve"}).exit_code, 0);

  fs::remove(s.repo() + "/keep.yaml");
  RunResult p = s.Run({"plan", "--detailed-exitcode"});
  EXPECT_EQ(p.exit_code, 1) << Show(p);
  EXPECT_TRUE(Contains(p.err, "file.file/keep")) << p.err;
  EXPECT_TRUE(Contains(p.err, "prevent_destroy")) << p.err;
  RunResult a = s.Run({"apply", "--auto-approve"});
  EXPECT_EQ(a.exit_code, 1) << Show(a);
  EXPECT_TRUE(Contains(a.err, "file.file/keep")) << a.err;
  EXPECT_EQ(ReadFile(s.root() + "/keep.txt"), "k\n");

  RunResult d = s.Run({"destroy", "default", "--auto-approve"});
  EXPECT_EQ(d.exit_code, 1) << Show(d);
  EXPECT_TRUE(Contains(d.err, "file.file/keep")) << d.err;
  EXPECT_EQ(ReadFile(s.root() + "/keep.txt"), "k\n");
  EXPECT_EQ(ReadFile(s.root() + "/other.txt"), "o\n") << "a failed plan applies nothing";
}

TEST(Flow, CreateOnlyNeverUpdates) {
  Sandbox s;
  s.WriteProject();
  auto decl = [](const std::string& content) {
    return "kind: file.file\nname: once\nspec: {path: once.txt, content: \"" + content +
           "\\n\"}\npolicy: {create_only: true}\n";
  };
  s.WriteRepoFile("once.yaml", decl("v1"));
  ASSERT_EQ(s.Run({"apply", "--auto-approve"}).exit_code, 0);
  EXPECT_EQ(ReadFile(s.root() + "/once.txt"), "v1\n");

  s.WriteRepoFile("once.yaml", decl("v2"));
  RunResult p = s.Run({"plan", "--detailed-exitcode"});
  EXPECT_EQ(p.exit_code, 0) << Show(p);
  RunResult a = s.Run({"apply", "--auto-approve"});
  EXPECT_EQ(a.exit_code, 0) << Show(a);
  EXPECT_EQ(ReadFile(s.root() + "/once.txt"), "v1\n");

  WriteFile(s.root() + "/once.txt", "edited\n");
  ASSERT_EQ(s.Run({"apply", "--auto-approve"}).exit_code, 0);
  EXPECT_EQ(ReadFile(s.root() + "/once.txt"), "edited\n") << "create_only never rewrites";

  // Missing: created again, from the current declaration.
  fs::remove(s.root() + "/once.txt");
  RunResult again = s.Run({"apply", "--auto-approve"});
  EXPECT_EQ(again.exit_code, 0) << Show(again);
  EXPECT_EQ(ReadFile(s.root() + "/once.txt"), "v2\n");
}

TEST(Flow, AdoptTakesOverAnExistingFile) {
  Sandbox s;
  s.WriteProject();
  WriteFile(s.root() + "/adopted.txt", "theirs\n");
  s.WriteRepoFile("a.yaml",
                  "kind: file.file\nname: ad\nspec: {path: adopted.txt, content: \"ours\\n\", "
                  "mode: \"0640\"}\npolicy: {adopt: true}\n");
  RunResult p = s.Run({"plan", "--detailed-exitcode"});
  EXPECT_EQ(p.exit_code, 2) << Show(p);
  EXPECT_TRUE(HasLine(p.out, "-  theirs")) << p.out;
  EXPECT_TRUE(HasLine(p.out, "+  ours")) << p.out;
  RunResult a = s.Run({"apply", "--auto-approve"});
  ASSERT_EQ(a.exit_code, 0) << Show(a);
  EXPECT_EQ(ReadFile(s.root() + "/adopted.txt"), "ours\n");
  EXPECT_EQ(ModeOf(s.root() + "/adopted.txt"), 0640);
  RunResult l = s.Run({"state", "list"});
  EXPECT_EQ(l.out, "file.file/ad\n");
  EXPECT_EQ(s.Run({"plan", "--detailed-exitcode"}).exit_code, 0);
}

TEST(Flow, WithoutAdoptAnExistingFileFailsAndIsLeftAlone) {
  Sandbox s;
  s.WriteProject();
  WriteFile(s.root() + "/taken.txt", "theirs\n");
  s.WriteRepoFile("a.yaml",
                  "kind: file.file\nname: taken\nspec: {path: taken.txt, content: \"ours\\n\"}\n"
                  "---\n"
                  "kind: file.file\nname: free\nspec: {path: free.txt, content: \"free\\n\"}\n");
  RunResult p = s.Run({"plan"});
  EXPECT_EQ(p.exit_code, 0) << Show(p);
  EXPECT_TRUE(Contains(p.out, "adopt")) << "the plan warns: " << p.out;

  RunResult a = s.Run({"apply", "--auto-approve"});
  EXPECT_EQ(a.exit_code, 1) << Show(a);
  EXPECT_TRUE(Contains(a.err, "file.file/taken")) << a.err;
  EXPECT_TRUE(Contains(a.err, "already exists")) << a.err;
  EXPECT_TRUE(Contains(a.err, "policy.adopt")) << "says what to do: " << a.err;
  EXPECT_TRUE(Contains(a.out, "1 created")) << a.out;
  EXPECT_TRUE(Contains(a.out, "1 failed")) << a.out;
  EXPECT_EQ(ReadFile(s.root() + "/taken.txt"), "theirs\n");
  EXPECT_EQ(ReadFile(s.root() + "/free.txt"), "free\n") << "the other resources still apply";

  // The refused file is not managed now: it is not in state, a second apply still refuses
  // it, and destroy leaves it alone.
  RunResult l = s.Run({"state", "list"});
  EXPECT_EQ(l.out, "file.file/free\n") << "a file driftless refused to take over is in state";
  RunResult again = s.Run({"apply", "--auto-approve"});
  EXPECT_EQ(again.exit_code, 1) << Show(again);
  EXPECT_EQ(ReadFile(s.root() + "/taken.txt"), "theirs\n")
      << "the second apply overwrote a file it was not allowed to adopt";
  RunResult d = s.Run({"destroy", "default", "--auto-approve"});
  EXPECT_EQ(d.exit_code, 0) << Show(d);
  EXPECT_FALSE(Exists(s.root() + "/free.txt"));
  EXPECT_EQ(ReadFile(s.root() + "/taken.txt"), "theirs\n")
      << "destroy deleted a file driftless never created";
}

TEST(Flow, PausedDoesNothing) {
  Sandbox s;
  s.WriteProject();
  // Paused before it exists: not created.
  s.WriteRepoFile("p.yaml",
                  "kind: file.file\nname: p\nspec: {path: p.txt, content: \"v1\\n\"}\n"
                  "policy: {paused: true}\n");
  RunResult p0 = s.Run({"plan", "--detailed-exitcode"});
  EXPECT_EQ(p0.exit_code, 0) << Show(p0);
  RunResult a0 = s.Run({"apply", "--auto-approve"});
  EXPECT_EQ(a0.exit_code, 0) << Show(a0);
  EXPECT_FALSE(Exists(s.root() + "/p.txt"));

  // Created, then paused: neither a new declaration nor drift is acted on.
  s.WriteRepoFile("p.yaml", "kind: file.file\nname: p\nspec: {path: p.txt, content: \"v1\\n\"}\n");
  ASSERT_EQ(s.Run({"apply", "--auto-approve"}).exit_code, 0);
  s.WriteRepoFile("p.yaml",
                  "kind: file.file\nname: p\nspec: {path: p.txt, content: \"v2\\n\"}\n"
                  "policy: {paused: true}\n");
  RunResult p1 = s.Run({"plan", "--detailed-exitcode"});
  EXPECT_EQ(p1.exit_code, 0) << Show(p1);
  ASSERT_EQ(s.Run({"apply", "--auto-approve"}).exit_code, 0);
  EXPECT_EQ(ReadFile(s.root() + "/p.txt"), "v1\n");
  WriteFile(s.root() + "/p.txt", "manual\n");
  RunResult p2 = s.Run({"plan"});
  EXPECT_EQ(p2.exit_code, 0) << Show(p2);
  EXPECT_TRUE(Contains(p2.out, "file.file/p")) << "drift is still reported: " << p2.out;
  EXPECT_TRUE(Contains(p2.out, "1 drifted")) << p2.out;
  EXPECT_TRUE(HasLine(p2.out, "+  manual")) << p2.out;
  ASSERT_EQ(s.Run({"apply", "--auto-approve"}).exit_code, 0);
  EXPECT_EQ(ReadFile(s.root() + "/p.txt"), "manual\n");
}

// The contract: with --detailed-exitcode, exit 2 when changes or drift are present. A paused
// resource still reports its drift.
TEST(Flow, DriftOfAPausedResourceGivesExitCode2) {
  Sandbox s;
  s.WriteProject();
  s.WriteRepoFile("p.yaml", "kind: file.file\nname: p\nspec: {path: p.txt, content: \"v1\\n\"}\n");
  ASSERT_EQ(s.Run({"apply", "--auto-approve"}).exit_code, 0);
  s.WriteRepoFile("p.yaml",
                  "kind: file.file\nname: p\nspec: {path: p.txt, content: \"v1\\n\"}\n"
                  "policy: {paused: true}\n");
  WriteFile(s.root() + "/p.txt", "manual\n");
  RunResult p = s.Run({"plan", "--detailed-exitcode"});
  EXPECT_TRUE(Contains(p.out, "1 drifted")) << p.out;
  EXPECT_EQ(p.exit_code, 2) << "drift is present\n" << Show(p);
}

// ---------------------------------------------------------------------------------------------
// Failures, deletions, renames.

TEST(Flow, AFailureSkipsItsDependentsAndTheRestContinues) {
  Sandbox s;
  s.WriteProject();
  WriteFile(s.root() + "/blocker", "a regular file where a folder is needed\n");
  s.WriteRepoFile("f.yaml", R"(kind: file.file
name: bad
spec: {path: blocker/inner.txt, content: "x\n"}
---
kind: file.file
name: dep
spec: {path: dep.txt, content: "${file.file.bad.path}\n"}
---
kind: file.file
name: dep2
spec: {path: dep2.txt, content: "d2\n"}
depends_on: [file.file/dep]
---
kind: file.file
name: indep
spec: {path: indep.txt, content: "i\n"}
)");
  RunResult a = s.Run({"apply", "--auto-approve"});
  EXPECT_EQ(a.exit_code, 1) << Show(a);
  EXPECT_TRUE(Contains(a.out, "failed")) << a.out;
  EXPECT_TRUE(Contains(a.out, "1 created, 1 failed, 2 skipped")) << a.out;
  EXPECT_TRUE(Contains(a.err, "file.file/bad")) << a.err;
  EXPECT_TRUE(Contains(a.err, "blocker")) << a.err;
  EXPECT_TRUE(Contains(a.err, "file.file/dep: skipped")) << a.err;
  EXPECT_TRUE(Contains(a.err, "file.file/dep2: skipped")) << a.err;
  EXPECT_FALSE(Exists(s.root() + "/dep.txt"));
  EXPECT_FALSE(Exists(s.root() + "/dep2.txt"));
  EXPECT_EQ(ReadFile(s.root() + "/indep.txt"), "i\n");
  EXPECT_EQ(ReadFile(s.root() + "/blocker"), "a regular file where a folder is needed\n");

  RunResult h = s.Run({"history", "show", "1"});
  EXPECT_EQ(h.exit_code, 0) << Show(h);
  EXPECT_TRUE(Contains(h.out, "status:   failed")) << h.out;
  EXPECT_TRUE(Contains(h.out, "skipped")) << h.out;
  RunResult l = s.Run({"state", "list"});
  EXPECT_EQ(l.out, "file.file/indep\n");

  // Once the obstacle is gone, the next apply finishes the job.
  fs::remove(s.root() + "/blocker");
  RunResult a2 = s.Run({"apply", "--auto-approve"});
  EXPECT_EQ(a2.exit_code, 0) << Show(a2);
  EXPECT_EQ(ReadFile(s.root() + "/dep.txt"), "blocker/inner.txt\n");
  EXPECT_EQ(ReadFile(s.root() + "/dep2.txt"), "d2\n");
}

TEST(Flow, AResourceRemovedFromTheDeclarationsIsDeleted) {
  Sandbox s;
  s.WriteProject();
  s.WriteRepoFile("a.yaml", "kind: file.file\nname: a\nspec: {path: a.txt, content: \"a\\n\"}\n");
  s.WriteRepoFile("b.yaml", "kind: file.file\nname: b\nspec: {path: b.txt, content: \"b\\n\"}\n");
  ASSERT_EQ(s.Run({"apply", "--auto-approve"}).exit_code, 0);
  fs::remove(s.repo() + "/b.yaml");
  RunResult p = s.Run({"plan", "--detailed-exitcode"});
  EXPECT_EQ(p.exit_code, 2) << Show(p);
  EXPECT_TRUE(Contains(p.out, "- file.file/b")) << p.out;
  EXPECT_TRUE(Contains(p.out, "1 to delete")) << p.out;
  RunResult a = s.Run({"apply", "--auto-approve"});
  EXPECT_EQ(a.exit_code, 0) << Show(a);
  EXPECT_TRUE(Contains(a.out, "1 deleted")) << a.out;
  EXPECT_FALSE(Exists(s.root() + "/b.txt"));
  EXPECT_EQ(ReadFile(s.root() + "/a.txt"), "a\n");
  EXPECT_EQ(s.Run({"state", "list"}).out, "file.file/a\n");
}

TEST(Flow, MovedFromKeepsTheObject) {
  Sandbox s;
  s.WriteProject();
  s.WriteRepoFile("m.yaml", "kind: file.file\nname: old\nspec: {path: m.txt, content: \"m\\n\"}\n");
  ASSERT_EQ(s.Run({"apply", "--auto-approve"}).exit_code, 0);
  ino_t before = InodeOf(s.root() + "/m.txt");
  ASSERT_NE(before, 0u);
  s.WriteRepoFile("m.yaml",
                  "kind: file.file\nname: new\nmoved_from: old\n"
                  "spec: {path: m.txt, content: \"m\\n\"}\n");
  RunResult p = s.Run({"plan", "--detailed-exitcode"});
  EXPECT_EQ(p.exit_code, 2) << Show(p);
  EXPECT_TRUE(Contains(p.out, "moved from file.file/old")) << p.out;
  EXPECT_TRUE(Contains(p.out, "0 to create")) << p.out;
  EXPECT_TRUE(Contains(p.out, "0 to delete")) << p.out;
  RunResult a = s.Run({"apply", "--auto-approve"});
  EXPECT_EQ(a.exit_code, 0) << Show(a);
  EXPECT_FALSE(Contains(a.out, "deleted")) << a.out;
  EXPECT_FALSE(Contains(a.out, "created")) << a.out;
  EXPECT_EQ(InodeOf(s.root() + "/m.txt"), before) << "the object was deleted and created again";
  EXPECT_EQ(ReadFile(s.root() + "/m.txt"), "m\n");
  EXPECT_EQ(s.Run({"state", "list"}).out, "file.file/new\n");
  EXPECT_EQ(s.Run({"plan", "--detailed-exitcode"}).exit_code, 0);
}

// ---------------------------------------------------------------------------------------------
// History and state commands.

TEST(Flow, HistoryListsAppliesWithWhoAndShowsChanges) {
  Sandbox s;
  s.WriteProject();
  s.WriteRepoFile("a.yaml",
                  "kind: file.file\nname: app\nspec: {path: app.txt, content: \"one\\ntwo\\n\"}\n");
  ASSERT_EQ(s.Run({"apply", "--auto-approve"}).exit_code, 0);
  WriteFile(s.root() + "/app.txt", "one\nTWO\n");
  ASSERT_EQ(s.Run({"apply", "--auto-approve"}).exit_code, 0);
  const std::string who = CurrentIdentity().UserAtHost();

  RunResult h = s.Run({"history"});
  ASSERT_EQ(h.exit_code, 0) << Show(h);
  std::vector<std::string> rows;
  for (const auto& line : TrimmedLines(h.out))
    if (Contains(line, who)) rows.push_back(line);
  EXPECT_EQ(rows.size(), 2u) << "two applies by " << who << ":\n" << h.out;
  EXPECT_TRUE(Contains(h.out, "1 created")) << h.out;
  EXPECT_TRUE(Contains(h.out, "1 healed")) << h.out;
  EXPECT_TRUE(Contains(h.out, "succeeded")) << h.out;

  RunResult show = s.Run({"history", "show", "2"});
  ASSERT_EQ(show.exit_code, 0) << Show(show);
  EXPECT_TRUE(Contains(show.out, "who:      " + who)) << show.out;
  EXPECT_TRUE(Contains(show.out, "heal")) << show.out;
  EXPECT_TRUE(Contains(show.out, "file.file/app")) << show.out;
  EXPECT_TRUE(HasLine(show.out, "-  TWO")) << show.out;
  EXPECT_TRUE(HasLine(show.out, "+  two")) << show.out;

  RunResult json = s.Run({"history", "show", "1", "--json"});
  ASSERT_EQ(json.exit_code, 0) << Show(json);
  EXPECT_EQ(json.out.front(), '{') << json.out;
  EXPECT_TRUE(Contains(json.out, "\"actor\": \"" + who + "\"")) << json.out;

  RunResult missing = s.Run({"history", "show", "99"});
  EXPECT_EQ(missing.exit_code, 1) << Show(missing);
  EXPECT_TRUE(Contains(missing.err, "99")) << missing.err;
}

TEST(Flow, StateListShowRm) {
  Sandbox s;
  s.WriteProject();
  s.WriteRepoFile("a.yaml",
                  "kind: file.file\nname: a\nspec: {path: a.txt, content: \"a\\n\"}\n---\n"
                  "kind: file.file\nname: b\nspec: {path: b.txt, content: \"b\\n\"}\n");
  ASSERT_EQ(s.Run({"apply", "--auto-approve"}).exit_code, 0);

  RunResult l = s.Run({"state", "list"});
  EXPECT_EQ(l.exit_code, 0) << Show(l);
  EXPECT_EQ(l.out, "file.file/a\nfile.file/b\n");

  RunResult show = s.Run({"state", "show", "file.file/a"});
  EXPECT_EQ(show.exit_code, 0) << Show(show);
  EXPECT_TRUE(HasLine(show.out, "path: a.txt")) << show.out;
  EXPECT_TRUE(HasLine(show.out, "sha256: " + Sha256Hex("a\n"))) << show.out;
  RunResult nope = s.Run({"state", "show", "file.file/nope"});
  EXPECT_EQ(nope.exit_code, 1) << Show(nope);
  EXPECT_TRUE(Contains(nope.err, "file.file/nope")) << nope.err;

  RunResult rm = s.Run({"state", "rm", "file.file/a"});
  EXPECT_EQ(rm.exit_code, 0) << Show(rm);
  EXPECT_EQ(ReadFile(s.root() + "/a.txt"), "a\n") << "state rm leaves the object alone";
  EXPECT_EQ(s.Run({"state", "list"}).out, "file.file/b\n");
  RunResult p = s.Run({"plan", "--detailed-exitcode"});
  EXPECT_EQ(p.exit_code, 2) << Show(p);
  EXPECT_TRUE(Contains(p.out, "+ file.file/a")) << p.out;
  EXPECT_TRUE(Contains(p.out, "adopt")) << "it now exists unmanaged: " << p.out;
  RunResult rm_again = s.Run({"state", "rm", "file.file/a"});
  EXPECT_EQ(rm_again.exit_code, 1) << Show(rm_again);
}

// A reference to a computed attribute is known once its resource is applied, and the plan
// after that apply is clean.
TEST(Flow, ReferenceToAComputedAttributeResolves) {
  Sandbox s;
  s.WriteProject();
  s.WriteRepoFile("r.yaml", R"(kind: file.file
name: x
spec: {path: x.txt, content: "hello\n"}
---
kind: file.file
name: sum
spec: {path: sum.txt, content: "${file.file.x.sha256} ${file.file.x.size}\n"}
)");
  RunResult p = s.Run({"plan"});
  EXPECT_EQ(p.exit_code, 0) << Show(p);
  EXPECT_TRUE(Contains(p.out, "(known after apply)")) << p.out;
  RunResult a = s.Run({"apply", "--auto-approve"});
  ASSERT_EQ(a.exit_code, 0) << Show(a);
  EXPECT_EQ(ReadFile(s.root() + "/sum.txt"), Sha256Hex("hello\n") + " 6\n");
  RunResult clean = s.Run({"plan", "--detailed-exitcode"});
  EXPECT_EQ(clean.exit_code, 0) << "nothing changed since the apply\n" << Show(clean);

  // A change of the referenced file flows into the reference.
  s.WriteRepoFile("r.yaml", R"(kind: file.file
name: x
spec: {path: x.txt, content: "bye\n"}
---
kind: file.file
name: sum
spec: {path: sum.txt, content: "${file.file.x.sha256} ${file.file.x.size}\n"}
)");
  RunResult a2 = s.Run({"apply", "--auto-approve"});
  ASSERT_EQ(a2.exit_code, 0) << Show(a2);
  EXPECT_EQ(ReadFile(s.root() + "/sum.txt"), Sha256Hex("bye\n") + " 4\n");
  RunResult clean2 = s.Run({"plan", "--detailed-exitcode"});
  EXPECT_EQ(clean2.exit_code, 0) << "nothing changed since the apply\n" << Show(clean2);
}

// ---------------------------------------------------------------------------------------------
// Destroy and folders.

// A managed file inside a managed folder, with no depends_on between them: the path says the
// file must go first.
TEST(Flow, DestroyDeletesFilesBeforeTheFolderHoldingThem) {
  Sandbox s;
  s.WriteProject();
  fs::create_directories(s.root());
  s.WriteRepoFile("d.yaml", R"(kind: file.directory
name: etc
spec: {path: etc}
---
kind: file.file
name: app
spec: {path: etc/app.conf, content: "a\n"}
)");
  ASSERT_EQ(s.Run({"apply", "--auto-approve"}).exit_code, 0);
  RunResult d = s.Run({"destroy", "default", "--auto-approve"});
  EXPECT_EQ(d.exit_code, 0) << Show(d);
  EXPECT_EQ(Tree(s.root()), std::vector<std::string>{});
}

// Parent folders that driftless created for a file are its own work too: destroy removes them
// when they are empty.
TEST(Flow, DestroyRemovesTheParentFoldersItCreated) {
  Sandbox s;
  s.WriteProject();
  fs::create_directories(s.root());
  WriteFile(s.root() + "/keep/mine.txt", "mine\n");
  s.WriteRepoFile("d.yaml", R"(kind: file.file
name: deep
spec: {path: a/b/c.txt, content: "c\n"}
---
kind: file.file
name: near
spec: {path: keep/ours.txt, content: "o\n"}
)");
  ASSERT_EQ(s.Run({"apply", "--auto-approve"}).exit_code, 0);
  ASSERT_EQ(ReadFile(s.root() + "/a/b/c.txt"), "c\n");
  RunResult d = s.Run({"destroy", "default", "--auto-approve"});
  EXPECT_EQ(d.exit_code, 0) << Show(d);
  EXPECT_EQ(Tree(s.root()), (std::vector<std::string>{"keep", "keep/mine.txt"}));
}

// purge: true removes what is inside and not managed; the managed files inside stay.
TEST(Flow, PurgeKeepsTheManagedFilesInside) {
  Sandbox s;
  s.WriteProject();
  s.WriteRepoFile("d.yaml", R"(kind: file.directory
name: etc
spec: {path: etc, purge: true}
---
kind: file.file
name: app
spec: {path: etc/app.conf, content: "a\n"}
depends_on: [file.directory/etc]
)");
  ASSERT_EQ(s.Run({"apply", "--auto-approve"}).exit_code, 0);
  RunResult clean = s.Run({"plan", "--detailed-exitcode"});
  EXPECT_EQ(clean.exit_code, 0) << "nothing changed since the apply\n" << Show(clean);

  WriteFile(s.root() + "/etc/junk", "junk\n");
  RunResult p = s.Run({"plan", "--detailed-exitcode"});
  EXPECT_EQ(p.exit_code, 2) << Show(p);
  EXPECT_TRUE(Contains(p.out, "- junk")) << p.out;
  EXPECT_FALSE(Contains(p.out, "- app.conf")) << "a managed file is not unmanaged\n" << p.out;
  RunResult a = s.Run({"apply", "--auto-approve"});
  EXPECT_EQ(a.exit_code, 0) << Show(a);
  EXPECT_FALSE(Exists(s.root() + "/etc/junk"));
  EXPECT_EQ(ReadFile(s.root() + "/etc/app.conf"), "a\n") << "purge deleted a managed file";
  RunResult after = s.Run({"plan", "--detailed-exitcode"});
  EXPECT_EQ(after.exit_code, 0) << Show(after);
}

}  // namespace
}  // namespace driftless::test
