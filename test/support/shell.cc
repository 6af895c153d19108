#include "support/shell.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <vector>

namespace driftless::test {

std::string Sh(const std::string& command) {
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) {
    ADD_FAILURE() << "cannot run " << command;
    return "";
  }
  std::string out;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof buf, pipe)) out.append(buf, n);
  int rc = pclose(pipe);
  EXPECT_EQ(rc, 0) << command << "\n" << out;
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

std::string GitTestDir(const std::string& prefix) {
  setenv("GIT_CONFIG_NOSYSTEM", "1", 1);
  setenv("GIT_CONFIG_GLOBAL", "/dev/null", 1);
  const std::string pattern =
      (std::filesystem::temp_directory_path() / (prefix + ".XXXXXX")).string();
  std::vector<char> tmpl(pattern.begin(), pattern.end());
  tmpl.push_back('\0');
  if (mkdtemp(tmpl.data()) == nullptr) {
    ADD_FAILURE() << "cannot make a folder like " << pattern;
    return "";
  }
  return std::filesystem::canonical(tmpl.data()).string();
}

std::string GitIn(const std::string& repo, const std::string& args) {
  return Sh("git -C '" + repo +
            "' -c user.name=Dev -c user.email=dev@example.com -c init.defaultBranch=main " + args);
}

void WriteIn(const std::string& repo, const std::string& rel, const std::string& content) {
  const std::filesystem::path path = std::filesystem::path(repo) / rel;
  std::error_code ec;
  std::filesystem::create_directories(path.parent_path(), ec);
  ASSERT_FALSE(ec) << "cannot make " << path.parent_path() << ": " << ec.message();
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  out.close();
  ASSERT_TRUE(out.good()) << "cannot write " << path;
}

std::string CommitIn(const std::string& repo, const std::string& message) {
  GitIn(repo, "add -A");
  GitIn(repo, "commit -q -m '" + message + "'");
  return GitIn(repo, "rev-parse HEAD");
}

size_t OpenDescriptors() {
  size_t n = 0;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
    (void)entry;
    ++n;
  }
  return n;
}

}  // namespace driftless::test
