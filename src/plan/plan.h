#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "base/diagnostics.h"
#include "state/state_store.h"
#include "value/value.h"

namespace driftless::plan {

/// What apply will do to one resource.
enum class Action { kNoop, kCreate, kUpdate, kReplace, kDelete, kHeal, kRecord };

/// "create", "update", ... as in plans, JSON and history.
std::string_view ActionName(Action a);

/// One resource's planned change.
struct Change {
  std::string address;  ///< "file.file/motd"
  std::string kind;
  std::string name;
  std::string target;
  Action action = Action::kNoop;
  std::string reason;  ///< why, in words ("not yet created", "modified outside driftless")
  /// What an update or heal does in the target's words when it is not a change in place
  /// ("start", "stop", "rename", "recreate": Target::UpdateOperation), else "".
  std::string operation;
  bool drift = false;   ///< live differs from applied
  bool adopt = false;   ///< create takes over an existing object
  std::string warning;  ///< something apply will probably refuse ("already exists")
  value::Value
      prior;  ///< applied attributes, compared fields only (secrets protected); null if none
  value::Value live;       ///< live attributes, compared fields only; null when missing or not read
  value::Value planned;    ///< declared spec (secrets protected); null for delete
  std::string diff;        ///< line diff from what is there now (live, else applied) to planned
  std::string drift_diff;  ///< line diff from applied to live, when drifted
  std::vector<std::string> depends_on;  ///< addresses
  std::string spec_hash;
  value::Value applied_attrs;  ///< everything last applied (secrets protected), for the provider
  std::string prior_address;   ///< address in state when it differs (moved_from), else ""
  int index = -1;  ///< index in the evaluated environment; -1 for a resource only in state
  bool paused = false;
  /// A create that holds neither `planned`, `diff` nor `spec_hash` (PlanOptions::lean_creates):
  /// they are functions of the evaluated spec and `live`, made again by Plan::Complete when read
  /// (the hash by Plan::SpecHashOf).
  bool lean = false;
};

/// One step of a stepwise upgrade (policy.upgrade: stepwise): an earlier commit, or an
/// intermediate version (policy.step), applied and recorded in history as its own apply before
/// the plan's own changes.
struct PlannedStep {
  std::string commit;                    ///< full commit id
  std::string subject;                   ///< "1a2b3c4 the commit's subject"
  std::vector<std::string> addresses;    ///< the stepwise resources it changes
  std::vector<std::string> transitions;  ///< "app/api spec.version: 1.27 -> 1.28", for display
};

/// A plan for one environment: bound to the declarations, the state serial and the revision.
struct Plan {
  std::string environment;
  std::string revision;   ///< commit id, or "" for a folder
  std::string source;     ///< "folder ./x" or "commit ..."
  std::string decl_hash;  ///< hash of the declarations and the vars files of the environment
                          ///< and its bases
  int64_t state_serial = 0;
  bool destroy = false;  ///< a destroy plan
  /// Every resource that changes, drifted or has a note (paused, create_only), sorted by
  /// address. Resources that are simply unchanged are only counted in `unchanged`.
  std::vector<Change> changes;
  size_t unchanged = 0;
  /// Steps applied first, in order (stepwise upgrades); `changes` is then the final step, planned
  /// against the state as it is now.
  std::vector<PlannedStep> steps;
  Diagnostics problems;  ///< errors that make the plan unappliable (prevent_destroy)
  /// Unchanged live objects that were read in full and have a stamp now that state does not
  /// know (StateStore::RecordLiveStamps), so that the next plan need not read them. Not part of
  /// the plan's hash or JSON.
  struct NewStamp {
    size_t row = 0;     ///< the object's digest row: PriorState::digests[row] of the plan
    std::string stamp;  ///< its stamp now
  };
  /// Only the row's index, not a copy of its address and digest: a first plan after an apply
  /// finds one per resource (LiveStamps makes what the store records from them).
  std::vector<NewStamp> stamps;
  /// Makes a lean change's `planned` and `diff` (exactly what the planner would have kept) and
  /// clears its `lean`; set by the planner when it made lean changes. It reads the evaluated
  /// environment the plan was made from, which must outlive every use of it (CompleteAll before
  /// the plan is kept longer).
  std::function<void(Change&)> complete;
  /// The spec hash of a lean change, from the same environment; set with `complete`.
  std::function<const std::string&(const Change&)> lean_spec_hash;

  /// `c` itself, or, for a lean change, a copy of it made whole in `scratch`: what readers of
  /// `planned` and `diff` (rendering, JSON) go through.
  const Change& Complete(const Change& c, Change& scratch) const;
  /// Makes every lean change whole and drops `complete`.
  void CompleteAll();
  /// `c.spec_hash`, or a lean change's.
  const std::string& SpecHashOf(const Change& c) const {
    return c.lean && lean_spec_hash ? lean_spec_hash(c) : c.spec_hash;
  }

  /// Counts per action.
  size_t Count(Action a) const;
  /// True when apply would do anything.
  bool HasChanges() const;
  /// Number of resources that drifted.
  size_t DriftCount() const;
  /// A hash of everything the plan would do; equal plans have equal hashes.
  std::string Hash() const;
  /// "2 to create, 1 to update, 0 to replace, 1 to delete, 0 to heal, 5 unchanged".
  std::string Summary() const;
};

}  // namespace driftless::plan
