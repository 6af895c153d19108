#pragma once

#include <string>
#include <string_view>
#include <vector>

// What a postgres.grant's `on` means: the privileges that exist for it and how GRANT names it.

namespace driftless::providers::postgres {

/// One value of `on`.
struct GrantTarget {
  std::string_view on;                       ///< "tables"
  std::vector<std::string_view> privileges;  ///< every privilege of the object type, sorted
};

/// The target for `on`, or nullptr when it is not one.
const GrantTarget* FindGrantTarget(std::string_view on);

/// Appends the privilege `name` (any case; "ALL" / "ALL PRIVILEGES" is every privilege of the
/// target, "TEMP" is "TEMPORARY") to `out`, keeping it sorted and without duplicates. False,
/// with the reason in `why`, when the target has no such privilege.
bool ExpandPrivilege(const GrantTarget& target, std::string_view name,
                     std::vector<std::string>* out, std::string* why);

}  // namespace driftless::providers::postgres
