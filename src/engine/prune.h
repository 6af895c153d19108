#pragma once

#include <string>
#include <vector>

#include "engine/apply.h"
#include "engine/operation.h"
#include "engine/workspace.h"

namespace driftless::engine {

/// An environment that prune found to be gone (its branch deleted, or its ttl passed since its
/// branch's last commit), and what it does with it.
struct PruneCandidate {
  enum class Decision {
    kUnreadable,    ///< its branch is gone and the declarations it last applied cannot be read:
                    ///< kept (a failure)
    kProtected,     ///< kept: protected environments are never pruned
    kWouldDestroy,  ///< listed only (PruneRequest::destroy is false)
    kDestroy,       ///< destroyed next
  };
  std::string environment;
  std::string reason;  ///< "its branch is gone", "no commit on feature/x for 80h (ttl 72h)"
  size_t resources = 0;
  Decision decision = Decision::kWouldDestroy;
};

/// What to prune.
struct PruneRequest {
  bool destroy = false;  ///< destroy the candidates (else only list them)
  /// Stops before the next destroy and inside the one running (may be null).
  const StopToken* stop = nullptr;
};

/// Callbacks of a prune: each candidate, and one Observer per destroy (each is a run of its
/// own: planned, applied and recorded like `destroy`).
class PruneObserver {
 public:
  virtual ~PruneObserver() = default;
  /// A candidate, in environment name order, before anything is done to it.
  virtual void OnCandidate(const PruneCandidate& candidate) { (void)candidate; }
  /// The observer of the destroy of `candidate` (the default ignores everything).
  virtual Observer& DestroyObserver(const PruneCandidate& candidate);
  /// The destroy of `candidate` ended; `error` says why it could not start (then `report` is
  /// empty).
  virtual void OnDestroyed(const PruneCandidate& candidate, const std::string& error,
                           const ApplyReport& report) {
    (void)candidate, (void)error, (void)report;
  }

 private:
  Observer ignore_;
};

/// The outcome of a prune. Exit-code facts: ok().
struct PruneReport {
  Failure failure;  ///< the environments could not be listed, or a stop came before a destroy
  std::vector<PruneCandidate> candidates;
  int failures = 0;  ///< unreadable candidates and destroys that did not succeed
  /// True when nothing failed.
  bool ok() const { return !failure.any() && failures == 0; }
};

/// Finds the environments whose branch is gone or whose ttl passed and, with `destroy`,
/// destroys each that is not protected (DestroyEnvironment on a workspace of its own).
/// Protection of an environment whose branch is gone is read from the commit it last applied.
PruneReport Prune(Workspace& ws, const PruneRequest& request, PruneObserver& observer);

}  // namespace driftless::engine
