#pragma once

#include <cstddef>
#include <string>

namespace driftless::test {

/// Runs a shell command (standard error with standard output) and returns its output without
/// the last newlines; fails the test when the command fails.
std::string Sh(const std::string& command);

/// For tests that drive git: makes git ignore the user's and the system's configuration
/// (signing, hooks, default branch) and returns a new empty folder under the system's
/// temporary folder, named "<prefix>.XXXXXX" (its canonical path); "" after a failure.
std::string GitTestDir(const std::string& prefix);

/// `git -C REPO ARGS` (a shell command line) with a fixed author and main as the default
/// branch; its output (Sh).
std::string GitIn(const std::string& repo, const std::string& args);
/// Writes `content` to REPO/REL, making its folders; fails the test when it cannot.
void WriteIn(const std::string& repo, const std::string& rel, const std::string& content);
/// Stages everything in REPO and commits it as `message`; the new commit's id.
std::string CommitIn(const std::string& repo, const std::string& message);

/// The descriptors this process has open (the entries of /proc/self/fd).
size_t OpenDescriptors();

}  // namespace driftless::test
