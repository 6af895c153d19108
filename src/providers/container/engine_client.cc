#include "providers/container/engine_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <cstdlib>

#include "base/strings.h"

namespace driftless::providers::container {

using value::Value;

namespace {

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

size_t Append(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

bool AllDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

Result<Endpoint> ParseEndpoint(const std::string& text, const std::string& tls_ca,
                               const std::string& tls_cert, const std::string& tls_key) {
  Endpoint e;
  e.text = text;
  e.tls_ca = tls_ca;
  e.tls_cert = tls_cert;
  e.tls_key = tls_key;
  const std::string hint = " (expected unix:///path/to/socket or tcp://host:port)";
  if (StartsWith(text, "unix://")) {
    e.socket_path = text.substr(7);
    if (e.socket_path.empty() || e.socket_path[0] != '/') {
      return MakeError("endpoint " + Quote(text) + ": the socket path must be absolute" + hint);
    }
    if (e.tls()) {
      return MakeError("endpoint " + Quote(text) +
                       ": TLS files are for tcp:// endpoints; a unix socket is protected by its "
                       "file permissions");
    }
    return e;
  }
  if (!StartsWith(text, "tcp://")) return MakeError("endpoint " + Quote(text) + ":" + hint);
  std::string rest = text.substr(6);
  if (!rest.empty() && rest.back() == '/') rest.pop_back();
  std::string port;
  if (!rest.empty() && rest[0] == '[') {
    size_t close = rest.find(']');
    if (close == std::string::npos || close + 1 >= rest.size() || rest[close + 1] != ':') {
      return MakeError("endpoint " + Quote(text) + ": an IPv6 address is written [addr]:port");
    }
    e.host = rest.substr(0, close + 1);
    port = rest.substr(close + 2);
  } else {
    size_t colon = rest.rfind(':');
    if (colon == std::string::npos) {
      return MakeError("endpoint " + Quote(text) + ": the port is missing" + hint);
    }
    e.host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
  }
  if (e.host.empty() || e.host.find('/') != std::string::npos ||
      e.host.find('@') != std::string::npos) {
    return MakeError("endpoint " + Quote(text) + ": the host is not valid" + hint);
  }
  if (!AllDigits(port) || port.size() > 5 || std::atoi(port.c_str()) < 1 ||
      std::atoi(port.c_str()) > 65535) {
    return MakeError("endpoint " + Quote(text) + ": the port must be a number from 1 to 65535");
  }
  e.port = std::atoi(port.c_str());
  if (e.tls_cert.empty() != e.tls_key.empty()) {
    return MakeError("endpoint " + Quote(text) +
                     ": tls_cert and tls_key go together (the client certificate and its key)");
  }
  return e;
}

std::string UrlEncode(std::string_view s) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string EngineMessage(const std::string& body) {
  Result<Value> v = value::ParseJson(body);
  if (v.ok() && v->is_object()) {
    const Value* m = v->Find("message");
    if (m != nullptr && m->is_string() && !m->as_string().empty()) return m->as_string();
  }
  std::string text(Trim(body));
  if (text.size() > 300) text = text.substr(0, 300) + "...";
  return text.empty() ? "(no message)" : text;
}

EngineClient::EngineClient(Endpoint endpoint) : endpoint_(std::move(endpoint)) {
  GlobalInit();
  if (!endpoint_.socket_path.empty()) {
    base_url_ = "http://engine";  // the host name is not used on a unix socket
  } else {
    base_url_ = std::string(endpoint_.tls() ? "https://" : "http://") + endpoint_.host + ":" +
                std::to_string(endpoint_.port);
  }
}

EngineClient::~EngineClient() {
  for (void* h : idle_) curl_easy_cleanup(static_cast<CURL*>(h));
}

std::string EngineClient::Describe() const { return "engine " + endpoint_.text; }

void* EngineClient::Take() const {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!idle_.empty()) {
      void* h = idle_.back();
      idle_.pop_back();
      return h;
    }
  }
  return curl_easy_init();
}

void EngineClient::Give(void* h) const {
  std::lock_guard<std::mutex> lock(mu_);
  idle_.push_back(h);
}

void EngineClient::Configure(void* handle, const std::string& path) const {
  CURL* c = static_cast<CURL*>(handle);
  curl_easy_reset(c);
  const std::string url = base_url_ + path;
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  if (!endpoint_.socket_path.empty()) {
    curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, endpoint_.socket_path.c_str());
  }
  if (endpoint_.tls()) {
    if (!endpoint_.tls_ca.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, endpoint_.tls_ca.c_str());
    if (!endpoint_.tls_cert.empty()) {
      curl_easy_setopt(c, CURLOPT_SSLCERT, endpoint_.tls_cert.c_str());
      curl_easy_setopt(c, CURLOPT_SSLKEY, endpoint_.tls_key.c_str());
    }
  }
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "driftless");
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
}

