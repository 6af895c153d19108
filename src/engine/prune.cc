#include "engine/prune.h"

#include "base/identity.h"
#include "engine/environments.h"

namespace driftless::engine {

Observer& PruneObserver::DestroyObserver(const PruneCandidate&) { return ignore_; }

PruneReport Prune(Workspace& ws, const PruneRequest& request, PruneObserver& observer) {
  PruneReport report;
  Result<source::GitRepository*> repo = ws.Repo();
  if (!repo.ok()) {
    report.failure.message = repo.error().message;
    return report;
  }
  if (*repo == nullptr) {
    report.failure.message = "env prune needs a Git repository: environments are branches";
    return report;
  }
  Result<std::vector<EnvironmentSummary>> rows = SummarizeEnvironments(ws);
  if (!rows.ok()) {
    report.failure.message = rows.error().message;
    return report;
  }
  Result<const std::vector<BranchEnvironment>*> branches = ws.BranchEnvironments();
  if (!branches.ok()) {
    report.failure.message = branches.error().message;
    return report;
  }
  const int64_t now = NowUnix();
  for (const EnvironmentSummary& r : *rows) {
    if (r.resources == 0) continue;  // nothing to destroy (never applied, or destroyed already)
    PruneCandidate c;
    c.environment = r.name;
    c.resources = r.resources;
    bool is_protected = r.is_protected;
    if (r.branch == "(gone)") {
      c.reason = "its branch is gone";
      // Protection is read from the commit it runs (the branch's rules are gone with it).
      Workspace probe(ws.options());
      Diagnostics d;
      Result<config::Environment*> e = MakeError("no commit to read");
      if (probe.Select(r.name).ok()) e = probe.Evaluate(r.name, false, false, d);
      if (!e.ok()) {
        c.decision = PruneCandidate::Decision::kUnreadable;
        ++report.failures;
        observer.OnCandidate(c);
        report.candidates.push_back(std::move(c));
        continue;
      }
      is_protected = (*e)->match().is_protected();
    } else {
      for (const auto& be : **branches) {
        if (be.match.name != r.name) continue;
        int64_t ttl = be.match.ttl_seconds();
        if (ttl > 0 && now - be.branch.head.time > ttl) {
          c.reason = "no commit on " + be.branch.name + " for " +
                     std::to_string((now - be.branch.head.time) / 3600) + "h (ttl " +
                     std::to_string(ttl / 3600) + "h)";
        }
      }
    }
    if (c.reason.empty()) continue;
    c.decision = is_protected       ? PruneCandidate::Decision::kProtected
                 : !request.destroy ? PruneCandidate::Decision::kWouldDestroy
                                    : PruneCandidate::Decision::kDestroy;
    if (c.decision == PruneCandidate::Decision::kDestroy && request.stop != nullptr &&
        request.stop->stop_requested()) {
      report.failure.message = "stopped before destroying environment " + c.environment;
      return report;
    }
    observer.OnCandidate(c);
    report.candidates.push_back(c);
    if (c.decision != PruneCandidate::Decision::kDestroy) continue;
    Workspace each(ws.options());
    Status s = each.Select(c.environment);
    if (!s.ok()) {
      ++report.failures;
      observer.OnDestroyed(c, s.error().message, ApplyReport());
      continue;
    }
    ApplyRequest destroy;
    destroy.destroy = true;
    destroy.stop = request.stop;
    ApplyReport done = ApplyEnvironment(each, destroy, observer.DestroyObserver(c));
    if (!done.ok()) ++report.failures;
    observer.OnDestroyed(c, "", done);
  }
  return report;
}

}  // namespace driftless::engine
