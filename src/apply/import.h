#pragma once

#include <optional>
#include <string>

#include "base/diagnostics.h"
#include "config/evaluate.h"
#include "plan/plan.h"
#include "state/state_store.h"

namespace driftless::apply {

/// What `state import` is asked to take under management.
struct ImportRequest {
  std::string address;         ///< a resource of the environment's declarations ("kind/name")
  std::string id;              ///< the live object, in its kind's import form (Target::ReadById)
  std::string commit_subject;  ///< for history, as ApplyOptions has them
  std::string commit_author;
};

/// What an import did.
struct ImportResult {
  int64_t apply_id = 0;     ///< its record in history (kind "import")
  std::string target;       ///< the target's name
  std::string where;        ///< the target as messages describe it (Target::Describe)
  value::Value attributes;  ///< what was recorded as applied (secrets protected)
  /// The declaration equals the live object on every compared field: recorded as if applied
  /// from it, and the next plan leaves the resource alone.
  bool matches = false;
  /// The resource in the next plan, planned against what was recorded: std::nullopt when
  /// unchanged, else its change (an update or replace the declaration asks for, or a note such
  /// as "paused").
  std::optional<plan::Change> next;
  Diagnostics problems;  ///< what would make the next plan fail (prevent_destroy on a replace)
};

/// Takes the existing object `request.id` under management as `request.address`, which `env`
/// declares, without changing it: reads it through its target (Target::ReadById), plans the
/// resource against it, and records it as applied under `lock`, as one apply of kind "import"
/// (who, when, commit, the recorded attributes as its diff). What is recorded is the live
/// object; its spec hash is the declaration's when the two are equal (the next plan does
/// nothing), else plan::kImportedSpecHash (the next plan updates it to the declaration). Fails,
/// recording nothing, when the address is not declared or is in state already, when the ID does
/// not parse, names another object than the declaration or an object that does not exist, or
/// when `lock` is no longer current. The environment must have been evaluated with its state's
/// salt.
Result<ImportResult> Import(config::Environment& env, state::StateStore& store, state::Lock& lock,
                            const ImportRequest& request);

}  // namespace driftless::apply
