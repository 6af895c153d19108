#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace driftless {

/// Splits on every occurrence of sep (empty parts kept).
std::vector<std::string> Split(std::string_view s, char sep);
/// Joins with sep.
std::string Join(const std::vector<std::string>& parts, std::string_view sep);
bool StartsWith(std::string_view s, std::string_view prefix);
/// `s` with A-Z made a-z (header names, media types, keywords: ASCII only).
std::string AsciiLower(std::string_view s);
bool EndsWith(std::string_view s, std::string_view suffix);
/// Removes leading and trailing ASCII white space.
std::string_view Trim(std::string_view s);
/// Quotes s as a JSON string literal.
std::string Quote(std::string_view s);
/// Appends s quoted as a JSON string literal.
void AppendQuoted(std::string& out, std::string_view s);
/// Glob match of a slash-separated path: `*` matches within one segment, `**` any number of
/// segments, `?` one character.
bool GlobMatch(std::string_view pattern, std::string_view path);
/// Human-readable byte count ("1.5 MiB").
std::string HumanBytes(uint64_t bytes);
/// Seconds with a sensible precision ("0.042s", "12.3s").
std::string HumanSeconds(double seconds);

}  // namespace driftless
