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

#include "value/value.h"

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

const Json* Json::Find(std::string_view key) const {
  for (const auto& [k, v] : fields)
    if (k == key) return &v;
  return nullptr;
}

std::string Json::Str(std::string_view key) const {
  const Json* v = Find(key);
  return v != nullptr && v->type == Type::kString ? v->text : std::string();
}

int64_t Json::Int(std::string_view key) const {
  const Json* v = Find(key);
  return v != nullptr && v->type == Type::kNumber ? static_cast<int64_t>(v->number) : -1;
}

bool Json::Bool(std::string_view key) const {
  const Json* v = Find(key);
  return v != nullptr && v->type == Type::kBool && v->boolean;
}

bool Json::IsNull(std::string_view key) const {
  const Json* v = Find(key);
  return v == nullptr || v->type == Type::kNull;
}

namespace {

Json FromValue(const value::Value& v) {
  Json j;
  switch (v.type()) {
    case value::Value::Type::kBool:
      j.type = Json::Type::kBool;
      j.boolean = v.as_bool();
      break;
    case value::Value::Type::kInt:
    case value::Value::Type::kDouble:
      j.type = Json::Type::kNumber;
      j.number = v.as_double();
      break;
    case value::Value::Type::kString:
      j.type = Json::Type::kString;
      j.text = v.as_string();
      break;
    case value::Value::Type::kList:
      j.type = Json::Type::kArray;
      for (const auto& item : v.as_list()) j.items.push_back(FromValue(item));
      break;
    case value::Value::Type::kObject:
      j.type = Json::Type::kObject;
      for (const auto& [k, item] : v.as_object()) j.fields.emplace_back(k, FromValue(item));
      break;
    default:
      break;
  }
  return j;
}

}  // namespace

bool ReadJson(std::string_view text, Json* out) {
  Result<value::Value> v = value::ParseJson(text);
  if (!v.ok()) return false;
  *out = FromValue(*v);
  return true;
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
