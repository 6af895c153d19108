#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace driftless::providers::file {

/// Why `path` is not a usable path relative to `root` (used in the message only), or "" when it
/// is. A usable path is relative and '/'-separated, with no empty, "." or ".." segment, no NUL
/// byte, segments of at most 255 bytes and at most 4095 bytes in all.
std::string PathProblem(std::string_view path, std::string_view root);

/// Splits a checked relative path into its folder part ("" for the root) and its last segment.
std::pair<std::string_view, std::string_view> SplitParent(std::string_view path);

/// Parses a mode written as 1 to 5 octal digits ("644", "0644", "04755") of at most 07777.
std::optional<unsigned> ParseMode(std::string_view text);

/// The canonical form of a mode: 4 octal digits ("0644").
std::string FormatMode(unsigned mode);

/// Parses a numeric user or group id ("0", "1000"); std::nullopt unless it is all digits and
/// below 4294967295 (which means "no change" to chown).
std::optional<unsigned> ParseNumericId(std::string_view text);

/// The root joined with a relative path, for messages ("/srv/x" + "a/b" -> "/srv/x/a/b").
std::string DisplayPath(std::string_view root, std::string_view rel);

/// Checks a target root (absolute, no "." or ".." segment, no NUL) and returns it without
/// repeated or trailing slashes; std::nullopt with `problem` set when it is unusable.
std::optional<std::string> CanonicalRoot(std::string_view root, std::string& problem);

}  // namespace driftless::providers::file
