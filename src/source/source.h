#pragma once

#include <string>
#include <vector>

#include "base/result.h"

namespace driftless::source {

/// Where declarations come from: a snapshot of a repository's files. Today a folder; a Git commit
/// implements the same interface, so the planner never knows which it reads.
/// Implementations are safe to call from several threads at once.
class Source {
 public:
  virtual ~Source() = default;

  /// Every file's path relative to the root, '/'-separated, sorted. Folders named `.git` and
  /// `.driftless` are skipped.
  virtual Result<std::vector<std::string>> ListFiles() const = 0;
  /// The bytes of one file (path as returned by ListFiles, or a relative path).
  virtual Result<std::string> ReadFile(const std::string& path) const = 0;
  /// For messages: "folder ./shop" or "commit 1a2b3c4 of ./shop".
  virtual std::string Describe() const = 0;
  /// The revision this snapshot is (a commit id), or "" for a folder.
  virtual std::string Revision() const { return ""; }
};

/// A folder on disk.
class DirectorySource : public Source {
 public:
  explicit DirectorySource(std::string root);
  Result<std::vector<std::string>> ListFiles() const override;
  Result<std::string> ReadFile(const std::string& path) const override;
  std::string Describe() const override { return "folder " + root_; }
  const std::string& root() const { return root_; }

 private:
  std::string root_;
};

}  // namespace driftless::source
