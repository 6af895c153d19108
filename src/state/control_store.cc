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
      {"planned",
       {"applying", "awaiting_approval", "canceled", "superseded", "errored", "interrupted"}},
      {"awaiting_approval",
       {"planning", "applying", "planned", "canceled", "superseded", "errored"}},
      {"applying", {"applied", "errored", "canceled", "interrupted"}},
  };
  for (const Edge& e : kEdges) {
    if (e.from == from) return std::find(e.to.begin(), e.to.end(), to) != e.to.end();
  }
  return false;
}

Result<std::optional<RunRecord>> FindRunOfApply(ControlStore& store, const std::string& env,
                                                int64_t apply_id) {
  RunFilter filter;
  filter.environment = env;
  int64_t cursor = 0;
  for (int page = 0; page < 10; ++page) {
    Result<Page<Run>> runs = store.ListRuns(filter, cursor, 500);
    if (!runs.ok()) return runs.error();
    for (Run& r : runs->items) {
      if (r.apply_id != apply_id) continue;
      Result<std::vector<Approval>> approvals = store.ListApprovals(r.id);
      if (!approvals.ok()) return approvals.error();
      return std::optional<RunRecord>(RunRecord{std::move(r), std::move(*approvals)});
    }
    if (runs->next_cursor == 0) break;
    cursor = runs->next_cursor;
  }
  return std::optional<RunRecord>();
}

}  // namespace driftless::state

namespace driftless::state {

namespace {

Error OneServer(const char* what) {
  return Error{std::string("cannot ") + what +
               ": this state keeps one server only (several servers share a PostgreSQL state)"};
}

}  // namespace

Result<bool> NewestRunCovers(ControlStore& store, const std::string& env,
                             const std::string& commit) {
  RunFilter f;
  f.environment = env;
  Result<Page<Run>> last = store.ListRuns(f, 0, 1);
  if (!last.ok()) return last.error();
  if (last->items.empty()) return false;
  const Run& newest = last->items[0];
  return newest.commit == commit && newest.status != "superseded" && newest.status != "canceled" &&
         newest.status != "interrupted";
}

// One process writes a state that is not shared (SharesServers() false): looking, then queueing
// is enough there.
Result<std::optional<EnqueuedRun>> ControlStore::EnqueueRunUnlessCovered(const Run& run) {
  Result<bool> covered = NewestRunCovers(*this, run.environment, run.commit);
  if (!covered.ok()) return covered.error();
  if (*covered) return std::optional<EnqueuedRun>();
  Result<EnqueuedRun> queued = EnqueueRun(run, true);
  if (!queued.ok()) return queued.error();
  return std::optional<EnqueuedRun>(std::move(*queued));
}

Result<std::vector<ServerRecord>> ControlStore::Heartbeat(const ServerRecord&, int64_t) {
  return OneServer("register a server");
}

Status ControlStore::Deregister(const std::string&) { return OneServer("deregister a server"); }

Result<Ownerships> ControlStore::ListOwnerships() { return OneServer("list ownerships"); }

Result<std::optional<Ownership>> ControlStore::TakeOwnership(const std::string&, const std::string&,
                                                             int64_t) {
  return OneServer("take an environment's ownership");
}

Result<std::vector<Ownership>> ControlStore::RenewOwnerships(const std::string&, int64_t) {
  return OneServer("renew ownerships");
}

Status ControlStore::ReleaseOwnership(const std::string&, int64_t) {
  return OneServer("release an ownership");
}

}  // namespace driftless::state
