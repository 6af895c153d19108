// libFuzzer entry point for what the server parses of a request's Authorization header and of a
// token's glob: HashToken and Base64UrlDecode never crash; what decodes re-encodes to the same
// text (one encoding per value); GlobMatch and CheckGlob never crash and `**` matches anything.
// The input is split at its first NUL into a glob and a name.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "auth/glob.h"
#include "auth/token.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace driftless::auth;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)HashToken(text);
  std::string bytes;
  if (Base64UrlDecode(text, &bytes) && Base64UrlEncode(bytes) != text) __builtin_trap();
  size_t nul = text.find('\0');
  std::string_view glob = text.substr(0, nul);
  std::string_view name = nul == std::string_view::npos ? std::string_view() : text.substr(nul + 1);
  (void)CheckGlob(glob);
  bool matched = GlobMatch(glob, name);
  if (glob == name && glob.find('*') == std::string_view::npos && !matched) __builtin_trap();
  if (!GlobMatch("**", name)) __builtin_trap();
  return 0;
}
