#include "e2e/harness.h"

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "support/postgres.h"
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

std::string StateBytes(const Sandbox& s) {
  return ReadFile(s.state()) + ReadFile(s.state() + "-wal") + ReadFile(s.state() + "-shm") +
         ReadFile(s.state() + "-journal");
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

bool Exited(int pid) {
  siginfo_t info{};
  return waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
         info.si_pid != 0;
}

Json ParseJsonOrFail(const std::string& text, const std::string& what) {
  Json j;
  if (!ReadJson(text, &j)) {
    ADD_FAILURE() << what << " is not valid JSON: " << text.substr(0, 2000);
    return Json();
  }
  return j;
}

std::string Summary(const RunResult& r) {
  return "exit " + std::to_string(r.exit_code) + "\nstdout:\n" + r.out.substr(0, 3000) +
         "\nstderr:\n" + r.err.substr(0, 3000);
}

PgSandbox::PgSandbox() : dsn_(CreateTestDatabase("dl_e2e")), uri_(ToUri(dsn_)) {}

RunResult PgSandbox::Pg(std::vector<std::string> args, const std::vector<std::string>& env) const {
  args.insert(args.end(), {"--state", uri_});
  return Run(args, env);
}

Proc Spawn(const Sandbox& s, std::vector<std::string> args, const std::string& tag) {
  Proc p;
  p.out_path = s.dir() + "/" + tag + ".out";
  p.err_path = s.dir() + "/" + tag + ".err";
  args.insert(args.begin(), DRIFTLESS_BIN);
  args.insert(args.end(), {"--dir", s.repo(), "--state", s.StateLocation()});
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    int in = open("/dev/null", O_RDONLY);
    int out = open(p.out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int err = open(p.err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (in < 0 || out < 0 || err < 0) _exit(126);
    dup2(in, 0);
    dup2(out, 1);
    dup2(err, 2);
    execv(argv[0], argv.data());
    _exit(127);
  }
  p.pid = pid;
  return p;
}

std::vector<Json> History(const Sandbox& s, const std::string& env) {
  RunResult r = s.Run({"history", env, "--json", "--limit", "1000", "--state", s.StateLocation()});
  EXPECT_EQ(r.exit_code, 0) << Summary(r);
  std::vector<Json> items = ParseJsonOrFail(r.out, "history --json").items;
  std::sort(items.begin(), items.end(),
            [](const Json& a, const Json& b) { return a.Int("id") < b.Int("id"); });
  return items;
}

void ExpectSerialised(const std::vector<Json>& applies, int files) {
  std::set<int64_t> pids;
  for (size_t i = 0; i < applies.size(); ++i) {
    const Json& a = applies[i];
    pids.insert(a.Int("pid"));
    EXPECT_EQ(a.Str("status"), "succeeded") << "apply #" << a.Int("id");
    EXPECT_EQ(a.Str("summary"), std::to_string(files) + (i == 0 ? " created" : " updated"))
        << "apply #" << a.Int("id");
    if (i > 0) {
      EXPECT_GE(a.Str("started_at"), applies[i - 1].Str("finished_at"))
          << "apply #" << a.Int("id") << " started before #" << applies[i - 1].Int("id")
          << " finished";
    }
  }
  EXPECT_EQ(pids.size(), applies.size()) << "one apply per process";
}

namespace {

std::string GenerationPath(const GenerationRepo& repo, int i) {
  std::string name = "f" + std::to_string(i) + ".txt";
  return repo.grouped ? "g" + std::to_string(i % 16) + "/" + name : name;
}

std::string GenerationContent(int i, const std::string& gen) {
  return "generation " + gen + " of f" + std::to_string(i) + "\n";
}

}  // namespace

void WriteGenerationRepo(const Sandbox& s, const GenerationRepo& repo, const std::string& root) {
  s.WriteRepoFile(
      "driftless.yaml",
      "project: test\nvars:\n  gen: \"0\"\ntargets:\n  host: {provider: file, root: \"" + root +
          "\"}\n");
  std::string docs;
  for (int i = 0; i < repo.count; ++i) {
    if (i) docs += "---\n";
    docs += "kind: file.file\nname: f" + std::to_string(i) + "\nspec: {path: \"" +
            GenerationPath(repo, i) + "\", content: \"generation ${var.gen} of f" +
            std::to_string(i) + "\\n\"}\n";
    if (repo.chained && i % 8 != 0) {
      docs += "depends_on: [file.file/f" + std::to_string(i - 1) + "]\n";
    }
  }
  s.WriteRepoFile("files.yaml", docs);
}

int WrongFiles(const std::string& dir, const GenerationRepo& repo, const std::string& gen) {
  int wrong = 0;
  for (int i = 0; i < repo.count; ++i) {
    std::string path = dir + "/" + GenerationPath(repo, i);
    if (!Exists(path) || ReadFile(path) != GenerationContent(i, gen)) ++wrong;
  }
  return wrong;
}

std::string BackgroundFile(const Sandbox& s, const std::string& suffix) {
  std::string found;
  if (DIR* d = opendir(s.dir().c_str())) {
    while (dirent* e = readdir(d)) {
      std::string n = e->d_name;
      if (n.rfind(".bg", 0) == 0 && n.size() > suffix.size() &&
          n.compare(n.size() - suffix.size(), suffix.size(), suffix) == 0)
        found = s.dir() + "/" + n;
    }
    closedir(d);
  }
  return found;
}

std::string BackgroundOutput(const Sandbox& s) { return ReadFile(BackgroundFile(s, ".out")); }

size_t CountOf(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

bool WaitForOutput(const Sandbox& s, const std::string& needle, size_t times) {
  for (int i = 0; i < 200; ++i) {
    if (CountOf(BackgroundOutput(s), needle) >= times) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

}  // namespace driftless::test
