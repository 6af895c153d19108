// A tcp:// endpoint with TLS files, against the test Podman service behind a TLS terminator that
// requires a client certificate (Podman's own service has no TLS): certificates made with the
// openssl command line, the terminator with OpenSSL in this test, forwarding to the unix socket.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <thread>
#include <vector>

#include "base/strings.h"
#include "providers/container/container_provider.h"
#include "support/podman.h"

namespace driftless::providers::container {
namespace {

using value::Value;

// Runs a shell command; true when it succeeded.
bool Sh(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()) == 0; }

// A CA, a server certificate for 127.0.0.1 and a client certificate, in `dir`.
bool MakeCertificates(const std::string& dir) {
  const std::string ec = " -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
  return Sh("cd " + dir + " && openssl req -x509" + ec +
            " -keyout ca.key -out ca.pem -subj /CN=driftless-test-ca -days 2") &&
         Sh("cd " + dir + " && printf 'subjectAltName=IP:127.0.0.1\\n' > san.ext && openssl req" +
            ec + " -keyout server.key -out server.csr -subj /CN=127.0.0.1") &&
         Sh("cd " + dir +
            " && openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
            "-out server.pem -days 2 -extfile san.ext") &&
         Sh("cd " + dir + " && openssl req" + ec +
            " -keyout client.key -out client.csr -subj /CN=driftless") &&
         Sh("cd " + dir +
            " && openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
            "-out client.pem -days 2") &&
         Sh("cd " + dir + " && openssl req -x509" + ec +
            " -keyout other.key -out other.pem -subj /CN=someone-else -days 2");
}

// Terminates TLS on a loopback port (client certificates signed by the CA required) and
// forwards each connection to a unix socket.
class TlsTerminator {
 public:
  ~TlsTerminator() {
    stop_ = true;
    if (fd_ >= 0) shutdown(fd_, SHUT_RDWR);
    if (accept_.joinable()) accept_.join();
    for (auto& t : conns_) t.join();
    if (fd_ >= 0) close(fd_);
    if (ctx_ != nullptr) SSL_CTX_free(ctx_);
  }

