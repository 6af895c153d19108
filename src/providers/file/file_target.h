#pragma once

#include <array>
#include <chrono>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "provider/provider.h"
#include "providers/file/confined_fs.h"
#include "providers/file/ids.h"

// Internal to the file provider: the target class and the schemas, shared by its .cc files.

namespace driftless::providers::file {

inline constexpr char kFileKind[] = "file.file";
inline constexpr char kDirectoryKind[] = "file.directory";
/// Computed: the folders on the way that the first write created (deepest first).
inline constexpr char kParentsCreatedField[] = "parents_created";
inline constexpr char kSymlinkKind[] = "file.symlink";

/// The schemas of the three kinds, declared as data.
const std::vector<provider::ResourceSchema>& FileSchemas();

/// The settings a file target accepts.
std::vector<provider::FieldSchema> FileTargetSchema();

/// The string member `key` of a spec; nullptr when absent or not a string.
const std::string* SpecString(const value::Value& spec, std::string_view key);

/// Copies the members `keys` that `spec` has into the object `out` (fields that only the
/// declaration knows, echoed by Read so that they compare equal).
void CopyDeclared(const value::Value& spec, std::initializer_list<std::string_view> keys,
                  value::Value& out);

/// The declared mode of a spec; std::nullopt when absent, an error when malformed.
Result<std::optional<unsigned>> SpecMode(const value::Value& spec);

/// Declared ownership as ids; std::nullopt for what is not declared.
struct Ownership {
  std::optional<uid_t> uid;
  std::optional<gid_t> gid;
};

/// Brings the owner and mode of the open object `fd`, whose stat is `st`, to what is declared
/// (only what differs is changed) and updates `st` to match.
Status ConvergeAttributes(int fd, struct stat& st, const Ownership& own,
                          std::optional<unsigned> mode, const std::string& display);

/// Whether files on a file system of this type (statfs's f_type) get stamps: a local one, whose
/// times come from this host's clock and change with every change of a file.
bool IsLocalFileSystem(long type);

/// Whether the stamp of a file whose stat is `st`, taken at `now_ns` (real time in nanoseconds,
/// read before the file was looked at), can be trusted (Git's "racy" rule): its last change
/// (ctime, which nobody can set, and mtime, which can be set into the future) lies more than
/// 50 ms before, or 2.1 s when its times have no nanoseconds (a file system that keeps seconds).
/// A later change then gets other times.
bool StampSettled(const struct stat& st, int64_t now_ns);

/// One `root` folder on this host.
class FileTarget final : public provider::Target {
 public:
  /// `root` must be canonical (CanonicalRoot).
  FileTarget(std::string target_name, std::string root);

  Result<value::Value> Normalize(const std::string& kind, const value::Value& spec,
                                 const provider::ReadRepoFile& read_file,
                                 std::vector<provider::FieldError>& errors) const override;
  Result<std::optional<value::Value>> Read(const provider::ResourceRequest& req) const override;
  /// Stamps for file.file: device, inode, size, mtime and ctime (README, "Stamps").
  Result<provider::StampedRead> ReadIfChanged(const provider::ResourceRequest& req,
                                              std::string_view stamp) const override;
  Result<value::Value> Create(const provider::ResourceRequest& req, bool adopt) override;
  Result<value::Value> Update(const provider::ResourceRequest& req,
                              const value::Value& prior) override;
  Status Delete(const provider::ResourceRequest& prior) override;
  std::string Describe() const override { return "file root " + root_; }
  /// The ID of a file, folder or symlink is its path relative to the root, as `path` is
  /// declared; something of another type at the path cannot be imported.
  Result<std::optional<value::Value>> ReadById(
      const std::string& id, const provider::ResourceRequest& declared) const override;
  /// inotify on the folders holding the objects (providers/file/watcher.h).
  Result<std::unique_ptr<provider::Watcher>> Watch(
      const std::vector<provider::WatchItem>& items) override;
  /// The object's path relative to the root: files are ordered after their folders.
  std::string HierarchyPath(const std::string& kind, const value::Value& spec) const override;
  /// A purging folder keeps the managed objects inside it: adds them to `managed_children`.
  value::Value WithDescendants(const std::string& kind, value::Value spec,
                               const std::vector<std::string>& relative_paths) const override;

