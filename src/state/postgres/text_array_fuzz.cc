// libFuzzer entry point for what the PostgreSQL state store parses of the server's answers and
// of the user's location: DecodeTextArray never crashes, and what it decodes encodes and decodes
// back to the same items; MaskPassword and IsPostgresUri never crash on any location.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "state/postgres/location.h"
#include "state/postgres/pg_conn.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace driftless::state;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> items;
  if (pg_detail::DecodeTextArray(text, &items)) {
    std::vector<std::string> again;
    if (!pg_detail::DecodeTextArray(pg_detail::EncodeTextArray(items), &again)) __builtin_trap();
    if (again != items) __builtin_trap();
  }
  std::string masked = MaskPassword(text);
  if (IsPostgresUri(text) && !IsPostgresUri(masked)) __builtin_trap();
  return 0;
}
