#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/workspace.h"

namespace driftless::engine {

/// One environment as `env list` shows it: from its branch (when one maps to it) and state.
struct EnvironmentSummary {
  std::string name;
  std::string branch;   ///< "" in a folder; "(gone)" when no branch maps to it any more
  std::string head;     ///< the branch's head, short
  std::string applied;  ///< the commit last applied, short ("" when never)
  int64_t behind = -1;  ///< commits the branch head is ahead of the applied commit; -1: unknown
  bool is_protected = false;
  int64_t serial = 0;
  size_t resources = 0;
  std::string last_apply = "never";  ///< when the last apply started
  std::string status = "-";          ///< "succeeded", "not applied yet", "(locked by ...)"...
};

/// Every environment that a branch maps to or that state knows, sorted by name.
Result<std::vector<EnvironmentSummary>> SummarizeEnvironments(Workspace& ws);

}  // namespace driftless::engine
