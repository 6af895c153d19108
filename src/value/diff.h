#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace driftless::value {

/// One line of a line diff.
struct DiffLine {
  enum class Op : char { kContext = ' ', kDelete = '-', kInsert = '+' };
  Op op;
  std::string text;
};

/// The lines of `before` and `after` as an edit script (Myers' O(ND) algorithm).
std::vector<DiffLine> DiffLines(std::string_view before, std::string_view after);

/// A unified diff ("@@ -a,b +c,d @@" hunks, `context` lines around changes); "" when equal.
/// Headers ("--- label", "+++ label") are included when the labels are non-empty.
std::string UnifiedDiff(std::string_view before, std::string_view after,
                        std::string_view before_label = "", std::string_view after_label = "",
                        int context = 3);

}  // namespace driftless::value
