#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "base/result.h"

// File-system primitives confined beneath a target root. Every lookup starts at a descriptor of
// the root and never follows a symlink: the kernel's openat2(RESOLVE_BENEATH |
// RESOLVE_NO_SYMLINKS) where available, otherwise a walk of openat(O_NOFOLLOW | O_DIRECTORY),
// one component at a time. Paths given here must have passed PathProblem (paths.h).

namespace driftless::providers::file {

/// An owned file descriptor, closed when it goes away.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() { reset(); }
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  /// Gives up ownership.
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }
  /// Closes the current descriptor and takes `fd`.
  void reset(int fd = -1);

 private:
  int fd_ = -1;
};

/// A folder beneath the root: an owned descriptor, or the root's own one (borrowed).
class DirFd {
 public:
  static DirFd Borrow(int fd) {
    DirFd d;
    d.borrowed_ = fd;
    return d;
  }
  static DirFd Own(UniqueFd fd) {
    DirFd d;
    d.owned_ = std::move(fd);
    return d;
  }
  int get() const { return owned_.valid() ? owned_.get() : borrowed_; }

 private:
  UniqueFd owned_;
  int borrowed_ = -1;
};

/// An open target root: its descriptor and its path (for messages only).
struct RootRef {
  int fd = -1;
  std::string_view path;
};

/// What a path holds, as lstat(2) sees it.
enum class ObjectType { kFile, kDirectory, kSymlink, kOther };

/// The type of an st_mode.
ObjectType TypeOf(mode_t mode);
/// "file", "directory", "symlink", "other".
std::string_view TypeName(ObjectType type);

/// A live object at a path.
struct LiveObject {
  ObjectType type = ObjectType::kOther;
  struct stat st {};        ///< as lstat(2) reports it
  UniqueFd fd;              ///< open read-only (not for symlinks and some special files)
  std::string content;      ///< a regular file's bytes, when they were asked for
  std::string link_target;  ///< a symlink's text
};

/// Opens the folder `rel_dir` ("" is the root itself) without following any symlink. With
/// `create`, missing folders are made with mode 0755. Without it, std::nullopt when a component
/// is missing or is not a folder. A symlink on the way is always an error that names it.
Result<std::optional<DirFd>> OpenDir(const RootRef& root, std::string_view rel_dir, bool create);

/// Looks at `rel` without following symlinks (a symlink is reported as one);
/// std::nullopt when nothing is there or a parent is missing or not a folder.
Result<std::optional<LiveObject>> Inspect(const RootRef& root, std::string_view rel,
                                          bool read_content);

/// lstat(2) of `rel` by the kernel's confined lookup alone (openat2 with O_PATH, which neither
/// opens the file for reading nor releases it: cheaper than Inspect by the file system's own open
/// and release). std::nullopt when that lookup is not available or fails for any reason (nothing
/// there, a symlink on the way or at the end): the caller then looks with Inspect.
std::optional<struct stat> StatBeneath(const RootRef& root, std::string_view rel);

/// StatBeneath for many paths, each folder resolved once: the folder by the kernel's confined
/// lookup (openat2 O_PATH | O_DIRECTORY, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS), kept open, then
/// each entry an fstatat(AT_SYMLINK_NOFOLLOW) of its name in it. A symlink at the end is
/// reported as one (its own lstat, never followed); a symlink or anything but a folder on the
/// way fails the folder's lookup (std::nullopt, as StatBeneath), and so does a failed fstatat.
/// Holds at most kMaxDirs descriptors (all are closed when a new folder would exceed it), closed
/// by Clear or its end. A folder is looked up once for the cache's lifetime: a folder replaced
/// after its lookup (by a symlink, or moved elsewhere) is still the one looked in, so its owner
/// keeps a cache for one plan or check only and takes nothing but stamps from it.
class DirStatCache {
 public:
  static constexpr size_t kMaxDirs = 16;

  std::optional<struct stat> Stat(const RootRef& root, std::string_view rel);
  /// Closes every folder.
  void Clear() { dirs_.clear(); }
  /// The folders open now.
  size_t size() const { return dirs_.size(); }

 private:
  std::unordered_map<std::string, UniqueFd> dirs_;
};

/// The same for the entry `leaf` of an open folder; `display` names it in messages.
Result<std::optional<LiveObject>> InspectAt(int dir_fd, std::string_view leaf, bool read_content,
                                            const std::string& display);

/// Writes `content` as the entry `leaf` of a folder atomically: a temporary file beside it,
/// fchown (unless uid and gid are both -1), fchmod `mode`, then a rename over `leaf`. The
/// rename replaces a file or a symlink itself, never what a symlink points to. Returns the new
/// file's stat. With `no_replace`, an existing entry is left alone and the result is
/// std::nullopt.
Result<std::optional<struct stat>> WriteFileAt(int dir_fd, std::string_view leaf,
                                               std::string_view content, unsigned mode, uid_t uid,
                                               gid_t gid, bool no_replace,
                                               const std::string& display);

/// Makes the entry `leaf` a symlink whose text is `target`. With `replace`, an existing entry
/// that is not a folder is replaced atomically; without it, an existing entry is left alone and
/// the result is false.
Result<bool> SymlinkAt(int dir_fd, std::string_view leaf, const std::string& target, bool replace,
                       const std::string& display);

/// Removes the entry `name` of a folder and, for a folder, everything inside it. Symlinks are
/// removed, never followed. A missing entry is success.
Status RemoveTree(int dir_fd, const std::string& name, const std::string& display);

/// One entry of a folder.
struct DirEntry {
  std::string name;
  ObjectType type = ObjectType::kOther;
};

/// The entries of an open folder without "." and "..", sorted by name.
Result<std::vector<DirEntry>> ListDir(int dir_fd, const std::string& display);

/// Reads an open file to its end; `size_hint` is its expected size.
Result<std::string> ReadAll(int fd, size_t size_hint, const std::string& display);

/// Turns the openat2 fast path off or on, so that tests cover the portable walk too.
void SetFastLookupForTesting(bool enabled);

}  // namespace driftless::providers::file
