#include "client/client.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

namespace driftless::client {
namespace {

TEST(ParseServerUrlTest, TakesHttpHttpsAndUnixForms) {
  Result<ServerUrl> tcp = ParseServerUrl("http://127.0.0.1:8080");
  ASSERT_TRUE(tcp.ok()) << tcp.error().message;
  EXPECT_EQ(tcp->base, "http://127.0.0.1:8080");
  EXPECT_EQ(tcp->unix_path, "");
  Result<ServerUrl> slash = ParseServerUrl("http://ci.example:9000/");
  ASSERT_TRUE(slash.ok());
  EXPECT_EQ(slash->base, "http://ci.example:9000");
  Result<ServerUrl> v6 = ParseServerUrl("http://[::1]:8080");
  ASSERT_TRUE(v6.ok()) << v6.error().message;
  EXPECT_EQ(v6->base, "http://[::1]:8080");
  Result<ServerUrl> tls = ParseServerUrl("https://driftless.example");
  ASSERT_TRUE(tls.ok());
  EXPECT_EQ(tls->base, "https://driftless.example");
  Result<ServerUrl> sock = ParseServerUrl("unix:///run/driftless/api.sock");
  ASSERT_TRUE(sock.ok());
  EXPECT_EQ(sock->unix_path, "/run/driftless/api.sock");
  EXPECT_EQ(sock->base, "http://localhost");
  EXPECT_EQ(sock->text, "unix:///run/driftless/api.sock");
}

TEST(ParseServerUrlTest, RefusesWhatItCannotReachNamingTheProblem) {
  struct Case {
    const char* url;
    const char* says;
  };
  for (const Case& c : {Case{"", "empty"}, Case{"localhost:8080", "unknown scheme"},
                        Case{"ftp://host:21", "unknown scheme"}, Case{"http://host", "no port"},
                        Case{"http://:8080", "no host"}, Case{"http://host:0", "port"},
                        Case{"http://host:65536", "port"}, Case{"http://host:80x", "port"},
                        Case{"http://host:80/api", "no path"},
                        Case{"http://user@host:80", "no path, query or user"},
                        Case{"unix://relative.sock", "absolute"}, Case{"unix://", "absolute"}}) {
    Result<ServerUrl> url = ParseServerUrl(c.url);
    ASSERT_FALSE(url.ok()) << c.url;
    EXPECT_NE(url.error().message.find(c.says), std::string::npos) << url.error().message;
    EXPECT_NE(url.error().message.find(std::string("'") + c.url + "'"), std::string::npos)
        << url.error().message;
    EXPECT_NE(url.error().message.find("unix:///PATH"), std::string::npos) << url.error().message;
  }
}

TEST(DescribeErrorTest, NamesTheRouteTheStatusAndTheServersMessage) {
  Reply r{404, R"({"error":{"code":"not_found","message":"there is no run 7","request_id":"r1"}})"};
  EXPECT_EQ(DescribeError("GET", "/api/v1/runs/7", r),
            "GET /api/v1/runs/7: HTTP 404 not_found: there is no run 7");
  Reply refused{401, R"({"error":{"code":"unauthorized","message":"token refused: expired"}})"};
  EXPECT_EQ(DescribeError("GET", "/api/v1/environments", refused),
            "GET /api/v1/environments: HTTP 401 unauthorized: token refused: expired (check "
            "--token-file or DRIFTLESS_TOKEN)");
  Reply proxy{502, "<html>\n<body>Bad Gateway</body></html>"};
  EXPECT_EQ(DescribeError("POST", "/api/v1/x", proxy),
            "POST /api/v1/x: HTTP 502 (not an API error: <html> <body>Bad Gateway</body></html>)");
  EXPECT_EQ(DescribeError("GET", "/x", Reply{500, ""}), "GET /x: HTTP 500 (no body)");
  // A server's message reaches a terminal: lines stay, escape sequences do not.
  Reply odd{409, R"({"error":{"code":"conflict","message":"two\nlines \u001b[31mred"}})"};
  EXPECT_EQ(DescribeError("POST", "/x", odd), "POST /x: HTTP 409 conflict: two\nlines ?[31mred");
  // Found by client_fuzz: DEL in a body that is not an envelope.
  EXPECT_EQ(DescribeError("GET", "/x", Reply{502, std::string("\x7f\0", 2)}),
            "GET /x: HTTP 502 (not an API error: ?"
            "?)");
}

TEST(LoadTokenTest, ReadsTheFileFirstThenTheEnvironmentAndNeverShowsIt) {
  char path[] = "/tmp/dl_client_token_XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  close(fd);
  {
    std::ofstream out(path);
    out << "dl_secret123\n";
  }
  Result<std::string> from_file = LoadToken(path, "dl_other");
  ASSERT_TRUE(from_file.ok()) << from_file.error().message;
  EXPECT_EQ(*from_file, "dl_secret123");
  Result<std::string> from_env = LoadToken("", "dl_other\n");
  ASSERT_TRUE(from_env.ok());
  EXPECT_EQ(*from_env, "dl_other");
  Result<std::string> none = LoadToken("", nullptr);
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.error().message.find("DRIFTLESS_TOKEN"), std::string::npos);
  Result<std::string> spaced = LoadToken("", "dl_a b");
  ASSERT_FALSE(spaced.ok());
  EXPECT_EQ(spaced.error().message.find("dl_a"), std::string::npos) << spaced.error().message;
  { std::ofstream out(path); }
  Result<std::string> empty = LoadToken(path, nullptr);
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.error().message.find("empty"), std::string::npos);
  std::remove(path);
  EXPECT_FALSE(LoadToken(path, nullptr).ok());
}

TEST(EscapeTest, KeepsUnreservedCharacters) {
  EXPECT_EQ(Escape("review/feat-1_a.b~"), "review%2Ffeat-1_a.b~");
  EXPECT_EQ(Escape("a b&c"), "a%20b%26c");
}

}  // namespace
}  // namespace driftless::client
