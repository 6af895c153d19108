#include "providers/postgres/grant_privileges.h"

#include <algorithm>
#include <cctype>

namespace driftless::providers::postgres {

const GrantTarget* FindGrantTarget(std::string_view on) {
  static const std::vector<GrantTarget> kTargets = {
      {"database", {"CONNECT", "CREATE", "TEMPORARY"}},
      {"schema", {"CREATE", "USAGE"}},
      {"tables", {"DELETE", "INSERT", "REFERENCES", "SELECT", "TRIGGER", "TRUNCATE", "UPDATE"}},
      {"table", {"DELETE", "INSERT", "REFERENCES", "SELECT", "TRIGGER", "TRUNCATE", "UPDATE"}},
      {"sequences", {"SELECT", "UPDATE", "USAGE"}},
      {"functions", {"EXECUTE"}},
  };
  for (const auto& t : kTargets) {
    if (t.on == on) return &t;
  }
  return nullptr;
}

bool ExpandPrivilege(const GrantTarget& target, std::string_view name,
                     std::vector<std::string>* out, std::string* why) {
  std::string upper;
  bool space = false;
  for (char c : name) {  // upper case, runs of spaces as one, trimmed
    if (std::isspace(static_cast<unsigned char>(c))) {
      space = !upper.empty();
      continue;
    }
    if (space) upper += ' ';
    space = false;
    upper += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  if (upper == "TEMP") upper = "TEMPORARY";
  std::vector<std::string> add;
  if (upper == "ALL" || upper == "ALL PRIVILEGES") {
    for (auto p : target.privileges) add.emplace_back(p);
  } else if (std::find(target.privileges.begin(), target.privileges.end(), upper) !=
             target.privileges.end()) {
    add.push_back(upper);
  } else {
    std::string known;
    for (auto p : target.privileges) known += (known.empty() ? "" : ", ") + std::string(p);
    *why = "\"" + std::string(name) + "\" is not a privilege on " + std::string(target.on) +
           " (known: " + known + ", ALL)";
    return false;
  }
  for (auto& p : add) {
    auto it = std::lower_bound(out->begin(), out->end(), p);
    if (it == out->end() || *it != p) out->insert(it, p);
  }
  return true;
}

}  // namespace driftless::providers::postgres