  const std::string& root() const { return root_; }

 private:
  /// How an apply treats an object that already exists.
  enum class Apply { kCreate, kAdopt, kUpdate };

  /// An open root, and what stamps need to know of its file system.
  struct RootHandle {
    UniqueFd fd;
    dev_t dev = 0;
    /// A local file system (ext2/3/4, XFS, Btrfs, tmpfs, F2FS, overlayfs, bcachefs, ZFS): its
    /// times come from this host's clock.
    bool local = false;
    int get() const { return fd.get(); }
  };
  /// The root: for reading reused for up to a second (also when it is missing), for writing
  /// opened afresh; made first when `create` (nullptr when it does not exist and not `create`).
  /// A handle for writing has only the descriptor (`dev` 0, `local` false: writes need neither,
  /// and looking them up took two system calls per file).
  Result<std::shared_ptr<const RootHandle>> OpenRoot(bool for_write, bool create) const;
  /// The checked `path` of a spec.
  Result<std::string> SpecPath(const value::Value& spec) const;

  Result<std::optional<value::Value>> ReadFile(const value::Value& spec, const RootRef& root,
                                               const std::string& path) const;
  Result<std::optional<value::Value>> ReadDirectory(const value::Value& spec, const RootRef& root,
                                                    const std::string& path) const;
  Result<std::optional<value::Value>> ReadSymlink(const value::Value& spec, const RootRef& root,
                                                  const std::string& path) const;

  /// Create, adopt or update the object at `path`, whose parent folder is open as `dir_fd`.
  Result<value::Value> ApplyFile(const value::Value& spec, int dir_fd, const std::string& path,
                                 Apply how);
  Result<value::Value> ApplyDirectory(const value::Value& spec, int dir_fd, const std::string& path,
                                      Apply how);
  Result<value::Value> ApplySymlink(const value::Value& spec, int dir_fd, const std::string& path,
                                    Apply how);
  /// Opens the parent folder (made when missing) and applies the kind's Apply* with it.
  Result<value::Value> ApplyKind(const provider::ResourceRequest& req, Apply how);
  /// After the object at `path` was deleted: removes the folders listed in `prior`'s
  /// parents_created, deepest first, while empty; a folder that is not empty stays and is kept
  /// in `created_left_`. Then removes the folders above `path` that are in `created_left_`
  /// while they are empty, so that the last delete in a folder driftless created removes it,
  /// whichever resource's write had made it.
  void RemoveCreatedParents(const RootRef& ref, const value::Value& prior,
                            std::string_view path) const;

  /// The declared owner and group as ids (std::nullopt: not declared); unknown names are
  /// errors.
  Result<Ownership> SpecOwnership(const value::Value& spec) const;
  /// The attributes of a file (or what stands at its path) as Read reports them; `content` is
  /// the bytes of a regular file.
  value::Value FileResult(const value::Value& spec, const std::string& path, ObjectType type,
                          const struct stat& st, const std::string* content) const;
  /// The attributes of a folder (or what stands at its path) as Read reports them, without
  /// unmanaged_children.
  value::Value DirectoryResult(const value::Value& spec, const std::string& path, ObjectType type,
                               const struct stat& st) const;
  /// Adds mode, owner and group of `st` to a result.
  void SetStatFields(const struct stat& st, value::Value& out) const;

  std::string target_name_;
  std::string root_;
  mutable IdNames ids_;

  /// Serialise writes within a folder (by a hash of its path).
  std::array<std::mutex, 16> folder_mu_;
  mutable std::mutex root_mu_;
  mutable std::shared_ptr<const RootHandle> root_fd_;
  mutable std::chrono::steady_clock::time_point root_opened_{};
  /// Folders that a deleted resource's write had created and that were not empty when it was
  /// deleted (another resource's file was still in them). Every removal of a created folder
  /// holds `created_mu_`, after its own object is gone: the last delete in a folder sees the
  /// others' deletes.
  mutable std::mutex created_mu_;
  mutable std::set<std::string, std::less<>> created_left_;
};

}  // namespace driftless::providers::file
