#pragma once

#include <string_view>

#include "base/result.h"

namespace driftless::auth {

/// True when environment `name` matches `glob`: `*` matches any run of characters except `/`
/// (so `preview-*` matches `preview-12` but not `preview-12/api`), `**` any run including `/`
/// (`team/**` matches `team/a` and `team/a/b`, `**` everything); every other character matches
/// itself. Matching is linear in practice (one backtrack point per kind of star).
bool GlobMatch(std::string_view glob, std::string_view name);

/// An error unless `glob` can name environments: not empty, no control characters, no `***`.
Status CheckGlob(std::string_view glob);

}  // namespace driftless::auth
