#include "server/ui/ui.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <string>
#include <vector>

#include "server/http/server.h"

namespace driftless::server::ui {
namespace {

std::string Header(const http::Response& r, std::string_view name) {
  for (const auto& [n, v] : r.headers) {
    if (n == name) return v;
  }
  return "";
}

std::string Gunzip(std::string_view gz) {
  z_stream z{};
  EXPECT_EQ(inflateInit2(&z, 15 + 16), Z_OK);
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(gz.data()));
  z.avail_in = static_cast<uInt>(gz.size());
  std::string out;
  char buf[16384];
  int rc = Z_OK;
  while (rc == Z_OK) {
    z.next_out = reinterpret_cast<Bytef*>(buf);
    z.avail_out = sizeof buf;
    rc = inflate(&z, Z_NO_FLUSH);
    out.append(buf, sizeof buf - z.avail_out);
  }
  EXPECT_EQ(rc, Z_STREAM_END);
  inflateEnd(&z);
  return out;
}

http::Request Get(std::string path, std::vector<std::pair<std::string, std::string>> headers = {}) {
  http::Request r;
  r.method = "GET";
  r.path = std::move(path);
  r.target = r.path;
  r.headers = std::move(headers);
  return r;
}

// A small set of files, as the generator writes them (without gzip: the embedded set has it).
const std::vector<Asset>& Fixture() {
  static const std::vector<Asset> assets = {
      {"/index.html", "text/html; charset=utf-8", "<html>ui</html>", "", "\"sha256-index\""},
      {"/assets/main-ABC.js", "text/javascript; charset=utf-8", "console.log(1)", "",
       "\"sha256-js\""},
  };
  return assets;
}

TEST(UiTest, ClientRoutesGetIndexRevalidatedWithSecurityHeaders) {
  for (const char* path : {"/", "/environments/production", "/runs/12", "/audit"}) {
    http::Response r = Serve(Fixture(), Get(path));
    EXPECT_EQ(r.status, 200) << path;
    EXPECT_EQ(r.body, "<html>ui</html>") << path;
    EXPECT_EQ(r.content_type, "text/html; charset=utf-8");
    EXPECT_EQ(Header(r, "Cache-Control"), "no-cache");
    EXPECT_EQ(Header(r, "ETag"), "\"sha256-index\"");
    EXPECT_EQ(Header(r, "Content-Security-Policy").rfind("default-src 'self'", 0), 0u);
    EXPECT_EQ(Header(r, "X-Content-Type-Options"), "nosniff");
    EXPECT_EQ(Header(r, "Vary"), "Accept-Encoding");
  }
}

TEST(UiTest, HashedAssetsAreImmutableAndUnknownOnesAre404) {
  http::Response r = Serve(Fixture(), Get("/assets/main-ABC.js"));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "console.log(1)");
  EXPECT_EQ(r.content_type, "text/javascript; charset=utf-8");
  EXPECT_EQ(Header(r, "Cache-Control"), "public, max-age=31536000, immutable");
  EXPECT_EQ(Header(r, "X-Content-Type-Options"), "nosniff");

