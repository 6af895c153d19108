#pragma once

#include <functional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "config/evaluate.h"
#include "plan/plan.h"
#include "state/state_store.h"

namespace driftless::plan {

/// How a plan is made.
struct PlanOptions {
  int parallelism = 8;   ///< threads reading live objects
  bool destroy = false;  ///< plan the deletion of everything in state
  bool refresh = true;   ///< read live objects (false: compare declared with applied only)
  /// Skip reading live objects whose stamp equals the one in state (Target::ReadIfChanged);
  /// false reads everything (`drift --full`, the watch's periodic scan).
  bool use_stamps = true;
  /// List unchanged resources in Plan::changes too (action no-op), as `--json` and plan files
  /// do; otherwise they are only counted, which keeps a large plan small.
  bool list_unchanged = false;
  /// When set, only these addresses are planned (a step of a stepwise upgrade): every other
  /// declared resource counts as unchanged and no other state row is deleted.
  const std::set<std::string, std::less<>>* only = nullptr;
  /// A create of a resource that neither state nor its target knows is kept as its index alone
  /// (Plan::Create); Plan::make_create makes its Change from `env` when it is read. For a caller
  /// that keeps `env` while it uses the plan (an apply): the Changes were a quarter of a large
  /// creating apply's peak. The plan's hash, text, JSON and record are the same either way.
  bool lean_creates = false;
};

/// What the planner knows of the environment's state. A plan compares hashes only; it reads
/// whole rows (attributes included) just for the resources that change or are deleted.
struct PriorState {
  state::Environment environment;
  /// Every resource in state, sorted by address (StateStore::ListResourceDigests).
  std::vector<state::ResourceDigest> digests;
  /// Reads whole rows (StateStore::GetResources); MakePlan calls it from its own thread, at most
  /// once.
  std::function<Result<std::vector<state::ResourceState>>(const std::vector<std::string>&)> read;
  /// The rows MakePlan read, sorted by address: of the resources that change or are deleted, and
  /// of the dependencies of specs that hold unknowns (apply evaluates those again with their
  /// dependencies' attributes, EvalOptions::applied_attrs).
  std::vector<state::ResourceState> resources;
  std::vector<state::ChangeRecord> pending;  ///< changes in doubt from interrupted applies
};

/// The prior state of `environment` (its row) from `store`, which must outlive it: the digests
/// of its resources, the changes in doubt, and `read` bound to `store`. With `addresses`, only
/// the digests of those rows: enough for a plan with PlanOptions::only when they hold the
/// planned addresses, their moved_from addresses and their dependencies; a check of one
/// resource among 100,000 then reads one row, not all.
Result<PriorState> ReadPriorState(state::StateStore& store, state::Environment environment,
                                  const std::vector<std::string>* addresses = nullptr);

/// The three-way comparison: declared (env) vs applied (prior) vs live (read through the
/// targets). Resources only in state are deleted in reverse dependency order. Errors reading
/// live objects fail the plan with the resource's address. Fills prior.resources.
Result<Plan> MakePlan(config::Environment& env, PriorState& prior, const PlanOptions& options);

/// What StateStore::RecordLiveStamps records for some of Plan::stamps of a plan made from
/// `prior` (their stamps are moved out).
std::vector<state::LiveStamp> LiveStamps(const PriorState& prior, std::span<Plan::NewStamp> stamps);

}  // namespace driftless::plan
