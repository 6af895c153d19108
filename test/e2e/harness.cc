#include "e2e/harness.h"

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>
#include <thread>

#include "server/http/testing/raw_client.h"
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

void GitIn(const Sandbox& box, const std::string& dir, const std::string& args) {
  std::string cmd = "cd '" + dir + "' && env GIT_CONFIG_NOSYSTEM=1 HOME='" + box.dir() +
                    "' git -c user.name=Dev -c user.email=dev@example.com "
                    "-c init.defaultBranch=main " +
                    args + " >/dev/null 2>&1";
  int rc = std::system(cmd.c_str());
  ASSERT_TRUE(WIFEXITED(rc) && WEXITSTATUS(rc) == 0) << "git " << args;
}

void ServeFixture::TearDown() {
  if (proc_.pid > 0 && !Exited(proc_.pid)) kill(proc_.pid, SIGKILL);
  if (proc_.pid > 0) Wait(proc_.pid);
}

void ServeFixture::WriteApp(const std::string& content) {
  box_.WriteRepoFile(
      "app.yaml", "kind: file.file\nname: app\ntarget: host\nspec: {path: app.conf, content: \"" +
                      content + "\"}\n");
}

void ServeFixture::CommitFirst(const std::string& environments, const std::string& extra) {
  box_.WriteRepoFile("driftless.yaml", "project: shop\nenvironments:\n" + environments +
                                           "targets:\n  host: {provider: file, root: \"" +
                                           box_.root() + "/${env}\"}\n" + extra);
  Git(box_.repo(), "init -q");
  Git(box_.repo(), "add -A");
  Git(box_.repo(), "commit -q -m one");
  // The server follows a bare copy reached by file://, as it would a remote.
  Git(box_.dir(), "clone -q --bare repo origin.git");
}

bool ServeFixture::ErrHas(const std::string& needle, size_t times) {
  return PollUntil([&] { return CountOf(proc_.Err(), needle) >= times; });
}

std::string ServeFixture::Token(const std::string& role, const std::string& name,
                                const std::string& envs) {
  RunResult r = box_.Run({"token", "create", "--role", role, "--name", name, "--envs", envs});
  EXPECT_EQ(r.exit_code, 0) << Summary(r);
  std::string out = r.out;
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out.substr(out.rfind('\n') == std::string::npos ? 0 : out.rfind('\n') + 1);
}

HttpReply ApiCall(uint16_t port, const std::string& method, const std::string& target,
                  const std::string& token, const std::string& body) {
  std::vector<std::string> headers;
  if (!token.empty()) headers.push_back("Authorization: Bearer " + token);
  if (method == "POST") headers.push_back("Content-Type: application/json");
  return HttpRequest(port, method, target, headers, body);
}

uint16_t ServePort(const Proc& p) {
  const std::string key = "\"address\":\"127.0.0.1:";
  uint16_t port = 0;
  PollUntil([&] {
    std::string err = p.Err();
    size_t at = err.find(key);
    if (at == std::string::npos) return false;
    port = static_cast<uint16_t>(std::atoi(err.c_str() + at + key.size()));
    return true;
  });
  return port;
}

server::http::testing::RawClient OpenEventStream(uint16_t port, const std::string& token,
                                                 const std::string& extra) {
  Result<server::http::testing::RawClient> c = server::http::testing::RawClient::ConnectTcp(port);
  EXPECT_TRUE(c.ok());
  server::http::testing::RawClient client = std::move(*c);
  client.Send(
      "GET /api/v1/events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n"
      "Authorization: Bearer " +
      token + "\r\n" + extra + "\r\n");
  EXPECT_TRUE(client.ReadUntil("\r\n\r\n", kStreamPatience)) << client.received();
  EXPECT_NE(client.received().find("HTTP/1.1 200"), std::string::npos) << client.received();
  return client;
}

HttpReply HttpRequest(uint16_t port, const std::string& method, const std::string& path,
                      const std::vector<std::string>& headers, const std::string& body) {
  HttpReply reply;
  Result<server::http::testing::RawClient> client =
      server::http::testing::RawClient::ConnectTcp(port);
  if (!client.ok()) return reply;
  std::string request = method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  for (const std::string& h : headers) request += h + "\r\n";
  request += "Content-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n";
  request += body;
  if (!client->Send(request)) return reply;
  std::optional<server::http::testing::RawResponse> got =
      client->ReadResponse(std::chrono::duration_cast<std::chrono::milliseconds>(kPatience));
  if (!got.has_value()) return reply;
  reply.status = got->status;
  reply.body = std::move(got->body);
  reply.headers = std::move(got->headers);
  return reply;
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
  return PollUntil([&] { return CountOf(BackgroundOutput(s), needle) >= times; });
}

bool PollUntil(const std::function<bool()>& done, std::chrono::milliseconds patience) {
  const auto give_up = std::chrono::steady_clock::now() + patience;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= give_up) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

