#include "bench_util.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <utility>

namespace driftless::bench {
namespace {

std::string g_program = "driftless-bench";
std::function<void()> g_cleanup;

// In a forked child: adds `env` and replaces the process with args[0], looked up in PATH when
// `search_path` (and args[0] holds no slash).
[[noreturn]] void Exec(const std::vector<std::string>& args, const std::vector<std::string>& env,
                       bool search_path) {
  for (const auto& e : env) putenv(strdup(e.c_str()));
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  if (search_path) {
    execvp(argv[0], argv.data());
  } else {
    execv(argv[0], argv.data());
  }
  _exit(127);
}

}  // namespace

void SetDieContext(std::string program, std::function<void()> cleanup) {
  g_program = std::move(program);
  g_cleanup = std::move(cleanup);
}

void Die(const std::string& what) {
  std::fprintf(stderr, "%s: %s\n", g_program.c_str(), what.c_str());
  if (g_cleanup) g_cleanup();
  std::exit(1);
}

int Run(const std::vector<std::string>& args, const std::vector<std::string>& env,
        const std::string& out_path, const std::string& err_path, double* cpu_seconds) {
  pid_t pid = fork();
  if (pid == 0) {
    int out = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(out, 1);
    if (err_path == out_path) {
      dup2(out, 2);
    } else if (!err_path.empty()) {
      dup2(open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644), 2);
    }
    Exec(args, env, /*search_path=*/true);
  }
  int status = 0;
  struct rusage usage {};
  wait4(pid, &status, 0, &usage);
  if (cpu_seconds != nullptr) {
    auto s = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
    *cpu_seconds = s(usage.ru_utime) + s(usage.ru_stime);
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int StartPiped(const std::vector<std::string>& args, const std::vector<std::string>& env,
               int* out_fd) {
  int out[2];
  if (pipe(out) != 0) Die("pipe");
  pid_t pid = fork();
  if (pid == 0) {
    dup2(out[1], 1);
    close(out[0]);
    Exec(args, env, /*search_path=*/false);
  }
  close(out[1]);
  *out_fd = out[0];
  return pid;
}

std::string LoadAverage() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

bool LineReader::WaitForLine(const std::vector<std::string>& needles, Clock::duration timeout,
                             std::string* found) {
  Clock::time_point until = Clock::now() + timeout;
  while (Clock::now() < until) {
    size_t nl;
    while ((nl = buffer_.find('\n')) != std::string::npos) {
      std::string line = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      bool all = true;
      for (const auto& n : needles) all &= line.find(n) != std::string::npos;
      if (all) {
        if (found != nullptr) *found = std::move(line);
        return true;
      }
    }
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, 100) > 0) {
      char chunk[8192];
      ssize_t got = read(fd_, chunk, sizeof chunk);
      if (got <= 0) return false;
      buffer_.append(chunk, static_cast<size_t>(got));
    }
  }
  return false;
}

}  // namespace driftless::bench
