#pragma once

#include <memory>
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
  /// `revision`: what Revision() reports (a working tree's HEAD commit, or "").
  explicit DirectorySource(std::string root, std::string revision = "");
  Result<std::vector<std::string>> ListFiles() const override;
  Result<std::string> ReadFile(const std::string& path) const override;
  std::string Describe() const override { return "folder " + root_; }
  std::string Revision() const override { return revision_; }
  const std::string& root() const { return root_; }

 private:
  std::string root_;
  std::string revision_;
};

/// The files of another source under one of its folders, as if that folder were the root: a
/// project kept in a subfolder of a repository (a monorepo).
class SubfolderSource : public Source {
 public:
  /// `prefix`: a '/'-separated folder path without leading or trailing '/'.
  SubfolderSource(std::unique_ptr<Source> inner, std::string prefix);
  Result<std::vector<std::string>> ListFiles() const override;
  Result<std::string> ReadFile(const std::string& path) const override;
  std::string Describe() const override { return inner_->Describe() + ", folder " + prefix_; }
  std::string Revision() const override { return inner_->Revision(); }

 private:
  std::unique_ptr<Source> inner_;
  std::string prefix_;
};

}  // namespace driftless::source