bool Freeze(int pid) {
  if (kill(pid, SIGSTOP) != 0) return false;
  // kill() only sends the signal: wait until the child really stopped (or ended).
  while (true) {
    siginfo_t info{};
    if (waitid(P_PID, static_cast<id_t>(pid), &info, WSTOPPED | WEXITED | WNOWAIT) != 0) {
      if (errno == EINTR) continue;
      return false;
    }
    if (info.si_code != CLD_STOPPED) return false;  // it ended: left for Wait
    // Consume this stop report, so that the next Freeze waits for a stop of its own.
    siginfo_t consumed{};
    waitid(P_PID, static_cast<id_t>(pid), &consumed, WSTOPPED);
    return true;
  }
}

void Thaw(int pid) { kill(pid, SIGCONT); }

bool FreezeWhen(int pid, const std::function<bool()>& ready, std::chrono::milliseconds patience) {
  const auto give_up = std::chrono::steady_clock::now() + patience;
  while (std::chrono::steady_clock::now() < give_up) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        give_up - std::chrono::steady_clock::now());
    if (!PollUntil([&] { return Exited(pid) || ready(); }, left)) return false;
    if (!Freeze(pid)) return false;
    if (ready()) return true;
    Thaw(pid);  // the state passed between the look and the stop: look again
  }
  return false;
}

namespace {

// User plus system CPU time of process `pid` and all its threads, in clock ticks; -1 when gone.
long long CpuTicks(int pid) {
  std::string stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  const size_t paren = stat.rfind(')');  // the command name may hold spaces and parentheses
  if (paren == std::string::npos) return -1;
  std::istringstream in(stat.substr(paren + 2));
  std::string field;
  long long utime = 0, stime = 0;
  // After the name: state(3) ... utime(14), stime(15).
  for (int i = 3; i <= 15 && in >> field; ++i) {
    if (i == 14) utime = std::atoll(field.c_str());
    if (i == 15) stime = std::atoll(field.c_str());
  }
  return utime + stime;
}

}  // namespace

bool StepUntil(int pid, const std::function<int()>& look, std::chrono::milliseconds patience) {
  const auto give_up = std::chrono::steady_clock::now() + patience;
  while (std::chrono::steady_clock::now() < give_up) {
    if (!Freeze(pid)) return false;
    const int quantum = look();
    if (quantum <= 0) return true;
    const long long until = CpuTicks(pid) + quantum;
    Thaw(pid);
    // How often this loop looks at the clock decides only how closely the quantum is kept to,
    // never what a look sees: the child is frozen before every look.
    while (!Exited(pid) && CpuTicks(pid) < until && std::chrono::steady_clock::now() < give_up) {
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  }
  return false;
}

bool InStateWrite(const Sandbox& s, int pid) {
  struct stat st {};
  if (stat((s.state() + "-shm").c_str(), &st) != 0) return false;
  std::istringstream locks(ReadFile("/proc/locks"));
  const std::string inode = ":" + std::to_string(st.st_ino);
  for (std::string line; std::getline(locks, line);) {
    // "1: POSIX  ADVISORY  WRITE 4242 08:01:1234 120 120"; "1: -> ..." lines are waiters.
    std::istringstream in(line);
    std::string n, type, mode, access, dev, start, end;
    int holder = 0;
    in >> n >> type;
    if (type == "->") continue;
    in >> mode >> access >> holder >> dev >> start >> end;
    if (type != "POSIX" || access != "WRITE" || holder != pid) continue;
    if (dev.size() < inode.size() || dev.compare(dev.size() - inode.size(), inode.size(), inode))
      continue;
    const long first = std::atol(start.c_str());
    const long last = end == "EOF" ? std::numeric_limits<long>::max() : std::atol(end.c_str());
    if (first <= 120 && 120 <= last) return true;  // SQLite's WAL_WRITE_LOCK
  }
  return false;
}

ApplyProgress ProgressOf(const Sandbox& s, const std::string& env, int pid) {
  ApplyProgress p;
  RunResult list = s.Run({"history", env, "--json", "--state", s.StateLocation()});
  Json applies;
  if (list.exit_code != 0 || !ReadJson(list.out, &applies)) return p;
  for (const Json& a : applies.items) {
    if (a.Int("pid") != pid || a.Int("id") < p.id) continue;  // its newest apply
    p.id = a.Int("id");
    p.status = a.Str("status");
  }
  if (p.id == 0) return p;
  RunResult one =
      s.Run({"history", "show", std::to_string(p.id), "--json", "--state", s.StateLocation()});
  Json j;
  if (one.exit_code != 0 || !ReadJson(one.out, &j) || j.Find("changes") == nullptr) return p;
  for (const Json& c : j.Find("changes")->items) {
    p.done += c.Str("status") == "done";
    p.pending += c.Str("status") == "pending";
  }
  return p;
}

bool StepToShare(const Sandbox& s, const std::string& env, int pid, double share,
                 const std::function<bool()>& also, ApplyProgress* progress,
                 std::chrono::milliseconds patience) {
  ApplyProgress p;
  int asked = 1, last_done = 0;
  double per_tick = 0;  // the fastest pace seen, in changes recorded per tick
  const double aim = share > 0 ? share : 0.5;
  const bool caught = StepUntil(
      pid,
      [&] {
        p = ProgressOf(s, env, pid);
        const int total = p.done + p.pending;
        if (p.status == "running" && p.done > 0 && p.pending > 0 && p.done >= share * total &&
            (!also || also())) {
          return 0;
        }
        if (p.done > last_done) {
          per_tick = std::max(per_tick, (p.done - last_done) / static_cast<double>(asked));
        }
        last_done = p.done;
        const double left = aim * total - p.done;
        asked = per_tick > 0 && left > 0
                    ? std::clamp(static_cast<int>(left / per_tick / 2), 1, 1000)
                    : (per_tick > 0 ? 1 : std::min(asked * 2, 8));
        return asked;
      },
      patience);
  if (progress != nullptr) *progress = p;
  return caught;
}

bool FreezeMidApply(const Sandbox& s, const std::string& env, int pid) {
  return StepToShare(s, env, pid, 0, [&] { return !InStateWrite(s, pid); });
}

TerminalProc::TerminalProc(const Sandbox& s, std::vector<std::string> args, const std::string& tag)
    : out_path_(s.dir() + "/" + tag + ".out") {
  master_ = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master_ < 0 || grantpt(master_) != 0 || unlockpt(master_) != 0) {
    ADD_FAILURE() << "no pseudo-terminal: " << std::strerror(errno);
    return;
  }
  const std::string slave = ptsname(master_);
  args.insert(args.begin(), DRIFTLESS_BIN);
  args.insert(args.end(), {"--dir", s.repo(), "--state", s.StateLocation()});
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    setsid();  // the terminal becomes its controlling terminal
    int tty = open(slave.c_str(), O_RDWR);
    int out = open(out_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (tty < 0 || out < 0) _exit(126);
    dup2(tty, 0);
    dup2(out, 1);
    dup2(tty, 2);
    execv(argv[0], argv.data());
    _exit(127);
  }
  pid_ = pid;
  reader_ = std::thread([this] { Read(); });
}

