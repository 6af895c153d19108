// libFuzzer entry point for the postgres provider's quoting: whatever a user writes, QuoteIdent
// and QuoteLiteral produce one token that reads back as exactly that text (so nothing a user
// writes can end the identifier or literal early).

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "providers/postgres/quote.h"

namespace {

// Reads back a token quoted with `q`, undoubling `q` (and `\` when `backslashes`); false when
// the token ends early or is not closed exactly at its end.
bool Unquote(std::string_view token, char q, bool backslashes, std::string* out) {
  if (token.size() < 2 || token.front() != q || token.back() != q) return false;
  out->clear();
  for (size_t i = 1; i + 1 < token.size(); ++i) {
    char c = token[i];
    if (c == q || (backslashes && c == '\\')) {
      if (i + 2 >= token.size() || token[i + 1] != c) return false;  // a lone quote ends it
      ++i;
    }
    out->push_back(c);
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace driftless::providers::postgres;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  std::string back;
  if (text.find('\0') == std::string_view::npos) {
    if (!Unquote(QuoteIdent(text), '"', false, &back) || back != text) __builtin_trap();
  }
  std::string literal = QuoteLiteral(text);
  bool escaped = !literal.empty() && literal[0] == 'E';
  if (!Unquote(std::string_view(literal).substr(escaped ? 1 : 0), '\'', escaped, &back) ||
      back != text) {
    __builtin_trap();
  }
  (void)CheckName(text);
  return 0;
}
