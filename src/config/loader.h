#pragma once

#include "base/diagnostics.h"
#include "config/declarations.h"
#include "config/eval_cache.h"
#include "provider/provider.h"
#include "source/source.h"

namespace driftless::config {

/// Reads driftless.yaml and every resource document it includes from `src`, checks them against
/// the providers' schemas, and returns the declarations. Every problem found goes to `diags`
/// (all of them, not just the first); the result is meaningful only when diags has no errors.
/// With `cache`, a file whose bytes and driftless.yaml are those of one of its entries is not
/// parsed: its resources come evaluated from the cache (Resource::spec_evaluated).
Declarations LoadDeclarations(const source::Source& src, const provider::Registry& registry,
                              Diagnostics& diags, const EvalCache* cache = nullptr);

/// Reads and checks driftless.yaml alone: enough to map branches to environments.
Project LoadProject(const source::Source& src, Diagnostics& diags);

/// Parses a `policy:` mapping on top of `base`. Unknown keys and bad values go to diags.
Policy ParsePolicy(const value::Value& v, const std::string& file, Policy base, Diagnostics& diags);

/// "did you mean "x"?" for the candidate closest to `word`, or "" when none is close.
std::string DidYouMean(std::string_view word, const std::vector<std::string>& candidates);

}  // namespace driftless::config
