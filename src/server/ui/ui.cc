#include "server/ui/ui.h"

#include <string>

#include "base/strings.h"
#include "server/http/server.h"

namespace driftless::server::ui {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Calls `f` with each comma-separated item of a header value, trimmed.
template <typename F>
void EachItem(std::string_view value, F f) {
  while (true) {
    size_t comma = value.find(',');
    std::string_view item = Trim(value.substr(0, comma));
    if (!item.empty()) f(item);
    if (comma == std::string_view::npos) return;
    value.remove_prefix(comma + 1);
  }
}

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// Whether the path belongs to the server rather than to the UI: /api/…, /metrics/…, …
bool ServerPath(std::string_view path) {
  for (std::string_view prefix : {"/api", "/metrics", "/livez", "/readyz"}) {
    if (path == prefix || StartsWith(path, std::string(prefix) + "/")) return true;
  }
  return false;
}

const Asset* Find(std::span<const Asset> assets, std::string_view path) {
  for (const Asset& a : assets) {
    if (a.path == path) return &a;
  }
  return nullptr;
}

// The ETag of the gzip form: another representation, so another tag.
std::string GzipTag(std::string_view etag) {
  std::string tag(etag);
  if (!tag.empty() && tag.back() == '"') tag.insert(tag.size() - 1, "-gzip");
  return tag;
}

bool Matches(std::string_view if_none_match, const std::string& identity_tag,
             const std::string& gzip_tag) {
  bool match = false;
  EachItem(if_none_match, [&](std::string_view tag) {
    if (StartsWith(tag, "W/")) tag.remove_prefix(2);  // weak comparison, as RFC 9110 asks
    if (tag == "*" || tag == identity_tag || tag == gzip_tag) match = true;
  });
  return match;
}

http::Response Answer(const Asset& asset, const http::Request& request) {
  http::Response r;
  r.content_type = std::string(asset.content_type);
  const bool immutable = StartsWith(asset.path, "/assets/");
  const std::string identity_tag(asset.etag);
  const std::string gzip_tag = GzipTag(asset.etag);
  const bool gzip = !asset.gzip.empty() && AcceptsGzip(request.Header("accept-encoding"));
  r.headers = {
      {"Cache-Control", std::string(immutable ? kImmutable : kNoCache)},
      {"ETag", gzip ? gzip_tag : identity_tag},
      {"Vary", "Accept-Encoding"},
      {"Content-Security-Policy", std::string(kContentSecurityPolicy)},
      {"X-Content-Type-Options", "nosniff"},
      {"Referrer-Policy", "no-referrer"},
  };
  std::string_view if_none_match = request.Header("if-none-match");
  if (!if_none_match.empty() && Matches(if_none_match, identity_tag, gzip_tag)) {
    r.status = 304;
    return r;
  }
  if (gzip) {
    r.headers.emplace_back("Content-Encoding", "gzip");
    r.body = std::string(asset.gzip);
  } else {
    r.body = std::string(asset.body);
  }
  return r;
}

}  // namespace

bool AcceptsGzip(std::string_view accept_encoding) {
  bool accepts = false;
  EachItem(accept_encoding, [&](std::string_view item) {
    size_t semicolon = item.find(';');
    std::string coding = AsciiLower(Trim(item.substr(0, semicolon)));
    if (coding != "gzip" && coding != "*") return;
    bool zero = false;
    if (semicolon != std::string_view::npos) {
      std::string params = AsciiLower(item.substr(semicolon + 1));
      size_t q = params.find("q=");
      if (q != std::string::npos) {
        std::string_view v = Trim(std::string_view(params).substr(q + 2));
        // q=0, q=0.0, q=0.000: refused; anything else (q=0.5, q=1) allows it.
        zero = !v.empty() && v[0] == '0' && v.find_first_not_of("0.", 0) == std::string_view::npos;
      }
    }
    if (!zero) accepts = true;
  });
  return accepts;
}

http::Response Serve(std::span<const Asset> assets, const http::Request& request) {
  const std::string& path = request.path;
  const std::string what = "GET " + http::Printable(path);
  if (ServerPath(path)) return http::Response::Error(404, "not_found", "no route for " + what);
  if (const Asset* asset = Find(assets, path)) return Answer(*asset, request);
  if (StartsWith(path, "/assets/")) {
    return http::Response::Error(404, "not_found",
                                 "no file " + http::Printable(path) + " in the web UI");
  }
  const Asset* index = Find(assets, "/index.html");
  if (index == nullptr) {
    return http::Response::Error(404, "not_found",
                                 "no route for " + what + " (this build has no web UI)");
  }
  return Answer(*index, request);
}

Status AddUiRoutes(http::Router& router, std::span<const Asset> assets) {
  http::RouteOptions options;
  options.blocking = false;  // the files are in memory: nothing here waits
  auto serve = [assets](const http::Request& request, http::Responder responder) {
    responder.Send(Serve(assets, request));
  };
  Status added = router.Add("GET", "/", serve, options);
  if (!added.ok()) return added;
  router.SetGetFallback(serve, options);
  return Status::Ok();
}

}  // namespace driftless::server::ui