TerminalProc::~TerminalProc() {
  if (pid_ > 0 && !reaped_) {
    kill(pid_, SIGKILL);
    Wait();
  }
  stop_ = true;
  if (reader_.joinable()) reader_.join();
  if (master_ >= 0) close(master_);
}

void TerminalProc::Read() {
  char buf[4096];
  while (!stop_) {
    pollfd fd{master_, POLLIN, 0};
    int n = poll(&fd, 1, 100);
    if (n <= 0) continue;
    ssize_t got = read(master_, buf, sizeof buf);
    if (got <= 0) {
      if (got < 0 && errno == EINTR) continue;
      if (got < 0 && errno == EIO && !reaped_) {
        // EIO: no process has the terminal open (yet, or any more); look again shortly.
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        continue;
      }
      return;
    }
    std::lock_guard<std::mutex> lock(mu_);
    screen_.append(buf, static_cast<size_t>(got));
  }
}

std::string TerminalProc::Screen() const {
  std::lock_guard<std::mutex> lock(mu_);
  return screen_;
}

bool TerminalProc::WaitForScreen(const std::string& needle) const {
  return PollUntil([&] { return Screen().find(needle) != std::string::npos || Exited(pid_); }) &&
         Screen().find(needle) != std::string::npos;
}

void TerminalProc::Type(const std::string& text) {
  if (master_ < 0) return;
  if (write(master_, text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    ADD_FAILURE() << "could not type on the terminal: " << std::strerror(errno);
  }
}

int TerminalProc::Wait() {
  if (pid_ <= 0) return -1000;
  const int rc = test::Wait(pid_);
  reaped_ = true;
  return rc;
}

::testing::AssertionResult SaysItWaits(const Proc& p, int holder_pid) {
  const std::string holder = "(pid " + std::to_string(holder_pid) + ") for ";
  auto said = [&] {
    const std::string err = p.Err();
    return err.find("waiting up to ") != std::string::npos &&
           err.find(" for the lock of environment ") != std::string::npos &&
           err.find(holder) != std::string::npos;
  };
  if (PollUntil([&] { return said() || Exited(p.pid); }) && said()) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure() << "pid " << p.pid << " never said that it waits for pid "
                                       << holder_pid << "; its standard error:\n"
                                       << p.Err();
}

PromptHolder::PromptHolder(const Sandbox& s, const std::string& env, const std::string& gen)
    : proc(s, {"apply", env, "--lease", "1h", "--var", "gen=" + gen}, "holder-" + env) {}

::testing::AssertionResult PromptHolder::Asking() {
  if (proc.WaitForScreen(kConfirmPrompt)) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "the apply never asked for confirmation; it showed:\n"
                                       << proc.Screen() << "\nand wrote:\n"
                                       << proc.Out().substr(0, 2000);
}

}  // namespace driftless::test
