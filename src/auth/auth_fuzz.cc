// libFuzzer entry point for what the server parses of a request's Authorization header and of a
// token's glob: HashToken and Base64UrlDecode never crash; what decodes re-encodes to the same
// text (one encoding per value); GlobMatch and CheckGlob never crash and `**` matches anything;
// a rights list that NormalizeRights accepts is canonical once (normalising it again gives the
// same text) and every right in it is granted by the token it is given to. The input is split at
// its first NUL into a glob and a name; the whole input is also read as a rights list.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "auth/glob.h"
#include "auth/rights.h"
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
  for (const char* role : {"viewer", "editor", "admin"}) {
    driftless::Result<std::string> rights = NormalizeRights(text, role);
    if (!rights.ok()) continue;
    driftless::Result<std::string> again = NormalizeRights(*rights, role);
    if (!again.ok() || *again != *rights) __builtin_trap();
    driftless::state::Token token;
    token.role = role;
    token.rights = *rights;
    for (Right r : AllRights()) {
      const bool listed = rights->empty() || TokenHasRight(token, r);
      if (listed && !rights->empty() && !RoleGrants(role, r, false)) __builtin_trap();
    }
  }
  return 0;
}
