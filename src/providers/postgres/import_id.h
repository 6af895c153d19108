#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

// The import IDs of the postgres kinds (`driftless state import ADDR ID`): names separated by
// "/", and for a grant on tables a list of names separated by ",". A name is written as it is
// (case and spaces kept: no folding as in SQL), or in double quotes with each `"` doubled when
// it holds "/", "," or `"`, or is empty: `"a/b"`, `"say ""hi"""`.

namespace driftless::providers::postgres {

/// The names of one "/"-separated part of an ID (usually one).
using IdPart = std::vector<std::string>;

/// Splits an import ID into parts at "/" and each part into names at ",", outside quotes. Fails
/// (saying where) on an unterminated quote, a `"` inside an unquoted name, text after a closing
/// quote, or an empty unquoted name (`a//b`, a trailing "/").
Result<std::vector<IdPart>> ParseImportId(std::string_view id);

/// One name as an ID writes it: as it is, or quoted when it must be.
std::string FormatIdName(std::string_view name);

/// The ID of `parts`; ParseImportId(FormatImportId(p)) gives `p` back for non-empty parts.
std::string FormatImportId(const std::vector<IdPart>& parts);

}  // namespace driftless::providers::postgres
