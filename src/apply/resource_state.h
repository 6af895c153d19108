#pragma once

#include <string>
#include <vector>

#include "config/evaluate.h"
#include "state/state_store.h"

namespace driftless::apply {

/// The state row of the declared resource `r` once its object is what the provider `reported`
/// (after a write, or read for an import). What is stored as applied is `attrs` (nullptr: the
/// declared `spec`, as after an apply; an import stores the live object) with the computed
/// fields of `reported`; secrets are protected wherever `spec` has them and wherever a value is
/// sensitive itself, and computed fields of a spec that holds a secret count as secrets. The
/// compared fields are the declared ones. `attrs_out` receives the stored attributes (for
/// references from dependents).
state::ResourceState MakeResourceState(const config::Environment& env, const config::Resource& r,
                                       const value::Value* attrs, const value::Value& spec,
                                       const value::Value& reported, const std::string& spec_hash,
                                       std::vector<std::string> depends_on,
                                       value::Value* attrs_out = nullptr);

}  // namespace driftless::apply
