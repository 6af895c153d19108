// Declaration errors through the real binary: each class exits 1, names file:line:col, says
// what to do, and touches nothing (no target root, no state file), with `validate` and `plan`.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "e2e/harness.h"

namespace driftless::test {
namespace {

bool Contains(const std::string& text, const std::string& needle) {
  return text.find(needle) != std::string::npos;
}

std::string Show(const RunResult& r) {
  return "exit " + std::to_string(r.exit_code) + "\n--- stdout\n" + r.out + "--- stderr\n" + r.err;
}

// The line of `text` that starts with `prefix`, or "" (with found = false).
std::string LineStartingWith(const std::string& text, const std::string& prefix, bool& found) {
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    std::string line = text.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
    if (line.rfind(prefix, 0) == 0) {
      found = true;
      return line;
    }
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
  found = false;
  return "";
}

// One expected diagnostic: the line starts with `at` ("file:line:col: error: ") and contains
// every fragment of `says` (what is wrong, what to do).
struct Expected {
  std::string at;
  std::vector<std::string> says;
};

// Runs `validate` and `plan`: each exits 1, prints every expected diagnostic (and `count` of
// them in all), and creates neither the target root nor the state.
void ExpectRejected(const Sandbox& s, const std::vector<Expected>& expected, size_t count) {
  for (const char* command : {"validate", "plan"}) {
    SCOPED_TRACE(std::string("driftless ") + command);
    RunResult r = s.Run({command});
    EXPECT_EQ(r.exit_code, 1) << Show(r);
    for (const Expected& e : expected) {
      bool found = false;
      std::string line = LineStartingWith(r.err, e.at, found);
      EXPECT_TRUE(found) << "no diagnostic at \"" << e.at << "\"\n" << r.err;
      if (!found) continue;
      for (const std::string& fragment : e.says) {
        EXPECT_TRUE(Contains(line, fragment)) << "\"" << fragment << "\" missing from: " << line;
      }
    }
    std::string total =
        std::to_string(count) + (count == 1 ? " error" : " errors") + "; nothing was changed.";
    EXPECT_TRUE(Contains(r.err, total)) << "expected \"" << total << "\"\n" << r.err;
    EXPECT_FALSE(Contains(r.out, "Valid:")) << r.out;
    EXPECT_FALSE(Exists(s.root())) << command << " created the target root";
    EXPECT_FALSE(Exists(s.state())) << command << " created the state file " << s.state();
    EXPECT_FALSE(Exists(s.state() + "-wal")) << command << " created the state's WAL file";
    EXPECT_FALSE(Exists(s.repo() + "/.driftless"))
        << command << " created the default state folder";
  }
}

constexpr const char* kValid = "kind: file.file\nname: ok\nspec: {path: ok.txt, content: ok}\n";

// ---------------------------------------------------------------------------------------------
// One class at a time.

TEST(Errors, BadYaml) {
  Sandbox s;
  s.WriteProject();
  s.WriteRepoFile("infra/a.yaml",
                  "kind: file.file\nname: y\nspec:\n  path: y.txt\n content: bad\n");
  ExpectRejected(s, {{"infra/a.yaml:5:2: error: ", {"did not find expected key"}}}, 1);
}

TEST(Errors, BadYamlInTheProjectFile) {
  Sandbox s;
  s.WriteProject("vars: {a: [1, 2}\n");
  s.WriteRepoFile("infra/ok.yaml", kValid);
  ExpectRejected(s, {{"driftless.yaml:4:16: error: ", {"did not find expected ',' or ']'"}}}, 1);
}

TEST(Errors, UnknownKind) {
  Sandbox s;
  s.WriteProject();
  s.WriteRepoFile("infra/a.yaml", "kind: file.fiel\nname: b\nspec: {path: b.txt, content: b}\n");
  ExpectRejected(s,
                 {{"infra/a.yaml:1:7: error: ",
                   {"unknown kind \"file.fiel\"", "did you mean \"file.file\"?"}}},
                 1);
}

TEST(Errors, UnknownField) {
  Sandbox s;
  s.WriteProject();
  s.WriteRepoFile("infra/a.yaml",
                  "kind: file.file\nname: a\nspec:\n  path: a.txt\n  contnet: \"x\"\n");
  s.WriteRepoFile(
      "infra/b.yaml",
      "kind: file.file\nname: b\nspec: {path: b.txt, content: b}\ndependson: [file.file/a]\n");
  ExpectRejected(s,
                 {{"infra/a.yaml:5:13: error: ",
                   {"unknown field \"contnet\"", "file.file/a", "did you mean \"content\"?"}},
                  {"infra/b.yaml:4:12: error: ",
                   {"unknown key \"dependson\"", "did you mean \"depends_on\"?"}}},
                 2);
}

TEST(Errors, WrongType) {
  Sandbox s;
  s.WriteProject();
  s.WriteRepoFile(
      "infra/a.yaml",
      "kind: file.file\nname: c\nspec:\n  path: [1, 2]\n  content: x\npolicy: {adopt: \"yes\"}\n");
  ExpectRejected(s,
                 {{"infra/a.yaml:4:9: error: ", {"spec.path", "must be a string", "not a list"}},
                  {"infra/a.yaml:6:18: error: ", {"policy.adopt", "true or false"}}},
                 2);
}

TEST(Errors, MissingVariable) {
  Sandbox s;
  s.WriteProject();
  s.WriteRepoFile(
      "infra/a.yaml",
      "kind: file.file\nname: a\nspec:\n  path: a.txt\n  content: prefix-${var.nope}\n");
  ExpectRejected(s,
                 {{"infra/a.yaml:5:19: error: ",
                   {"unknown variable ${var.nope}", "declare it under `vars:`"}}},
                 1);
}

// In a quoted string the column is that of the "${", past the opening quote.
TEST(Errors, ColumnOfAnExpressionInAQuotedString) {
  Sandbox s;
  s.WriteProject();
  s.WriteRepoFile("infra/a.yaml",
                  "kind: file.file\nname: a\nspec:\n  path: a.txt\n  content: \"v=${var.nope}\"\n");
  ExpectRejected(s, {{"infra/a.yaml:5:15: error: ", {"unknown variable ${var.nope}"}}}, 1);
}

// The error points at the reference, as it does for ${var.X}.
TEST(Errors, MissingResourceReference) {
  Sandbox s;
  s.WriteProject();
  s.WriteRepoFile(
      "infra/a.yaml",
      "kind: file.file\nname: b\nspec:\n  path: b.txt\n  content: ref-${file.file.nope.path}\n");
  ExpectRejected(s, {{"infra/a.yaml:5:16: error: ", {"${file.file.nope.path}", "file.file/nope"}}},
                 1);
}

// The error points at the depends_on entry that names nothing.
TEST(Errors, MissingDependsOn) {
  Sandbox s;
  s.WriteProject();
  s.WriteRepoFile("infra/a.yaml",
                  "kind: file.file\nname: a\nspec: {path: a.txt, content: a}\n"
                  "depends_on:\n  - file.file/missing\n");
  ExpectRejected(s, {{"infra/a.yaml:5:5: error: ", {"file.file/missing", "not declared"}}}, 1);
}

TEST(Errors, DuplicateAcrossTwoFiles) {
  Sandbox s;
  s.WriteProject();
  s.WriteRepoFile("infra/a.yaml", "kind: file.file\nname: x\nspec: {path: x.txt, content: x}\n");
  s.WriteRepoFile("infra/b.yaml",
                  "# the same again\nkind: file.file\nname: x\nspec: {path: y.txt, content: y}\n");
  ExpectRejected(s,
                 {{"infra/b.yaml:2:7: error: ",
                   {"duplicate resource file.file/x", "infra/a.yaml:1:7", "must be unique"}}},
                 1);
}

TEST(Errors, DependencyCycle) {
  Sandbox s;
  s.WriteProject();
  s.WriteRepoFile("infra/a.yaml", R"(kind: file.file
name: a
spec: {path: a.txt, content: "${file.file.b.path}"}
---
kind: file.file
name: b
spec: {path: b.txt, content: b}
depends_on: [file.file/a]
)");
  ExpectRejected(
      s,
      {{"infra/a.yaml:1:7: error: ",
        {"dependency cycle: file.file/a -> file.file/b -> file.file/a", "break the cycle"}}},
      1);
}

TEST(Errors, PathEscapingTheRoot) {
  Sandbox s;
  s.WriteProject();
  s.WriteRepoFile("infra/a.yaml", R"(kind: file.file
name: up
spec: {path: ../x, content: x}
---
kind: file.file
name: abs
spec: {path: /etc/x, content: x}
---
kind: file.file
name: sneaky
spec: {path: a/../../x, content: x}
)");
  ExpectRejected(
      s,
      {{"infra/a.yaml:3:14: error: ", {"file.file/up", "\"../x\"", "escapes the target root"}},
       {"infra/a.yaml:7:14: error: ",
        {"file.file/abs", "\"/etc/x\"", "absolute", "relative to the target root"}},
       {"infra/a.yaml:11:14: error: ",
        {"file.file/sneaky", "\"a/../../x\"", "escapes the target root"}}},
      3);
}

TEST(Errors, UnknownTarget) {
  Sandbox s;
  s.WriteProject();
  s.WriteRepoFile("infra/a.yaml",
                  "kind: file.file\nname: e\ntarget: hots\nspec: {path: e.txt, content: e}\n");
  ExpectRejected(
      s, {{"infra/a.yaml:3:9: error: ", {"unknown target \"hots\"", "did you mean \"host\"?"}}}, 1);
}

TEST(Errors, MissingRequiredField) {
  Sandbox s;
  s.WriteProject();
  s.WriteRepoFile("infra/a.yaml", "kind: file.file\nname: f\nspec: {content: f}\n");
  s.WriteRepoFile("infra/b.yaml", "kind: file.symlink\nname: l\nspec: {path: l}\n");
  ExpectRejected(
      s,
      {{"infra/a.yaml:3:7: error: ", {"file.file/f", "missing required field spec.path"}},
       {"infra/b.yaml:3:7: error: ", {"file.symlink/l", "missing required field spec.target"}}},
      2);
}

TEST(Errors, UnknownTopLevelKeyInTheProjectFile) {
  Sandbox s;
  s.WriteProject("varz: {a: 1}\n");
  s.WriteRepoFile("infra/ok.yaml", kValid);
  ExpectRejected(
      s, {{"driftless.yaml:4:7: error: ", {"unknown key \"varz\"", "did you mean \"vars\"?"}}}, 1);
}

TEST(Errors, MissingProjectFile) {
  Sandbox s;
  s.WriteRepoFile("infra/ok.yaml", kValid);
  ExpectRejected(s, {{"driftless.yaml: error: ", {"no driftless.yaml", "--dir"}}}, 1);
}

TEST(Errors, ValidateJsonGivesPositions) {
  Sandbox s;
  s.WriteProject();
  s.WriteRepoFile("infra/a.yaml", "kind: file.fiel\nname: b\nspec: {path: b.txt, content: b}\n");
  RunResult r = s.Run({"validate", "--json"});
  EXPECT_EQ(r.exit_code, 1) << Show(r);
  ASSERT_FALSE(r.out.empty()) << Show(r);
  EXPECT_EQ(r.out.front(), '{') << r.out;
  EXPECT_TRUE(Contains(r.out, "\"valid\": false")) << r.out;
  EXPECT_TRUE(Contains(r.out, "\"file\": \"infra/a.yaml\"")) << r.out;
  EXPECT_TRUE(Contains(r.out, "\"line\": 1")) << r.out;
  EXPECT_TRUE(Contains(r.out, "\"column\": 7")) << r.out;
  EXPECT_FALSE(Exists(s.state()));
}

// ---------------------------------------------------------------------------------------------
// Every error of a run, together.

// One file per problem found while reading the declarations.
void WriteDeclarationErrors(const Sandbox& s) {
  s.WriteProject("varz: {a: 1}\n");  // 4:7
  s.WriteRepoFile("infra/yaml.yaml",
                  "kind: file.file\nname: y\nspec:\n  path: y.txt\n content: bad\n");
  s.WriteRepoFile("infra/kind.yaml", "kind: file.fiel\nname: k\nspec: {path: k.txt, content: k}\n");
  s.WriteRepoFile("infra/field.yaml",
                  "kind: file.file\nname: f\nspec:\n  path: f.txt\n  contnet: \"x\"\n");
  s.WriteRepoFile("infra/type.yaml",
                  "kind: file.file\nname: t\nspec:\n  path: [1, 2]\n  content: x\n");
  s.WriteRepoFile("infra/target.yaml",
                  "kind: file.file\nname: g\ntarget: hots\nspec: {path: g.txt, content: g}\n");
  s.WriteRepoFile("infra/required.yaml", "kind: file.file\nname: r\nspec: {content: r}\n");
  s.WriteRepoFile("infra/dup1.yaml",
                  "kind: file.file\nname: dup\nspec: {path: d1.txt, content: d}\n");
  s.WriteRepoFile("infra/dup2.yaml",
                  "# again\nkind: file.file\nname: dup\nspec: {path: d2.txt, content: d}\n");
}

const std::vector<Expected>& DeclarationErrors() {
  static const std::vector<Expected> errors = {
      {"driftless.yaml:4:7: error: ", {"unknown key \"varz\""}},
      {"infra/yaml.yaml:5:2: error: ", {"did not find expected key"}},
      {"infra/kind.yaml:1:7: error: ", {"unknown kind \"file.fiel\""}},
      {"infra/field.yaml:5:13: error: ", {"unknown field \"contnet\""}},
      {"infra/type.yaml:4:9: error: ", {"spec.path", "must be a string"}},
      {"infra/target.yaml:3:9: error: ", {"unknown target \"hots\""}},
      {"infra/required.yaml:3:7: error: ", {"missing required field spec.path"}},
      {"infra/dup2.yaml:2:7: error: ", {"duplicate resource file.file/dup", "infra/dup1.yaml:1:7"}},
  };
  return errors;
}

TEST(Errors, AllDeclarationErrorsReportedTogether) {
  Sandbox s;
  WriteDeclarationErrors(s);
  s.WriteRepoFile("infra/ok.yaml", kValid);
  ExpectRejected(s, DeclarationErrors(), DeclarationErrors().size());
}

// Every class at once, in several files: problems found while reading the files and problems
// found while evaluating them are all printed by one run.
TEST(Errors, EveryErrorOfARunReportedTogether) {
  Sandbox s;
  WriteDeclarationErrors(s);
  s.WriteRepoFile(
      "infra/var.yaml",
      "kind: file.file\nname: v\nspec:\n  path: v.txt\n  content: prefix-${var.nope}\n");
  s.WriteRepoFile(
      "infra/ref.yaml",
      "kind: file.file\nname: rf\nspec:\n  path: rf.txt\n  content: ref-${file.file.nope.path}\n");
  s.WriteRepoFile("infra/escape.yaml",
                  "kind: file.file\nname: up\nspec: {path: ../x, content: x}\n");
  s.WriteRepoFile("infra/cycle.yaml", R"(kind: file.file
name: ca
spec: {path: ca.txt, content: "${file.file.cb.path}"}
---
kind: file.file
name: cb
spec: {path: cb.txt, content: cb}
depends_on: [file.file/ca]
)");
  s.WriteRepoFile("infra/deps.yaml",
                  "kind: file.file\nname: dp\nspec: {path: dp.txt, content: d}\n"
                  "depends_on:\n  - file.file/missing\n");
  std::vector<Expected> all = DeclarationErrors();
  all.push_back({"infra/var.yaml:5:19: error: ", {"unknown variable ${var.nope}"}});
  all.push_back({"infra/ref.yaml:5:16: error: ", {"file.file/nope"}});
  all.push_back({"infra/escape.yaml:3:14: error: ", {"\"../x\"", "escapes the target root"}});
  all.push_back({"infra/cycle.yaml:1:7: error: ",
                 {"dependency cycle: file.file/ca -> file.file/cb -> file.file/ca"}});
  all.push_back({"infra/deps.yaml:5:5: error: ", {"file.file/missing"}});
  ExpectRejected(s, all, all.size());
}

}  // namespace
}  // namespace driftless::test
