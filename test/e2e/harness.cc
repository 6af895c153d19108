#include "e2e/harness.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace driftless::test {

Sandbox::Sandbox() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "driftless-e2e.XXXXXX").string();
  char* made = mkdtemp(tmpl.data());
  if (made == nullptr) std::abort();
  dir_ = made;
  std::filesystem::create_directories(repo());
}

Sandbox::~Sandbox() {
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

void Sandbox::WriteRepoFile(const std::string& rel, const std::string& content) const {
  std::filesystem::path p = std::filesystem::path(repo()) / rel;
  std::filesystem::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary | std::ios::trunc) << content;
}

void Sandbox::WriteProject(const std::string& extra) const {
  WriteRepoFile("driftless.yaml", "project: test\ntargets:\n  host: {provider: file, root: \"" +
                                      root() + "\"}\n" + extra);
}

namespace {

std::vector<std::string> FullArgs(const Sandbox& s, const std::vector<std::string>& args) {
  std::vector<std::string> all = {DRIFTLESS_BIN};
  all.insert(all.end(), args.begin(), args.end());
  if (args.empty() || args[0][0] == '-') return all;  // top-level flags (--version, --help)
  bool has_dir = false, has_state = false;
  for (const auto& a : args) {
    has_dir |= a == "--dir";
    has_state |= a == "--state";
  }
  // Global flags belong to the (innermost) subcommand: append them at the end.
  if (!has_dir) all.insert(all.end(), {"--dir", s.repo()});
  if (!has_state) all.insert(all.end(), {"--state", s.state()});
  return all;
}

[[noreturn]] void Exec(const std::vector<std::string>& args, const std::vector<std::string>& env) {
  for (const auto& e : env) putenv(strdup(e.c_str()));
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  execv(argv[0], argv.data());
  _exit(127);
}

}  // namespace

RunResult Sandbox::Run(const std::vector<std::string>& args, const std::vector<std::string>& env,
                       const std::string& stdin_text) const {
  std::string out_path = dir_ + "/.run.out", err_path = dir_ + "/.run.err",
              in_path = dir_ + "/.run.in";
  std::ofstream(in_path, std::ios::trunc) << stdin_text;
  std::vector<std::string> all = FullArgs(*this, args);
  pid_t pid = fork();
  if (pid == 0) {
    int in = open(in_path.c_str(), O_RDONLY);
    int out = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int err = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(in, 0);
    dup2(out, 1);
    dup2(err, 2);
    Exec(all, env);
  }
  RunResult r;
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
  r.out = ReadFile(out_path);
  r.err = ReadFile(err_path);
  return r;
}

int Sandbox::Start(const std::vector<std::string>& args,
                   const std::vector<std::string>& env) const {
  std::vector<std::string> all = FullArgs(*this, args);
  static int counter = 0;
  std::string base = dir_ + "/.bg" + std::to_string(++counter);
  pid_t pid = fork();
  if (pid == 0) {
    int in = open("/dev/null", O_RDONLY);
    int out = open((base + ".out").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int err = open((base + ".err").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(in, 0);
    dup2(out, 1);
    dup2(err, 2);
    Exec(all, env);
  }
  return pid;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool Exists(const std::string& path) {
  struct stat st {};
  return lstat(path.c_str(), &st) == 0;
}

int ModeOf(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return -1;
  return static_cast<int>(st.st_mode & 07777);
}

int Wait(int pid) {
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return -WTERMSIG(status);
  return -1000;
}

}  // namespace driftless::test
