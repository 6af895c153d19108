#include "server/http/testing/raw_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>

#include "base/strings.h"

namespace driftless::server::http::testing {

std::string RawResponse::Header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (key == name) return value;
  }
  return "";
}

Result<RawClient> RawClient::ConnectTcp(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return MakeError(std::string("socket: ") + std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    std::string message = std::string("connect: ") + std::strerror(errno);
    ::close(fd);
    return MakeError(message);
  }
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return RawClient(fd);
}

Result<RawClient> RawClient::ConnectUnix(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return MakeError(std::string("socket: ") + std::strerror(errno));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) {
    ::close(fd);
    return MakeError("socket path too long: " + path);
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    std::string message = std::string("connect: ") + std::strerror(errno);
    ::close(fd);
    return MakeError(message);
  }
  return RawClient(fd);
}

RawClient::RawClient(RawClient&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), received_(std::move(other.received_)) {}

RawClient& RawClient::operator=(RawClient&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    received_ = std::move(other.received_);
  }
  return *this;
}

RawClient::~RawClient() {
  if (fd_ >= 0) ::close(fd_);
}

bool RawClient::Send(std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

int RawClient::ReadSome(std::chrono::steady_clock::time_point deadline) {
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return -1;
    pollfd p{fd_, POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    char buffer[16384];
    ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -1;
    if (n == 0) return 0;
    received_.append(buffer, static_cast<size_t>(n));
    return 1;
  }
}

bool RawClient::ReadUntil(std::string_view needle, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (received_.find(needle) == std::string::npos) {
    if (ReadSome(deadline) != 1) return false;
  }
  return true;
}

std::optional<RawResponse> RawClient::ReadResponse(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  size_t end;
  while ((end = received_.find("\r\n\r\n")) == std::string::npos) {
    if (ReadSome(deadline) != 1) return std::nullopt;
  }
  RawResponse response;
  std::string head = received_.substr(0, end);
  size_t line_end = head.find("\r\n");
  std::string status_line = head.substr(0, line_end);
  if (status_line.size() < 12 || status_line.compare(0, 5, "HTTP/") != 0) return std::nullopt;
  response.status = std::atoi(status_line.c_str() + 9);
  size_t pos = line_end == std::string::npos ? head.size() : line_end + 2;
  while (pos < head.size()) {
    size_t next = head.find("\r\n", pos);
    if (next == std::string::npos) next = head.size();
    std::string line = head.substr(pos, next - pos);
    size_t colon = line.find(':');
    if (colon != std::string::npos) {
      size_t value_start = line.find_first_not_of(' ', colon + 1);
      response.headers.emplace_back(
          AsciiLower(line.substr(0, colon)),
          value_start == std::string::npos ? "" : line.substr(value_start));
    }
    pos = next + 2;
  }
  size_t length = std::strtoull(response.Header("content-length").c_str(), nullptr, 10);
  size_t body_start = end + 4;
  while (received_.size() < body_start + length) {
    if (ReadSome(deadline) != 1) return std::nullopt;
  }
  response.body = received_.substr(body_start, length);
  received_.erase(0, body_start + length);
  return response;
}

bool RawClient::WaitClosed(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    int r = ReadSome(deadline);
    if (r == 0) return true;
    if (r < 0) {
      // A reset is a close too; a timeout is not.
      return std::chrono::steady_clock::now() < deadline;
    }
  }
}

std::optional<RawResponse> Get(uint16_t port, const std::string& target,
                               std::chrono::milliseconds timeout) {
  auto client = RawClient::ConnectTcp(port);
  if (!client.ok()) return std::nullopt;
  if (!client->Send("GET " + target + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"))
    return std::nullopt;
  return client->ReadResponse(timeout);
}

}  // namespace driftless::server::http::testing
