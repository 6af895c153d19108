// libFuzzer target for what the CLI parses before it talks to a server: a --server URL
// (ParseServerUrl), an answer's body turned into an error message (DescribeError), and a path
// segment escaped for a route (Escape). Checked on every input: an accepted URL has a unix path
// or an http(s) base without a path, query or user, and parses again to the same; an error
// message holds no control character but line breaks and tabs (it reaches a terminal); an escaped
// segment holds only unreserved characters and percent-escapes, three bytes per escaped byte.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "client/client.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace driftless::client;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  driftless::Result<ServerUrl> url = ParseServerUrl(text);
  if (url.ok()) {
    if (url->unix_path.empty()) {
      const std::string& base = url->base;
      const size_t scheme = base.rfind("http://", 0) == 0    ? 7
                            : base.rfind("https://", 0) == 0 ? 8
                                                             : 0;
      if (scheme == 0) __builtin_trap();
      if (base.find_first_of("/?#@ ", scheme) != std::string::npos) __builtin_trap();
    } else if (url->unix_path.front() != '/') {
      __builtin_trap();
    }
    driftless::Result<ServerUrl> again = ParseServerUrl(url->text);
    if (!again.ok() || again->base != url->base || again->unix_path != url->unix_path)
      __builtin_trap();
  }
  Reply reply;
  reply.status = 400 + static_cast<int>(size % 200);
  reply.body = std::string(text);
  const std::string message = DescribeError("GET", "/api/v1/x", reply);
  for (char c : message) {
    const auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\n' && c != '\t') || u == 0x7f) __builtin_trap();
  }
  const std::string escaped = Escape(text);
  size_t plain = 0;
  for (size_t i = 0; i < escaped.size(); ++i) {
    const char c = escaped[i];
    if (c == '%') {
      i += 2;
      continue;
    }
    const bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                            (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' || c == '~';
    if (!unreserved) __builtin_trap();
    ++plain;
  }
  if (escaped.size() != plain + 3 * (size - plain)) __builtin_trap();
  return 0;
}
