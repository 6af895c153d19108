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
  /// address, but the plain creates below. Resources that are simply unchanged are only counted
  /// in `unchanged`. Readers of a plan that may hold plain creates go through ForEachChange.
  std::vector<Change> changes;
  /// A plain create (PlanOptions::lean_creates): a declared resource that neither state nor its
  /// target knows, held as its index in the evaluated environment alone, 8 bytes where its
  /// Change is 592 bytes before its planned value and diff (a large creating plan held 59 MB of
  /// them at 100,000). Its Change is made by `make_create` whenever it is read.
  struct Create {
    uint32_t index = 0;   ///< in the evaluated environment
    uint32_t before = 0;  ///< its place in address order: before changes[before]
  };
  /// Sorted by address (as the environment's resources are).
  std::vector<Create> creates;
  /// Makes a plain create's Change, exactly as the planner would have made it: with `whole`,
  /// its planned value and diff too (what text, JSON and intents show), else only what the
  /// hash and the record read. Set by the planner when it kept plain creates; it reads the
  /// evaluated environment the plan was made from, which must outlive every use of it
  /// (CompleteAll before the plan is kept longer).
  std::function<void(uint32_t index, bool whole, Change&)> make_create;
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
  /// Calls on_change(j) for changes[j] and on_create(c) for each plain create c, in address
  /// order.
  template <typename OnChange, typename OnCreate>
  void InAddressOrder(OnChange&& on_change, OnCreate&& on_create) const {
    size_t k = 0;
    for (size_t j = 0; j <= changes.size(); ++j) {
      for (; k < creates.size() && creates[k].before <= j; ++k) on_create(creates[k]);
      if (j < changes.size()) on_change(j);
    }
  }
  /// Calls fn for every change in address order: `changes`, with the plain creates made (whole
  /// or not) one at a time into one scratch Change between them.
  void ForEachChange(const std::function<void(const Change&)>& fn, bool whole = true) const;
  /// Makes every plain create a Change in `changes` and drops `make_create`.
  void CompleteAll();

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
