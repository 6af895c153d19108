#include "providers/postgres/import_id.h"

namespace driftless::providers::postgres {

Result<std::vector<IdPart>> ParseImportId(std::string_view id) {
  std::vector<IdPart> parts(1);
  std::string name;
  bool quoted = false;  // the current name was quoted (and its quote closed)
  bool any = false;     // the current name has begun
  auto fail = [&](const std::string& why) {
    return MakeError("ID \"" + std::string(id) + "\" does not parse: " + why);
  };
  auto end_name = [&]() -> Status {
    if (!any) return MakeError("an empty name");
    parts.back().push_back(std::move(name));
    name.clear();
    quoted = any = false;
    return Status::Ok();
  };
  for (size_t i = 0; i < id.size(); ++i) {
    const char c = id[i];
    if (c == '/' || c == ',') {
      if (Status s = end_name(); !s.ok()) {
        return fail(s.error().message + " before the \"" + std::string(1, c) + "\" at byte " +
                    std::to_string(i + 1));
      }
      if (c == '/') parts.emplace_back();
      continue;
    }
    if (quoted) {
      return fail("text after the closing quote at byte " + std::to_string(i + 1) +
                  " (a name in quotes ends at its quote)");
    }
    if (c != '"') {
      any = true;
      name += c;
      continue;
    }
    if (any) {
      return fail("a quote inside the name \"" + name + "...\" at byte " + std::to_string(i + 1) +
                  "; write the whole name in double quotes, with each quote doubled");
    }
    // A quoted name: up to the next lone quote.
    size_t j = i + 1;
    for (;; ++j) {
      if (j >= id.size())
        return fail("the quote at byte " + std::to_string(i + 1) + " is not closed");
      if (id[j] != '"') {
        name += id[j];
      } else if (j + 1 < id.size() && id[j + 1] == '"') {
        name += '"';
        ++j;
      } else {
        break;
      }
    }
    any = quoted = true;
    i = j;
  }
  if (Status s = end_name(); !s.ok()) {
    return fail(s.error().message + (id.empty() ? "" : " at the end"));
  }
  return parts;
}

std::string FormatIdName(std::string_view name) {
  if (!name.empty() && name.find_first_of("/,\"") == std::string_view::npos) {
    return std::string(name);
  }
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string FormatImportId(const std::vector<IdPart>& parts) {
  std::string out;
  for (size_t p = 0; p < parts.size(); ++p) {
    if (p > 0) out += '/';
    for (size_t n = 0; n < parts[p].size(); ++n) {
      if (n > 0) out += ',';
      out += FormatIdName(parts[p][n]);
    }
  }
  return out;
}

}  // namespace driftless::providers::postgres
