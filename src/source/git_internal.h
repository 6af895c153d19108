#pragma once
// Private to src/source: what git.cc and git_snapshot.cc share. Not part of the module's API.

#include <git2.h>

#include <memory>
#include <mutex>
#include <string>

#include "base/result.h"
#include "source/source.h"

namespace driftless::source::git_internal {

/// Frees a libgit2 object with its own free function (for std::unique_ptr).
template <auto Free>
struct GitFree {
  template <typename T>
  void operator()(T* p) const {
    Free(p);
  }
};
using RepositoryPtr = std::unique_ptr<git_repository, GitFree<git_repository_free>>;
using OdbPtr = std::unique_ptr<git_odb, GitFree<git_odb_free>>;
using OdbObjectPtr = std::unique_ptr<git_odb_object, GitFree<git_odb_object_free>>;
using CommitPtr = std::unique_ptr<git_commit, GitFree<git_commit_free>>;
using TreePtr = std::unique_ptr<git_tree, GitFree<git_tree_free>>;
using ObjectPtr = std::unique_ptr<git_object, GitFree<git_object_free>>;
using ReferencePtr = std::unique_ptr<git_reference, GitFree<git_reference_free>>;
using ConfigPtr = std::unique_ptr<git_config, GitFree<git_config_free>>;
using RemotePtr = std::unique_ptr<git_remote, GitFree<git_remote_free>>;
using RevwalkPtr = std::unique_ptr<git_revwalk, GitFree<git_revwalk_free>>;
using BranchIteratorPtr = std::unique_ptr<git_branch_iterator, GitFree<git_branch_iterator_free>>;

/// Initialises libgit2 once per process (never shut down: other threads may still use it).
void InitLibgit2();

/// libgit2's message for the last error on this thread (its error state is thread-local).
std::string LastGitError();

/// The 40-hex form of an object id.
std::string OidHex(const git_oid& oid);

/// A URL with any password removed ("https://user:***@host/x"), for messages and logs.
std::string RedactUrl(const std::string& url);

/// One opened repository, shared by a GitRepository and every Source it made, so a snapshot
/// stays readable after the GitRepository is gone.
///
/// Threading (libgit2 docs/threading.md): a git_repository and the objects read through it may
/// be used by one thread at a time, so every call that takes `repo` holds `mu`. The object
/// database is the documented exception: since libgit2 1.2 a git_odb locks internally and its
/// object cache is guarded by a read-write lock (libgit2 PR #5595, docs updated in #6109), so
/// Snapshot reads blobs with git_odb_read on `odb` without taking `mu` -- the loader's parallel
/// ReadFile calls never queue behind each other. When libgit2 was built without thread support
/// (git_libgit2_features() lacks GIT_FEATURE_THREADS) its internal locks are no-ops and blob
/// reads take `mu` too (`odb_needs_lock`).
struct RepoHandle {
  RepositoryPtr repo;
  OdbPtr odb;  ///< the repository's object database, fetched once while opening
  bool odb_needs_lock = false;
  std::mutex mu;  ///< guards every use of `repo`
};

/// A Source over the tree of `commit` (the caller holds handle->mu). `location` names the
/// repository in messages.
Result<std::unique_ptr<Source>> MakeSnapshot(std::shared_ptr<RepoHandle> handle,
                                             const git_commit* commit, const std::string& location);

}  // namespace driftless::source::git_internal
