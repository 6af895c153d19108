#include "state/control_store.h"

#include <algorithm>

namespace driftless::state {

const std::vector<std::string>& RunStatuses() {
  static const std::vector<std::string> kStatuses = {
      "queued",     "planning", "planned",  "awaiting_approval", "applying",   "applied",
      "no_changes", "errored",  "canceled", "superseded",        "interrupted"};
  return kStatuses;
}

bool IsActiveRunStatus(std::string_view status) {
  return status == "planning" || status == "applying";
}

bool IsFinalRunStatus(std::string_view status) {
  return status == "applied" || status == "no_changes" || status == "errored" ||
         status == "canceled" || status == "superseded" || status == "interrupted";
}

bool RunTransitionAllowed(std::string_view from, std::string_view to) {
  struct Edge {
    std::string_view from;
    std::vector<std::string_view> to;
  };
  static const std::vector<Edge> kEdges = {
      {"queued", {"planning", "applying", "canceled", "superseded"}},
      {"planning",
       {"planned", "awaiting_approval", "no_changes", "errored", "canceled", "interrupted"}},
      {"planned", {"applying", "awaiting_approval", "canceled", "superseded", "errored"}},
      {"awaiting_approval", {"applying", "planned", "canceled", "superseded", "errored"}},
      {"applying", {"applied", "errored", "canceled", "interrupted"}},
  };
  for (const Edge& e : kEdges) {
    if (e.from == from) return std::find(e.to.begin(), e.to.end(), to) != e.to.end();
  }
  return false;
}

}  // namespace driftless::state