  int Start(const std::string& dir, const std::string& socket_path) {
    socket_path_ = socket_path;
    ctx_ = SSL_CTX_new(TLS_server_method());
    if (SSL_CTX_use_certificate_file(ctx_, (dir + "/server.pem").c_str(), SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx_, (dir + "/server.key").c_str(), SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_load_verify_locations(ctx_, (dir + "/ca.pem").c_str(), nullptr) != 1) {
      return 0;
    }
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    if (bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 || listen(fd_, 16) != 0 ||
        getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      return 0;
    }
    accept_ = std::thread([this] { AcceptLoop(); });
    return ntohs(a.sin_port);
  }

 private:
  void AcceptLoop() {
    while (!stop_) {
      int c = accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      conns_.emplace_back([this, c] { Serve(c); });
    }
  }

  void Serve(int c) {
    SSL* ssl = SSL_new(ctx_);
    SSL_set_fd(ssl, c);
    int up = -1;
    if (SSL_accept(ssl) == 1) {
      up = socket(AF_UNIX, SOCK_STREAM, 0);
      sockaddr_un u{};
      u.sun_family = AF_UNIX;
      std::snprintf(u.sun_path, sizeof(u.sun_path), "%s", socket_path_.c_str());
      if (connect(up, reinterpret_cast<sockaddr*>(&u), sizeof(u)) == 0) Pump(ssl, c, up);
    }
    SSL_shutdown(ssl);
    SSL_free(ssl);
    if (up >= 0) close(up);
    close(c);
  }

  void Pump(SSL* ssl, int c, int up) {
    char buf[16384];
    while (!stop_) {
      if (SSL_pending(ssl) == 0) {
        pollfd fds[2] = {{c, POLLIN, 0}, {up, POLLIN, 0}};
        if (poll(fds, 2, 200) < 0) return;
        if (fds[1].revents & (POLLIN | POLLHUP)) {
          ssize_t n = read(up, buf, sizeof(buf));
          if (n <= 0 || SSL_write(ssl, buf, static_cast<int>(n)) <= 0) return;
        }
        if (!(fds[0].revents & (POLLIN | POLLHUP))) continue;
      }
      int n = SSL_read(ssl, buf, sizeof(buf));
      if (n <= 0) return;
      if (write(up, buf, static_cast<size_t>(n)) != n) return;
    }
  }

  std::string socket_path_;
  SSL_CTX* ctx_ = nullptr;
  int fd_ = -1;
  std::atomic<bool> stop_{false};
  std::thread accept_;
  std::vector<std::thread> conns_;
};

TEST(ContainerTls, TcpEndpointWithClientCertificates) {
  char tmpl[] = "/tmp/driftless-tls-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  ASSERT_TRUE(MakeCertificates(dir)) << "openssl";
  const std::string socket_path = test::PodmanSocket();
  ASSERT_FALSE(socket_path.empty());
  int port = 0;
  {
    TlsTerminator tls;
    port = tls.Start(dir, socket_path);
    ASSERT_GT(port, 0);
    const std::string endpoint = "tcp://127.0.0.1:" + std::to_string(port);
    auto provider = NewContainerProvider(nullptr);
    auto configure = [&](const std::string& cert, const std::string& key) {
      Value settings = Value::MakeObject();
      settings.Set("endpoint", Value::String(endpoint));
      settings.Set("tls_ca", Value::String(dir + "/ca.pem"));
      if (!cert.empty()) {
        settings.Set("tls_cert", Value::String(dir + "/" + cert));
        settings.Set("tls_key", Value::String(dir + "/" + key));
      }
      auto t = provider->Configure("remote", settings);
      EXPECT_TRUE(t.ok()) << t.error().message;
      (*t)->SetContext({"proj", "tls"});
      return std::move(*t);
    };
    // With the client certificate: a volume made and read back over TLS.
    std::unique_ptr<provider::Target> t = configure("client.pem", "client.key");
    const std::string vol = test::UniquePodmanName("tlsvol");
    Value spec = Value::MakeObject();
    spec.Set("name", Value::String(vol));
    spec.Set("driver", Value::String("local"));
    Result<Value> made = t->Create({"container.volume", "v", spec}, false);
    ASSERT_TRUE(made.ok()) << made.error().message;
    Result<std::optional<Value>> read = t->Read({"container.volume", "v", spec});
    ASSERT_TRUE(read.ok()) << read.error().message;
    EXPECT_TRUE(read->has_value());
    EXPECT_TRUE(t->Delete({"container.volume", "v", *made}).ok());
    // Without one, or with a certificate the CA did not sign: refused, and the error names the
    // endpoint.
    for (const auto& [cert, key] :
         std::vector<std::pair<std::string, std::string>>{{"", ""}, {"other.pem", "other.key"}}) {
      std::unique_ptr<provider::Target> anon = configure(cert, key);
      Result<std::optional<Value>> r = anon->Read({"container.volume", "v", spec});
      ASSERT_FALSE(r.ok()) << cert;
      EXPECT_NE(r.error().message.find(endpoint), std::string::npos) << r.error().message;
    }
  }
  // Settings are checked before any I/O.
  auto provider = NewContainerProvider(nullptr);
  for (const auto& [json, why] : std::vector<std::pair<std::string, std::string>>{
           {R"({"endpoint": "tcp://127.0.0.1:2376", "tls_cert": "c.pem"})", "go together"},
           {R"({"endpoint": "unix:///run/x.sock", "tls_ca": "ca.pem"})", "tcp://"},
           {R"({"endpoint": "tcp://host"})", "port is missing"},
           {R"({"endpoint": "http://host:1"})", "expected unix://"},
           {R"({"endpoint": "unix://relative"})", "absolute"},
           {R"({"endpoint": "tcp://h:99999"})", "1 to 65535"}}) {
    auto v = value::ParseJson(json);
    ASSERT_TRUE(v.ok());
    auto t = provider->Configure("remote", *v);
    ASSERT_FALSE(t.ok()) << json;
    EXPECT_NE(t.error().message.find(why), std::string::npos) << t.error().message;
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace driftless::providers::container
