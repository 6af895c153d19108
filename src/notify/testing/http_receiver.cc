#include "notify/testing/http_receiver.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstring>

namespace driftless::notify::testing {
namespace {

// Reads the request line and headers into r; Content-Length into *length.
void ParseHead(const std::string& head, Request* r, size_t* length) {
  size_t line_end = head.find("\r\n");
  std::string first = head.substr(0, line_end);
  size_t sp1 = first.find(' '), sp2 = first.find(' ', sp1 + 1);
  r->method = first.substr(0, sp1);
  r->path = first.substr(sp1 + 1, sp2 - sp1 - 1);
  size_t at = line_end == std::string::npos ? head.size() : line_end + 2;
  while (at < head.size()) {
    size_t end = head.find("\r\n", at);
    if (end == std::string::npos) end = head.size();
    std::string line = head.substr(at, end - at);
    size_t colon = line.find(':');
    if (colon != std::string::npos) {
      std::string name = line.substr(0, colon);
      std::transform(name.begin(), name.end(), name.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      std::string value = line.substr(colon + 1);
      value.erase(0, value.find_first_not_of(' '));
      if (name == "content-length") *length = std::stoul(value);
      r->headers.emplace_back(name, value);
    }
    at = end + 2;
  }
}

}  // namespace

std::string Request::Header(const std::string& name) const {
  for (const auto& [k, v] : headers) {
    if (k == name) return v;
  }
  return "";
}

bool Receiver::Start(int port) {
  fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) return false;
  int one = 1;
  setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(fd_, 64) != 0) {
    close(fd_);
    fd_ = -1;
    return false;
  }
  socklen_t len = sizeof addr;
  getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  stop_ = false;
  thread_ = std::thread([this] { Serve(); });
  return true;
}

void Receiver::Stop() {
  if (fd_ < 0) return;
  stop_ = true;
  shutdown(fd_, SHUT_RDWR);
  if (thread_.joinable()) thread_.join();
  close(fd_);
  fd_ = -1;
}

std::string Receiver::Url(const std::string& path) const {
  return "http://127.0.0.1:" + std::to_string(port_) + path;
}

std::vector<Request> Receiver::Requests() {
  std::lock_guard<std::mutex> g(mu_);
  return requests_;
}

bool Receiver::WaitFor(const std::function<bool(const Request&)>& match, Request* out,
                       std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  size_t seen = 0;
  auto found = [&] {
    for (; seen < requests_.size(); ++seen) {
      if (match(requests_[seen])) {
        if (out != nullptr) *out = requests_[seen];
        return true;
      }
    }
    return false;
  };
  return arrived_.wait_for(lock, timeout, found);
}

bool Receiver::WaitFor(const std::string& type, Request* out) {
  return WaitFor(
      [&](const Request& r) {
        return r.Header("x-driftless-event") == type ||
               r.body.find("*" + type + "*") != std::string::npos;
      },
      out, std::chrono::minutes(2));
}

void Receiver::Serve() {
  while (!stop_) {
    int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) {
      if (stop_) return;
      continue;
    }
    Request r;
    std::string data;
    char buf[4096];
    size_t header_end = std::string::npos;
    size_t length = 0;
    while (true) {
      if (header_end == std::string::npos) {
        header_end = data.find("\r\n\r\n");
        if (header_end != std::string::npos) ParseHead(data.substr(0, header_end), &r, &length);
      }
      if (header_end != std::string::npos && data.size() >= header_end + 4 + length) break;
      ssize_t n = read(c, buf, sizeof buf);
      if (n <= 0) break;
      data.append(buf, static_cast<size_t>(n));
    }
    r.arrived = std::chrono::steady_clock::now();
    if (header_end != std::string::npos) r.body = data.substr(header_end + 4, length);
    const char* reply = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
    (void)!write(c, reply, std::strlen(reply));
    close(c);
    {
      std::lock_guard<std::mutex> g(mu_);
      requests_.push_back(std::move(r));
    }
    arrived_.notify_all();
  }
}

}  // namespace driftless::notify::testing