Result<HttpResponse> EngineClient::Call(std::string_view method, const std::string& path,
                                        std::string_view body, std::string_view content_type,
                                        long timeout_ms) const {
  CURL* c = static_cast<CURL*>(Take());
  if (c == nullptr) return MakeError("cannot start an HTTP request (libcurl)");
  Configure(c, path);
  HttpResponse response;
  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_slist* headers = nullptr;
  const std::string type = "Content-Type: " + std::string(content_type);
  const std::string m(method);
  if (m == "POST" || m == "PUT") {
    headers = curl_slist_append(headers, type.c_str());
    headers = curl_slist_append(headers, "Expect:");  // no 100-continue round trip
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    if (m == "PUT") curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "PUT");
  } else if (m != "GET") {
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, m.c_str());
  }
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, Append);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &response.body);
  CURLcode rc = curl_easy_perform(c);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &response.status);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, nullptr);
  curl_slist_free_all(headers);
  if (rc != CURLE_OK) {
    curl_easy_cleanup(c);  // its connection may be in any state
    std::string why = errbuf[0] ? errbuf : curl_easy_strerror(rc);
    return MakeError(Describe() + ": " + m + " " + path.substr(0, path.find('?')) + ": " + why);
  }
  Give(c);
  return response;
}

Result<Value> EngineClient::Json(std::string_view method, const std::string& path,
                                 std::string_view body, bool missing_ok,
                                 std::string_view content_type, long timeout_ms) const {
  Result<HttpResponse> r = Call(method, path, body, content_type, timeout_ms);
  if (!r.ok()) return r.error();
  const std::string route = std::string(method) + " " + path.substr(0, path.find('?'));
  if (r->status == 404 && missing_ok) return Value();
  if (r->status == 304) return Value();  // already in that state (start, stop)
  if (r->status < 200 || r->status >= 300) {
    return MakeError(Describe() + ": " + route + ": " + std::to_string(r->status) + " " +
                     EngineMessage(r->body));
  }
  if (Trim(r->body).empty()) return Value();
  Result<Value> v = value::ParseJson(r->body);
  if (!v.ok()) {
    return MakeError(Describe() + ": " + route + ": the answer is not JSON (" + v.error().message +
                     ")");
  }
  return std::move(*v);
}

namespace {

class CurlLineStream final : public LineStream {
 public:
  ~CurlLineStream() override {
    if (multi_ != nullptr) {
      curl_multi_remove_handle(multi_, easy_);
      curl_multi_cleanup(multi_);
    }
    if (easy_ != nullptr) curl_easy_cleanup(easy_);
  }

  bool Open(CURL* easy) {
    easy_ = easy;
    multi_ = curl_multi_init();
    if (multi_ == nullptr) return false;
    curl_easy_setopt(easy_, CURLOPT_WRITEFUNCTION, Append);
    curl_easy_setopt(easy_, CURLOPT_WRITEDATA, &buffer_);
    curl_easy_setopt(easy_, CURLOPT_ERRORBUFFER, errbuf_);
    curl_easy_setopt(easy_, CURLOPT_TCP_KEEPALIVE, 1L);
    return curl_multi_add_handle(multi_, easy_) == CURLM_OK;
  }

  bool Poll(int timeout_ms, std::vector<std::string>* lines, std::string* error) override {
    int running = 0;
    if (curl_multi_perform(multi_, &running) != CURLM_OK) {
      *error = "reading the event stream failed";
      return false;
    }
    if (running > 0 && !HasLine()) {
      curl_multi_poll(multi_, nullptr, 0, std::max(timeout_ms, 0), nullptr);
      curl_multi_perform(multi_, &running);
    }
    Split(lines);
    long status = 0;
    curl_easy_getinfo(easy_, CURLINFO_RESPONSE_CODE, &status);
    if (status != 0 && status != 200) {
      *error =
          "the event stream answered " + std::to_string(status) + ": " + EngineMessage(buffer_);
      return false;
    }
    if (running == 0) {
      int left = 0;
      CURLMsg* msg = curl_multi_info_read(multi_, &left);
      std::string why = errbuf_[0] ? errbuf_ : "the engine closed the event stream";
      if (msg != nullptr && msg->msg == CURLMSG_DONE && msg->data.result != CURLE_OK && !errbuf_[0])
        why = curl_easy_strerror(msg->data.result);
      *error = why;
      return false;
    }
    return true;
  }

 private:
  bool HasLine() const { return buffer_.find('\n') != std::string::npos; }
  void Split(std::vector<std::string>* lines) {
    size_t start = 0;
    while (true) {
      size_t nl = buffer_.find('\n', start);
      if (nl == std::string::npos) break;
      std::string line = buffer_.substr(start, nl - start);
      if (!Trim(line).empty()) lines->push_back(std::move(line));
      start = nl + 1;
    }
    buffer_.erase(0, start);
  }

  CURL* easy_ = nullptr;
  CURLM* multi_ = nullptr;
  std::string buffer_;
  char errbuf_[CURL_ERROR_SIZE] = {0};
};

}  // namespace

Result<std::unique_ptr<LineStream>> EngineClient::Stream(const std::string& path) const {
  CURL* c = curl_easy_init();
  if (c == nullptr) return MakeError("cannot start an HTTP request (libcurl)");
  Configure(c, path);
  auto s = std::make_unique<CurlLineStream>();
  if (!s->Open(c)) return MakeError("cannot start the event stream (libcurl)");
  return std::unique_ptr<LineStream>(std::move(s));
}

}  // namespace driftless::providers::container
