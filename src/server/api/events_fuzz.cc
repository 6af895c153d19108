// libFuzzer entry point for what GET /api/v1/events parses of its query: the `?type=` and
// `?environment=` lists. ParseEventFilterList never crashes; what it accepts is sorted, unique,
// without commas or surrounding spaces, and every part is a valid glob; the selection made of
// them never crashes on any event and never shows an event outside the token's glob. The input
// is split at its first NUL into the list and an event's type (also used as its environment).

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "auth/glob.h"
#include "server/api/events.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace driftless;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  size_t nul = text.find('\0');
  std::string_view list = text.substr(0, nul);
  std::string_view name = nul == std::string_view::npos ? std::string_view() : text.substr(nul + 1);
  Result<std::vector<std::string>> parts = server::api::ParseEventFilterList("type", list);
  if (!parts.ok()) return 0;
  if (!std::is_sorted(parts->begin(), parts->end())) __builtin_trap();
  if (std::adjacent_find(parts->begin(), parts->end()) != parts->end()) __builtin_trap();
  for (const std::string& p : *parts) {
    if (p.empty() || p.find(',') != std::string::npos || p.front() == ' ' || p.back() == ' ') {
      __builtin_trap();
    }
    if (!auth::CheckGlob(p).ok()) __builtin_trap();
  }
  server::api::EventSelection selection;
  selection.token_envs = "team/*";
  selection.types = *parts;
  selection.environments = *parts;
  state::EventRecord event;
  event.type = std::string(name);
  event.environment = std::string(name);
  if (selection.Matches(event) && !auth::GlobMatch("team/*", name)) __builtin_trap();
  return 0;
}
