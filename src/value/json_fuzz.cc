// libFuzzer entry point: ParseJson must never crash, hang or leak, and whatever it accepts must
// survive a round trip through ToJson unchanged (state and plan files rely on it).

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "value/value.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  driftless::Result<driftless::value::Value> v = driftless::value::ParseJson(text);
  if (!v.ok()) {
    if (v.error().message.empty()) __builtin_trap();
    return 0;
  }
  std::string again = driftless::value::ToJson(*v);
  driftless::Result<driftless::value::Value> back = driftless::value::ParseJson(again);
  if (!back.ok() || !(*back == *v) || driftless::value::ToJson(*back) != again) __builtin_trap();
  return 0;
}
