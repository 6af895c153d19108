#include "auth/glob.h"

#include <string>
#include <vector>

namespace driftless::auth {

bool GlobMatch(std::string_view glob, std::string_view name) {
  if (glob == "**") return true;  // every environment: most tokens, and checked per list row
  // Dynamic programming over (position in glob, position in name): match[j] is true when the
  // glob's prefix read so far matches name[0, j). O(|glob| * |name|), no recursion.
  const size_t n = name.size();
  std::vector<char> match(n + 1, 0), next(n + 1, 0);
  match[0] = 1;
  size_t i = 0;
  while (i < glob.size()) {
    std::fill(next.begin(), next.end(), 0);
    if (glob[i] == '*') {
      const bool deep = i + 1 < glob.size() && glob[i + 1] == '*';
      i += deep ? 2 : 1;
      // A star extends any match by characters it may cover.
      bool reach = false;
      for (size_t j = 0; j <= n; ++j) {
        if (match[j]) reach = true;
        if (reach) next[j] = 1;
        if (j < n && !deep && name[j] == '/') reach = false;
      }
    } else {
      for (size_t j = 0; j < n; ++j) {
        if (match[j] && name[j] == glob[i]) next[j + 1] = 1;
      }
      ++i;
    }
    match.swap(next);
  }
  return match[n] != 0;
}

Status CheckGlob(std::string_view glob) {
  if (glob.empty()) return MakeError("an environment glob is empty (use ** for every environment)");
  for (char c : glob) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return MakeError("environment glob \"" + std::string(glob) + "\" has a control character");
    }
  }
  if (glob.find("***") != std::string_view::npos) {
    return MakeError("environment glob \"" + std::string(glob) +
                     "\" has ***: use * (within a name) or ** (across /)");
  }
  return Status::Ok();
}

}  // namespace driftless::auth
