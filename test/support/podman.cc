#include "support/podman.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace driftless::test {
namespace {

std::string Dir() {
  const char* d = std::getenv("DRIFTLESS_TEST_PODMAN_DIR");
  if (d == nullptr || *d == '\0') {
    ADD_FAILURE() << "DRIFTLESS_TEST_PODMAN_DIR is not set: run this test through ctest, which "
                     "starts the test Podman service (scripts/podman-test-server.sh)";
    return "";
  }
  return d;
}

std::string ReadTrimmed(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

std::string PodmanEndpoint() {
  std::string dir = Dir();
  if (dir.empty()) return "";
  std::string e = ReadTrimmed(dir + "/endpoint");
  if (e.empty()) ADD_FAILURE() << "no Podman service: " << dir << "/endpoint is missing";
  return e;
}

std::string PodmanSocket() {
  std::string e = PodmanEndpoint();
  return e.rfind("unix://", 0) == 0 ? e.substr(7) : "";
}

std::string BusyboxRootfs() { return Dir() + "/busybox-rootfs.tar"; }
std::string BusyboxImageArchive() { return Dir() + "/busybox-image.tar"; }

std::vector<std::string> PodmanEnv() {
  std::vector<std::string> out;
  std::istringstream in(ReadTrimmed(Dir() + "/env"));
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) out.push_back(line);
  }
  if (out.empty()) ADD_FAILURE() << "no Podman service environment in " << Dir();
  return out;
}

PodmanResult Podman(const std::vector<std::string>& args) {
  PodmanResult r;
  int fds[2];
  if (pipe(fds) != 0) return r;
  std::vector<std::string> env = PodmanEnv();
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], 1);
    dup2(fds[1], 2);
    close(fds[0]);
    close(fds[1]);
    for (const auto& e : env) putenv(const_cast<char*>(e.c_str()));
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>("podman"));
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execvp("podman", argv.data());
    _exit(127);
  }
  close(fds[1]);
  char buf[4096];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof(buf))) > 0) r.out.append(buf, static_cast<size_t>(n));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

namespace {

// Binds a loopback socket to port 0 and returns the port the kernel chose (0 if none).
int KernelChosenPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof(a);
  int port = 0;
  if (fd >= 0 && bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  if (fd >= 0) close(fd);
  return port;
}

}  // namespace

int FreeLoopbackPort() {
  // A published port is free again whenever its container is removed (a test removes them on
  // purpose), and another test process could then be given it by the kernel and publish its own
  // container there. So every port handed out is also claimed, for the life of this process, by
  // an flock on a file named after it in a folder all test processes share; a port claimed by a
  // living process is skipped. The lock goes when the process ends, however it ends.
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / "driftless-test-ports";
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  for (int attempt = 0; attempt < 1000; ++attempt) {
    int port = KernelChosenPort();
    if (port <= 0) break;
    int fd = open((dir / std::to_string(port)).c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0) {
      ADD_FAILURE() << "cannot claim port " << port << ": " << std::strerror(errno);
      return port;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) == 0) return port;  // fd stays open: the claim
    close(fd);
  }
  ADD_FAILURE() << "no free loopback port";
  return 0;
}

std::string UniquePodmanName(const std::string& prefix) {
  static std::atomic<int> n{0};
  return prefix + "-" + std::to_string(getpid()) + "-" + std::to_string(n++);
}

}  // namespace driftless::test
