#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace driftless::state::sqlite_detail {

/// A JSON array of strings (`["a","b"]`), the stored form of a resource's depends_on.
std::string EncodeStringList(const std::vector<std::string>& items);

/// Parses a JSON array of strings into `out` (replacing its contents). Returns false, leaving
/// `out` unspecified, when `json` is anything else.
bool DecodeStringList(std::string_view json, std::vector<std::string>* out);

}  // namespace driftless::state::sqlite_detail
