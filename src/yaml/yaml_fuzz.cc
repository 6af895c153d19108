// libFuzzer entry point: ParseYaml must never crash, hang or leak on any input.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "yaml/yaml.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  driftless::Diagnostics diags;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto docs = driftless::yaml::ParseYaml(text, "fuzz.yaml", diags);
  // Touch the results so nothing is optimised away, and check the error contract.
  for (const auto& d : docs) {
    if (d.root.line() == 0) __builtin_trap();
  }
  for (const auto& d : diags.items()) {
    if (d.message.empty()) __builtin_trap();
  }
  return 0;
}
