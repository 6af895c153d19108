// The examples of the documentation, run as written, so that they cannot rot.
//
// A markdown file marks the blocks to run with an HTML comment on the line before the fence:
//
//   <!-- doctest: file PATH -->   the block is the file PATH of the example, written as shown
//   <!-- doctest: run -->         the block is a console session, run in one shell
//
// Blocks run in document order in a fresh empty folder, with the driftless under test first on
// PATH, Git's identity set and every DRIFTLESS_* variable of the outer environment removed;
// each session is one shell (`cd` and `export` last until its end). In a session, `$ ` starts a
// command (a line ending in `\` continues it). The lines after it, up to the next command, are
// what it prints: each must be a line of its output (standard output and standard error
// together), in that order, other lines in between allowed. Runs of spaces count as one (none
// at either end), `<commit>` stands for a commit id, `<time>` for a UTC time, `<n>` for a
// number and `...` for any text. A command must exit with 0, or with N when its output ends
// with `(exit status N)`; the session stops at the first that does not. Absolute paths under
// /srv/ (where the examples' file targets write) are moved into the test's folder, in files,
// commands and outputs alike.

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "e2e/harness.h"

namespace driftless::test {
namespace {

const std::filesystem::path kSourceDir = DRIFTLESS_SOURCE_DIR;

// One marked block of a markdown file.
struct Block {
  bool is_file = false;  // else a session
  std::string path;      // for a file: where it goes in the example's folder
  std::string body;
  int line = 0;  // of the marker
};

// One command of a session with what it must print.
struct Command {
  std::string text;
  int line = 0;
  std::vector<std::string> expected;
  int exit_code = 0;
};

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

std::string Replace(std::string s, const std::string& from, const std::string& to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
    s.replace(at, from.size(), to);
  return s;
}

// The marked blocks of `doc`; a marker not followed by a fenced block fails the test.
std::vector<Block> MarkedBlocks(const std::string& doc) {
  const std::string text = ReadFile((kSourceDir / doc).string());
  EXPECT_FALSE(text.empty()) << "cannot read " << (kSourceDir / doc).string();
  const std::vector<std::string> lines = Lines(text);
  const std::regex marker(R"(^<!-- doctest: (run|file (\S+)) -->\s*$)");
  std::vector<Block> out;
  for (size_t i = 0; i < lines.size(); ++i) {
    std::smatch m;
    if (!std::regex_match(lines[i], m, marker)) {
      EXPECT_EQ(lines[i].find("doctest:"), std::string::npos)
          << doc << ":" << i + 1 << ": a malformed doctest marker: " << lines[i];
      continue;
    }
    Block b;
    b.line = static_cast<int>(i + 1);
    b.is_file = m[1].str() != "run";
    b.path = m[2].str();
    if (i + 1 >= lines.size() || lines[i + 1].rfind("```", 0) != 0) {
      ADD_FAILURE() << doc << ":" << b.line << ": a doctest marker must be followed by a fence";
      continue;
    }
    size_t j = i + 2;
    for (; j < lines.size() && lines[j] != "```"; ++j) b.body += lines[j] + "\n";
    if (j == lines.size()) ADD_FAILURE() << doc << ":" << b.line << ": the block is not closed";
    out.push_back(std::move(b));
    i = j;
  }
  return out;
}

std::vector<Command> Commands(const Block& b) {
  std::vector<Command> out;
  const std::regex exit_status(R"(^\(exit status ([0-9]+)\)\s*$)");
  bool continued = false;
  int line = b.line + 1;
  for (const std::string& l : Lines(b.body)) {
    ++line;
    std::smatch m;
    if (continued) {
      out.back().text += "\n" + l;
    } else if (l.rfind("$ ", 0) == 0) {
      out.push_back(Command{l.substr(2), line, {}, 0});
    } else if (out.empty()) {
      ADD_FAILURE() << "line " << line << ": output before the first command: " << l;
    } else if (std::regex_match(l, m, exit_status)) {
      out.back().exit_code = std::stoi(m[1].str());
    } else if (l.find_first_not_of(" \t") != std::string::npos) {
      out.back().expected.push_back(l);
    }
    continued = !out.empty() && !l.empty() && l.back() == '\\';
  }
  return out;
}

std::string Squeeze(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == ' ' || c == '\t') {
      if (!out.empty() && out.back() != ' ') out += ' ';  // and none at the start
    } else {
      out += c;
    }
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

// A quoted output line as a pattern over a squeezed line of output.
std::regex LinePattern(const std::string& expected) {
  static const std::vector<std::pair<std::string, std::string>> kHoles = {
      {"<commit>", "[0-9a-f]{7,40}"},
      {"<time>", "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z"},
      {"<n>", "[0-9]+"},
      {"...", ".*"}};
  const std::string s = Squeeze(expected);
  std::string re;
  for (size_t i = 0; i < s.size();) {
    bool hole = false;
    for (const auto& [text, pattern] : kHoles) {
      if (s.compare(i, text.size(), text) == 0) {
        re += pattern;
        i += text.size();
        hole = true;
        break;
      }
    }
    if (hole) continue;
    if (std::string("\\^$.|?*+()[]{}").find(s[i]) != std::string::npos) re += '\\';
    re += s[i++];
  }
  return std::regex(re);
}

// Runs the marked blocks of `doc`; returns how many commands ran.
int RunDoc(const std::string& doc) {
  const std::vector<Block> blocks = MarkedBlocks(doc);
  Sandbox box;
  const std::string srv = box.dir() + "/srv/";
  auto place = [&](const std::string& s) { return Replace(s, "/srv/", srv); };
  const std::string home = box.dir() + "/home";
  std::filesystem::create_directories(home);
  const std::string bin_dir = std::filesystem::path(DRIFTLESS_BIN).parent_path().string();

  // Every block in order: files are written at their place in the sequence, each session is
  // one shell script (so that `cd` and `export` last) that records each command's output and
  // exit status and stops at the first unexpected status.
  std::vector<Command> all;
  int ran = 0;
  for (size_t bi = 0; bi < blocks.size(); ++bi) {
    const Block& b = blocks[bi];
    if (b.is_file) {
      box.WriteRepoFile(b.path, place(b.body));
      continue;
    }
    std::vector<Command> commands = Commands(b);
    std::string script = "cd '" + box.repo() + "' || exit 1\n";
    const size_t first = all.size();
    for (size_t i = 0; i < commands.size(); ++i) {
      const std::string n = std::to_string(first + i);
      script += "{ " + place(commands[i].text) + "\n} >'" + box.dir() + "/out." + n +
                "' 2>&1 </dev/null\nrc=$?\necho $rc >'" + box.dir() + "/rc." + n +
                "'\n[ $rc = " + std::to_string(commands[i].exit_code) + " ] || exit 0\n";
      all.push_back(commands[i]);
    }
    std::ofstream(box.dir() + "/session.sh") << script;
    const std::string run =
        "env $(env | sed -n 's/^\\(DRIFTLESS_[A-Za-z0-9_]*\\)=.*/-u \\1/p') "
        "PATH='" +
        bin_dir + "':\"$PATH\" HOME='" + home +
        "' LC_ALL=C GIT_CONFIG_NOSYSTEM=1 GIT_AUTHOR_NAME=Dev GIT_AUTHOR_EMAIL=dev@example.com "
        "GIT_COMMITTER_NAME=Dev GIT_COMMITTER_EMAIL=dev@example.com "
        "DRIFTLESS_CACHE='" +
        box.dir() + "/cache' bash '" + box.dir() + "/session.sh'";
    int status = std::system(run.c_str());
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << doc << ": the shell failed";
    for (size_t i = first; i < all.size(); ++i) {
      const Command& c = all[i];
      const std::string n = std::to_string(i);
      const std::string where = doc + ":" + std::to_string(c.line) + ": $ " + c.text;
      const std::string rc = ReadFile(box.dir() + "/rc." + n);
      if (rc.empty()) {
        ADD_FAILURE() << where << "\nnot run: an earlier command failed";
        return ran;
      }
      ++ran;
      const std::string out = ReadFile(box.dir() + "/out." + n);
      if (std::stoi(rc) != c.exit_code) {
        ADD_FAILURE() << where << "\nexited with " << std::stoi(rc) << ", not " << c.exit_code
                      << "; its output:\n"
                      << out;
        return ran;
      }
      std::vector<std::string> got;
      for (const std::string& l : Lines(out)) got.push_back(Squeeze(l));
      size_t at = 0;
      for (const std::string& want : c.expected) {
        std::regex pattern = LinePattern(place(want));
        while (at < got.size() && !std::regex_match(got[at], pattern)) ++at;
        if (at == got.size()) {
          ADD_FAILURE() << where << "\ndoes not print (in this order): " << want
                        << "\nits output:\n"
                        << out;
          break;
        }
        ++at;
      }
    }
  }
  return ran;
}

// Every relative link of README.md and docs/*.md names a file or folder of the repository.
TEST(Docs, LinksNameFilesOfTheRepository) {
  std::vector<std::filesystem::path> docs = {kSourceDir / "README.md"};
  for (const auto& e : std::filesystem::directory_iterator(kSourceDir / "docs")) {
    if (e.path().extension() == ".md") docs.push_back(e.path());
  }
  const std::regex link(R"(\]\(([^)#\s]+)[^)]*\))");
  const std::string root = std::filesystem::weakly_canonical(kSourceDir).string() + "/";
  int links = 0;
  for (const auto& doc : docs) {
    const std::string text = ReadFile(doc.string());
    for (auto it = std::sregex_iterator(text.begin(), text.end(), link);
         it != std::sregex_iterator(); ++it) {
      const std::string target = (*it)[1].str();
      if (target.find("://") != std::string::npos || target.rfind("mailto:", 0) == 0) continue;
      ++links;
      const std::filesystem::path p = std::filesystem::weakly_canonical(doc.parent_path() / target);
      EXPECT_EQ(p.string().rfind(root, 0), 0u) << doc << ": " << target << " is outside";
      EXPECT_TRUE(std::filesystem::exists(p)) << doc << ": " << target << " does not exist";
    }
  }
  EXPECT_GT(links, 20);
}

// Each document's example has at least this many commands: a marker lost in an edit fails.
TEST(Docs, GitWorkflowWorkedExampleRunsAsWritten) { EXPECT_GE(RunDoc("docs/git-workflow.md"), 20); }

TEST(Docs, ReferenceSessionRunsAsWritten) { EXPECT_GE(RunDoc("docs/reference.md"), 12); }

TEST(Docs, ConfigurationExampleRunsAsWritten) { EXPECT_GE(RunDoc("docs/configuration.md"), 4); }

TEST(Docs, ReadmeRepositoryRunsAsWritten) { EXPECT_GE(RunDoc("README.md"), 7); }

}  // namespace
}  // namespace driftless::test
