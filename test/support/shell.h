#pragma once

#include <string>

namespace driftless::test {

/// Runs a shell command (standard error with standard output) and returns its output without
/// the last newlines; fails the test when the command fails.
std::string Sh(const std::string& command);

}  // namespace driftless::test
