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
