#pragma once

#include <string>

#include "value/value.h"

namespace driftless::value {

/// Renders a value as stable, YAML-like text for people and line diffs: keys sorted, one
/// scalar per line, multi-line strings as `|` blocks so that a file's content diffs line by line.
/// Sensitive values render as `(sensitive)`, unknown ones as `(known after apply)`.
std::string RenderText(const Value& v);

/// A copy in which every sensitive value is replaced by the string "(sensitive)".
Value Redact(const Value& v);

}  // namespace driftless::value

namespace driftless::value {

/// A copy in which every sensitive value is replaced by a salted hash of it, written as the
/// string "(sensitive:<hex>)" and still flagged sensitive. Two equal secrets under one salt give
/// equal results, so a changed secret is seen without storing it.
Value Protect(const Value& v, std::string_view salt);

/// True for a string produced by Protect.
bool IsProtected(const Value& v);

}  // namespace driftless::value
