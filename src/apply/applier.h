#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <vector>

#include "config/evaluate.h"
#include "plan/plan.h"
#include "state/state_store.h"

namespace driftless::apply {

/// Progress of an apply, for terminals.
struct Progress {
  size_t done = 0;      ///< changes finished (succeeded, failed or skipped)
  size_t total = 0;     ///< changes to do
  std::string address;  ///< the change that just finished
  std::string status;   ///< "done", "failed", "skipped"
  std::string error;
};

/// How to apply.
struct ApplyOptions {
  int parallelism = 8;
  std::string kind = "apply";  ///< recorded in history: "apply", "destroy", "remediation"
  std::string commit_subject;
  std::string commit_author;
  int64_t lease_seconds = 60;
  /// Called after each change, from the apply's threads (serialised).
  std::function<void(const Progress&)> on_progress;
  /// Set to stop starting new changes (Ctrl-C).
  const std::atomic<bool>* cancel = nullptr;
};

/// The outcome.
struct ApplyResult {
  int64_t apply_id = 0;
  std::string status;   ///< "succeeded", "failed", "interrupted"
  std::string summary;  ///< "3 created, 1 updated, 1 deleted, 1 failed, 2 skipped"
  size_t done = 0, failed = 0, skipped = 0;
  std::vector<std::string> errors;  ///< "ADDRESS: message", one per failed or skipped change
};

/// Applies `plan` to the environment's targets, recording everything in `store` under `lock`.
/// The plan must have been made from `env` and the state at `lock` time. Returns an error only
/// when no change was made (the lock was lost before the first: the start or the intents could
/// not be recorded); failures of single
/// resources are in the result. Takes the plan (pass it with std::move): its diffs move into
/// the history instead of being copied.
Result<ApplyResult> Apply(config::Environment& env, plan::Plan plan, state::StateStore& store,
                          state::Lock& lock, const ApplyOptions& options);

}  // namespace driftless::apply
