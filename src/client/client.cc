#include "client/client.h"

#include <curl/curl.h>

#include <fstream>
#include <mutex>
#include <sstream>
#include <utility>

namespace driftless::client {

using value::Value;

namespace {

constexpr std::string_view kForms = "use http://HOST:PORT, https://HOST[:PORT] or unix:///PATH";

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

size_t Collect(char* data, size_t size, size_t count, void* out) {
  static_cast<std::string*>(out)->append(data, size * count);
  return size * count;
}

int Abort(void* cancel, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return static_cast<const std::atomic<bool>*>(cancel)->load() ? 1 : 0;
}

// A short, printable piece of a body that is not an error envelope.
std::string Excerpt(std::string_view body) {
  std::string out;
  for (char c : body.substr(0, 200)) {
    out += (c == '\n' || c == '\r' || c == '\t')    ? ' '
           : (static_cast<unsigned char>(c) < 0x20) ? '?'
                                                    : c;
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  if (body.size() > 200) out += "...";
  return out;
}

}  // namespace

Result<ServerUrl> ParseServerUrl(std::string_view text) {
  ServerUrl url;
  url.text = std::string(text);
  auto bad = [&](const std::string& why) {
    return MakeError("server URL '" + url.text + "': " + why + "; " + std::string(kForms));
  };
  if (text.empty()) return bad("empty");
  if (StartsWith(text, "unix://")) {
    std::string_view path = text.substr(7);
    if (path.empty() || path.front() != '/') return bad("a unix socket's path must be absolute");
    if (path.size() > 107) return bad("the socket path is longer than 107 bytes");
    url.unix_path = std::string(path);
    url.base = "http://localhost";
    return url;
  }
  std::string_view scheme;
  if (StartsWith(text, "http://")) {
    scheme = "http://";
  } else if (StartsWith(text, "https://")) {
    scheme = "https://";
  } else {
    return bad("unknown scheme");
  }
  std::string_view rest = text.substr(scheme.size());
  while (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  if (rest.find_first_of("/?#@ ") != std::string_view::npos) {
    return bad("only a scheme, a host and a port (no path, query or user)");
  }
  if (rest.empty()) return bad("no host");
  // The port: after the last ':' that is not inside an IPv6 [address].
  size_t colon = rest.rfind(':');
  size_t bracket = rest.rfind(']');
  if (colon != std::string_view::npos && (bracket == std::string_view::npos || colon > bracket)) {
    std::string_view port = rest.substr(colon + 1);
    int n = 0;
    bool ok = !port.empty() && port.size() <= 5;
    for (char c : port) {
      if (c < '0' || c > '9') ok = false;
      if (ok) n = n * 10 + (c - '0');
    }
    if (!ok || n < 1 || n > 65535) return bad("the port must be a number from 1 to 65535");
    if (colon == 0) return bad("no host");
  } else if (scheme == "http://") {
    return bad("no port");
  }
  url.base = std::string(scheme) + std::string(rest);
  return url;
}

Result<std::string> LoadToken(const std::string& token_file, const char* env_token) {
  std::string token;
  if (!token_file.empty()) {
    std::ifstream in(token_file);
    if (!in) return MakeError("--token-file " + token_file + ": cannot be read");
    std::getline(in, token);
    while (!token.empty() && (token.back() == '\r' || token.back() == ' ')) token.pop_back();
    if (token.empty()) return MakeError("--token-file " + token_file + ": its first line is empty");
  } else if (env_token != nullptr && *env_token != '\0') {
    token = env_token;
    while (!token.empty() && (token.back() == '\n' || token.back() == ' ')) token.pop_back();
  } else {
    return MakeError(
        "a server needs a token: --token-file FILE or DRIFTLESS_TOKEN (one from `driftless "
        "token create`)");
  }
  for (char c : token) {
    if (static_cast<unsigned char>(c) < 0x21 || c == 0x7f) {
      return MakeError(std::string(token_file.empty() ? "DRIFTLESS_TOKEN" : "--token-file") +
                       ": the token holds a space or a control character");
    }
  }
  return token;
}

std::string DescribeError(std::string_view method, std::string_view route, const Reply& reply) {
  std::string where =
      std::string(method) + " " + std::string(route) + ": HTTP " + std::to_string(reply.status);
  std::string code, message;
  if (Result<Value> parsed = value::ParseJson(reply.body); parsed.ok() && parsed->is_object()) {
    if (const Value* e = parsed->Find("error"); e != nullptr && e->is_object()) {
      if (const Value* c = e->Find("code"); c != nullptr && c->is_string()) code = c->as_string();
      if (const Value* m = e->Find("message"); m != nullptr && m->is_string()) {
        message = m->as_string();
      }
    }
  }
  std::string text;
  if (code.empty() && message.empty()) {
    std::string excerpt = Excerpt(reply.body);
    text = where + (excerpt.empty() ? " (no body)" : " (not an API error: " + excerpt + ")");
  } else {
    text = where + (code.empty() ? "" : " " + code) + ": " + message;
    if (reply.status == 401) text += " (check --token-file or DRIFTLESS_TOKEN)";
  }
  // What the server wrote reaches a terminal: no escape sequences (lines and tabs stay).
  for (char& c : text) {
    const auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\n' && c != '\t') || u == 0x7f) c = '?';
  }
  return text;
}

Client::Client(ServerUrl url, std::string token) : url_(std::move(url)), token_(std::move(token)) {}

Result<Reply> Client::Send(const std::string& method, const std::string& route,
                           const std::string& body) {
  static std::once_flag init;
  std::call_once(init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  CURL* curl = curl_easy_init();
  if (curl == nullptr) return MakeError("cannot start an HTTP request (curl_easy_init)");
  char errbuf[CURL_ERROR_SIZE] = {0};
  std::string url = url_.base + route;
  std::string auth = "Authorization: Bearer " + token_;
  curl_slist* headers = nullptr;
  headers = curl_slist_append(headers, auth.c_str());
  headers = curl_slist_append(headers, "Accept: application/json");
  if (!body.empty()) headers = curl_slist_append(headers, "Content-Type: application/json");
  Reply reply;
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  if (!url_.unix_path.empty())
    curl_easy_setopt(curl, CURLOPT_UNIX_SOCKET_PATH, url_.unix_path.c_str());
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method.c_str());
  if (method == "POST") {
    curl_easy_setopt(curl, CURLOPT_POST, 1L);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  }
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, Collect);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &reply.body);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, "driftless");
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
  if (cancel_ != nullptr) {
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, Abort);
    curl_easy_setopt(curl, CURLOPT_XFERINFODATA, const_cast<std::atomic<bool>*>(cancel_));
  }
  CURLcode rc = curl_easy_perform(curl);
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  // The header held the token: wipe it rather than leave it in freed memory.
  for (char& c : auth) c = '\0';
  if (rc == CURLE_ABORTED_BY_CALLBACK) {
    return MakeError(method + " " + route + ": interrupted");
  }
  if (rc != CURLE_OK) {
    std::string why = errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc);
    return MakeError("cannot reach the server " + url_.text + " (" + method + " " + route +
                     "): " + why);
  }
  reply.status = static_cast<int>(status);
  return reply;
}

Result<Value> Client::Json(const std::string& method, const std::string& route,
                           const std::string& body) {
  Result<Reply> reply = Send(method, route, body);
  if (!reply.ok()) return reply.error();
  if (reply->status < 200 || reply->status > 299) {
    return MakeError(DescribeError(method, route, *reply));
  }
  Result<Value> parsed = value::ParseJson(reply->body);
  if (!parsed.ok()) {
    return MakeError(method + " " + route + ": HTTP " + std::to_string(reply->status) +
                     " but the answer is not JSON: " + parsed.error().message);
  }
  return std::move(*parsed);
}

Result<Value> Client::Get(const std::string& route) { return Json("GET", route, ""); }

Result<Value> Client::Post(const std::string& route, const Value& body) {
  return Json("POST", route, value::ToJson(body));
}

std::string Escape(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char ch : text) {
    auto c = static_cast<unsigned char>(ch);
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '_' || c == '.' || c == '~') {
      out += ch;
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

}  // namespace driftless::client
