#pragma once

#include <string>

namespace driftless::test {

/// Runs a shell command (standard error with standard output) and returns its output without
/// the last newlines; fails the test when the command fails.
std::string Sh(const std::string& command);

/// For tests that drive git: makes git ignore the user's and the system's configuration
/// (signing, hooks, default branch) and returns a new empty folder under the system's
/// temporary folder, named "<prefix>.XXXXXX" (its canonical path); "" after a failure.
std::string GitTestDir(const std::string& prefix);

}  // namespace driftless::test