  r = Serve(Fixture(), Get("/assets/main-OLD.js"));
  EXPECT_EQ(r.status, 404);
  EXPECT_NE(r.body.find("/assets/main-OLD.js"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("\"not_found\""), std::string::npos) << r.body;
}

TEST(UiTest, ServerPathsThatNoRouteTookStay404) {
  for (const char* path : {"/api", "/api/v1/nothing", "/metrics/x", "/livez/y", "/readyz/z"}) {
    http::Response r = Serve(Fixture(), Get(path));
    EXPECT_EQ(r.status, 404) << path;
    EXPECT_NE(r.body.find("no route for GET"), std::string::npos) << r.body;
  }
  // A path that only starts like one is a client route.
  EXPECT_EQ(Serve(Fixture(), Get("/apis")).status, 200);
}

TEST(UiTest, IfNoneMatchGives304) {
  http::Response r = Serve(Fixture(), Get("/runs/3", {{"if-none-match", "\"sha256-index\""}}));
  EXPECT_EQ(r.status, 304);
  EXPECT_TRUE(r.body.empty());
  EXPECT_EQ(Header(r, "ETag"), "\"sha256-index\"");
  EXPECT_EQ(Header(r, "Cache-Control"), "no-cache");
  // In a list, weak, or the gzip form's tag: still the same file.
  EXPECT_EQ(Serve(Fixture(), Get("/", {{"if-none-match", "\"x\", W/\"sha256-index\""}})).status,
            304);
  EXPECT_EQ(Serve(Fixture(), Get("/", {{"if-none-match", "\"sha256-index-gzip\""}})).status, 304);
  EXPECT_EQ(Serve(Fixture(), Get("/", {{"if-none-match", "\"sha256-old\""}})).status, 200);
}

TEST(UiTest, AcceptEncoding) {
  EXPECT_TRUE(AcceptsGzip("gzip"));
  EXPECT_TRUE(AcceptsGzip("gzip, deflate, br"));
  EXPECT_TRUE(AcceptsGzip("br;q=1.0, GZIP;q=0.5"));
  EXPECT_TRUE(AcceptsGzip("*"));
  EXPECT_FALSE(AcceptsGzip(""));
  EXPECT_FALSE(AcceptsGzip("identity"));
  EXPECT_FALSE(AcceptsGzip("gzip;q=0"));
  EXPECT_FALSE(AcceptsGzip("gzip; q=0.000"));
  EXPECT_FALSE(AcceptsGzip("x-gzip"));
}

// The files compiled into this binary: an index.html whose script and stylesheet are there,
// each gzip form smaller than the file and decoding to it exactly.
TEST(UiTest, EmbeddedBundleDecodesToTheOriginals) {
  std::span<const Asset> assets = EmbeddedAssets();
  ASSERT_FALSE(assets.empty());
  http::Response index = Serve(assets, Get("/"));
  ASSERT_EQ(index.status, 200);
  bool js = false;
  for (const Asset& a : assets) {
    EXPECT_EQ(a.etag.substr(0, 8), "\"sha256-") << a.path;
    if (a.path.starts_with("/assets/")) {
      EXPECT_NE(index.body.find(std::string(a.path)), std::string::npos) << a.path;
      js = js || a.path.ends_with(".js");
    }
    http::Response plain = Serve(assets, Get(std::string(a.path)));
    ASSERT_EQ(plain.status, 200) << a.path;
    EXPECT_EQ(plain.body, a.body);
    EXPECT_EQ(Header(plain, "Content-Encoding"), "");
    http::Response gz = Serve(assets, Get(std::string(a.path), {{"accept-encoding", "gzip, br"}}));
    ASSERT_EQ(gz.status, 200);
    if (a.gzip.empty()) continue;
    EXPECT_EQ(Header(gz, "Content-Encoding"), "gzip") << a.path;
    EXPECT_LT(gz.body.size(), a.body.size()) << a.path;
    EXPECT_EQ(Gunzip(gz.body), a.body) << a.path;
    EXPECT_NE(Header(gz, "ETag"), Header(plain, "ETag"));
  }
  EXPECT_TRUE(js);
}

// Through the router and the HTTP layer's parser: the API's routes win, the rest is the UI.
TEST(UiTest, RoutedBesideTheApi) {
  http::Router router;
  ASSERT_TRUE(router
                  .AddSync("GET", "/api/v1/environments",
                           [](const http::Request&) { return http::Response::Json(200, "[]"); })
                  .ok());
  ASSERT_TRUE(AddUiRoutes(router, Fixture()).ok());
  http::ServerOptions options;
  auto get = [&](std::string_view path) {
    return http::HandleRawRequest(
        router, options, "GET " + std::string(path) + " HTTP/1.1\r\nHost: x\r\n\r\n", true);
  };
  EXPECT_EQ(get("/api/v1/environments").body, "[]");
  EXPECT_EQ(get("/").body, "<html>ui</html>");
  EXPECT_EQ(get("/environments/production/resources/file.file/app").body, "<html>ui</html>");
  EXPECT_EQ(get("/api/v1/nothing").status, 404);
  EXPECT_EQ(get("/assets/main-ABC.js").body, "console.log(1)");
  http::Response post = http::HandleRawRequest(
      router, options, "POST /environments HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", true);
  EXPECT_EQ(post.status, 404);
}

}  // namespace
}  // namespace driftless::server::ui
