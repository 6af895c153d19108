#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "source/source.h"

namespace driftless::source {

/// One commit, as history and messages show it.
struct CommitInfo {
  std::string id;                    ///< full 40-hex id
  std::string short_id;              ///< first 7 hex
  std::string subject;               ///< first line of the message
  std::string author;                ///< "Name <email>"
  int64_t time = 0;                  ///< committer time, unix seconds
  std::vector<std::string> parents;  ///< full ids, first parent first
};

/// One branch of the repository (local branches of a local repository; the remote's branches
/// of a mirrored one).
struct BranchInfo {
  std::string name;  ///< "main", "staging/login-fix"
  CommitInfo head;   ///< the commit the branch points at
};

/// A Git repository read with libgit2. Commits are read directly from the object database: no
/// checkout is ever made. All methods are safe to call from several threads at once, and so are
/// the Sources that Snapshot returns (the loader reads files in parallel).
class GitRepository {
 public:
  struct Options {
    /// Where remote repositories are mirrored (bare clones, one folder per URL). Default:
    /// $DRIFTLESS_CACHE, else $XDG_CACHE_HOME/driftless, else $HOME/.cache/driftless; the mirror
    /// lives in <cache>/repos/<sha256 of the URL, 16 hex>.
    std::string cache_dir;
    /// Fetch a mirrored repository on Open (all branches, pruning deleted ones). A local
    /// repository is never fetched.
    bool fetch = true;
  };

  /// `location`: a folder inside a working tree, a bare repository's folder, or a URL
  /// (`file://`, `https://`, `ssh://`, `user@host:path`), which is mirrored into the cache and
  /// fetched. Errors name the location and say what to do.
  static Result<std::unique_ptr<GitRepository>> Open(const std::string& location,
                                                     const Options& options);
  /// True when `path` is inside a Git working tree or is a repository (without opening it
  /// for real: used to decide between a folder and a repository).
  static bool IsRepository(const std::string& path);

  ~GitRepository();
  GitRepository(const GitRepository&) = delete;
  GitRepository& operator=(const GitRepository&) = delete;

  /// The location as given to Open.
  const std::string& location() const;
  /// True when the repository is a mirror of a URL.
  bool is_mirror() const;
  /// The root folder of the working tree, or "" for a bare repository or a mirror.
  std::string WorkTree() const;
  /// The branch HEAD points at in a working tree ("main"), or std::nullopt when HEAD is
  /// detached, unborn, or the repository is bare/mirrored.
  std::optional<std::string> CurrentBranch() const;

  /// All branches, sorted by name.
  Result<std::vector<BranchInfo>> Branches() const;
  /// Resolves a branch name, tag, full or abbreviated commit id, `HEAD` or any revision
  /// expression libgit2 understands (`main~2`) to a commit. Branch names are looked up first
  /// (for a mirror: the mirrored branches). Error: "unknown revision X in REPO".
  Result<CommitInfo> Resolve(const std::string& revision) const;
  /// True when `ancestor` is `descendant` or one of its ancestors.
  Result<bool> IsAncestor(const std::string& ancestor, const std::string& descendant) const;
  /// The commits after `from` up to and including `to`, following first parents from `to`,
  /// oldest first. Error when `from` is not on `to`'s first-parent chain (then the caller
  /// treats the move as a jump). `from` == `to` gives an empty list.
  Result<std::vector<CommitInfo>> FirstParentRange(const std::string& from,
                                                   const std::string& to) const;
  /// How many commits `to` has that `from` lacks (git rev-list --count from..to).
  Result<int64_t> CountBetween(const std::string& from, const std::string& to) const;

  /// The files of a commit's tree, read from the object database (blobs read on demand).
  /// Symbolic links and submodules are not files: they are not listed, and reading one is an
  /// error. The Source stays valid after this GitRepository is destroyed.
  Result<std::unique_ptr<Source>> Snapshot(const std::string& commit) const;

 private:
  struct Impl;
  explicit GitRepository(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace driftless::source
