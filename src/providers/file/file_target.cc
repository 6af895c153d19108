// FileTarget: the root, the dispatch by kind, Delete and the helpers the kinds share.

#include "providers/file/file_target.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "base/file_util.h"
#include "providers/file/paths.h"
#include "providers/file/watcher.h"

namespace driftless::providers::file {

using value::Value;

namespace {

// How long reads reuse an open root (or the fact that there is none) before the root is opened
// again, so that a root that was replaced or made is seen soon.
constexpr std::chrono::seconds kRootReuse{1};

}  // namespace

// File systems whose timestamps come from this host's clock and change with every change of a
// file. Network file systems take the server's clock and FUSE whatever its daemon says; they
// are read every time. overlayfs counts as local: a change copies a file up to the upper layer,
// a local file system, which gives it a new change time.
bool IsLocalFileSystem(long type) {
  constexpr long kZfsMagic = 0x2fc12fc1, kBcachefsMagic = 0xca451a4e;
  switch (type) {
    case EXT4_SUPER_MAGIC:  // also ext2 and ext3
    case XFS_SUPER_MAGIC:
    case BTRFS_SUPER_MAGIC:
    case TMPFS_MAGIC:
    case F2FS_SUPER_MAGIC:
    case OVERLAYFS_SUPER_MAGIC:
    case kZfsMagic:
    case kBcachefsMagic:
      return true;
    default:
      return false;
  }
}

const std::string* SpecString(const Value& spec, std::string_view key) {
  const Value* v = spec.Find(key);
  if (v == nullptr || !v->is_string()) return nullptr;
  return &v->as_string();
}

void CopyDeclared(const Value& spec, std::initializer_list<std::string_view> keys, Value& out) {
  for (std::string_view key : keys) {
    const Value* v = spec.Find(key);
    if (v != nullptr && !v->is_null()) out.Set(std::string(key), *v);
  }
}

Result<std::optional<unsigned>> SpecMode(const Value& spec) {
  const Value* v = spec.Find("mode");
  if (v == nullptr || v->is_null()) return std::optional<unsigned>();
  if (!v->is_string()) return MakeError("mode must be an octal string such as \"0644\"");
  std::optional<unsigned> mode = ParseMode(v->as_string());
  if (!mode) {
    return MakeError("mode \"" + v->as_string() + "\" is not an octal mode of at most 07777");
  }
  return mode;
}

Status ConvergeAttributes(int fd, struct stat& st, const Ownership& own,
                          std::optional<unsigned> mode, const std::string& display) {
  unsigned before = st.st_mode & 07777;
  uid_t uid = own.uid.value_or(st.st_uid);
  gid_t gid = own.gid.value_or(st.st_gid);
  if (uid != st.st_uid || gid != st.st_gid) {
    if (fchown(fd, uid, gid) != 0) {
      return MakeError("cannot set the owner of " + display + ": " + ErrnoMessage());
    }
    st.st_uid = uid;
    st.st_gid = gid;
    // chown clears the set-user-ID and set-group-ID bits of a file: learn what is left.
    if ((before & 06000) != 0 && fstat(fd, &st) != 0) {
      return MakeError("cannot read " + display + ": " + ErrnoMessage());
    }
  }
  unsigned want = mode.value_or(before);
  if ((st.st_mode & 07777) != want) {
    if (fchmod(fd, want) != 0) {
      return MakeError("cannot set the mode of " + display + ": " + ErrnoMessage());
    }
    st.st_mode = (st.st_mode & ~static_cast<mode_t>(07777)) | want;
  }
  return Status::Ok();
}

FileTarget::FileTarget(std::string target_name, std::string root)
    : target_name_(std::move(target_name)), root_(std::move(root)) {}

Result<std::shared_ptr<const FileTarget::RootHandle>> FileTarget::OpenRoot(bool for_write,
                                                                           bool create) const {
  if (for_write) {
    // No lock: writers on many threads each open the root where its path points now.
    int fd = open(root_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT && create) {
      std::lock_guard<std::mutex> lock(root_mu_);
      Status made = MakeDirs(root_, 0755);
      if (!made.ok()) return made.error();
      fd = open(root_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    }
    if (fd < 0) {
      if (errno != ENOENT || create) {
        return MakeError("cannot open the target root " + root_ + ": " + ErrnoMessage());
      }
      std::lock_guard<std::mutex> lock(root_mu_);
      root_fd_.reset();  // reads see that it is gone too
      root_opened_ = std::chrono::steady_clock::now();
      return std::shared_ptr<const RootHandle>();
    }
    auto handle = std::make_shared<RootHandle>();
    handle->fd.reset(fd);
    {
      // Reads that remembered "no root" must look again: it exists now.
      std::lock_guard<std::mutex> lock(root_mu_);
      if (root_fd_ == nullptr) root_opened_ = {};
    }
    return std::shared_ptr<const RootHandle>(std::move(handle));
  }
  std::lock_guard<std::mutex> lock(root_mu_);
  auto now = std::chrono::steady_clock::now();
  // Reads reuse the root, and the fact that there is none: a plan of a new environment reads
  // every object of a root that does not exist yet (above: a write opens it afresh, so that it
  // lands where the root's path points now).
  if (now - root_opened_ < kRootReuse) return root_fd_;
  int fd = open(root_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT && create) {
    Status made = MakeDirs(root_, 0755);
    if (!made.ok()) return made.error();
    fd = open(root_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  }
  if (fd < 0) {
    root_fd_.reset();
    if (errno != ENOENT || create) {
      return MakeError("cannot open the target root " + root_ + ": " + ErrnoMessage());
    }
  } else {
    auto handle = std::make_shared<RootHandle>();
    handle->fd.reset(fd);
    struct stat st {};
    struct statfs fs {};
    if (fstat(fd, &st) == 0 && fstatfs(fd, &fs) == 0) {
      handle->dev = st.st_dev;
      handle->local = IsLocalFileSystem(fs.f_type);
    }
    root_fd_ = std::move(handle);
  }
  root_opened_ = now;
  return root_fd_;
}

Result<std::string> FileTarget::SpecPath(const Value& spec) const {
  const std::string* path = SpecString(spec, "path");
  if (path == nullptr) return MakeError("the spec has no path");
  // Checked again here, whatever Normalize said: nothing outside the root is ever touched.
  std::string problem = PathProblem(*path, root_);
  if (!problem.empty()) return MakeError(problem);
  return *path;
}

Result<Ownership> FileTarget::SpecOwnership(const Value& spec) const {
  Ownership own;
  if (const std::string* owner = SpecString(spec, "owner")) {
    Result<uid_t> uid = ids_.UserId(*owner);
    if (!uid.ok()) return uid.error();
    own.uid = *uid;
  }
  if (const std::string* group = SpecString(spec, "group")) {
    Result<gid_t> gid = ids_.GroupId(*group);
    if (!gid.ok()) return gid.error();
    own.gid = *gid;
  }
  return own;
}

void FileTarget::SetStatFields(const struct stat& st, Value& out) const {
  out.Set("mode", Value::String(FormatMode(st.st_mode & 07777)));
  out.Set("owner", Value::String(ids_.UserName(st.st_uid)));
  out.Set("group", Value::String(ids_.GroupName(st.st_gid)));
}

Result<std::optional<Value>> FileTarget::Read(const provider::ResourceRequest& req) const {
  Result<std::string> path = SpecPath(req.spec);
  if (!path.ok()) return MakeError(req.kind + "/" + req.name + ": " + path.error().message);
  auto root = OpenRoot(/*for_write=*/false, /*create=*/false);
  if (!root.ok()) return root.error();
  if (*root == nullptr) return std::optional<Value>();
  RootRef ref{(*root)->get(), root_};
  if (req.kind == kFileKind) return ReadFile(req.spec, ref, *path);
  if (req.kind == kDirectoryKind) return ReadDirectory(req.spec, ref, *path);
  if (req.kind == kSymlinkKind) return ReadSymlink(req.spec, ref, *path);
  return MakeError("the file provider has no kind \"" + req.kind + "\"");
}

Result<std::optional<Value>> FileTarget::ReadById(const std::string& id,
                                                  const provider::ResourceRequest& declared) const {
  if (std::string problem = PathProblem(id, root_); !problem.empty()) {
    return MakeError("ID \"" + id + "\" is not a path of " + Describe() + ": " + problem +
                     " (the ID of a " + declared.kind +
                     " is its path relative to the target root, as in spec.path)");
  }
  Value identity = Value::MakeObject();
  identity.Set("path", Value::String(id));
  const std::string* declared_path = SpecString(declared.spec, "path");
  Result<Value> spec =
      provider::ImportSpec(declared, id, identity, declared_path ? *declared_path : "");
  if (!spec.ok()) return spec.error();
  Result<std::optional<Value>> live = Read({declared.kind, declared.name, *spec});
  if (!live.ok() || !*live) return live;
  // Something else at the path (a folder where a file is declared) is not an object of the kind.
  const std::string want = declared.kind.substr(declared.kind.find('.') + 1);
  const std::string* type = SpecString(**live, "type");
  if (type != nullptr && *type != want) {
    return MakeError(DisplayPath(root_, id) + " is a " +
                     (*type == "other" ? "special file" : *type) + ", not a " + want +
                     ": it cannot be imported as " + declared.kind);
  }
  return live;
}

Result<Value> FileTarget::ApplyKind(const provider::ResourceRequest& req, Apply how) {
  Result<std::string> path = SpecPath(req.spec);
  if (!path.ok()) return MakeError(req.kind + "/" + req.name + ": " + path.error().message);
  if (req.kind != kFileKind && req.kind != kDirectoryKind && req.kind != kSymlinkKind) {
    return MakeError("the file provider has no kind \"" + req.kind + "\"");
  }
  auto root = OpenRoot(/*for_write=*/true, /*create=*/true);
  if (!root.ok()) return root.error();
  RootRef ref{(*root)->get(), root_};
  std::string display = DisplayPath(root_, *path);
  auto fail = [&](const Error& e) {
    return MakeError((req.kind == kFileKind ? "cannot write " : "cannot create ") + display + ": " +
                     e.message);
  };
  // The parent folder, looked up once for the whole write. When it is missing, the folders on
  // the way that this write makes are remembered, so that deleting the object removes them
  // again (when empty) and nothing else.
  std::string_view dir = SplitParent(*path).first;
  std::vector<std::string> missing;
  auto parent = OpenDir(ref, dir, /*create=*/false);
  if (!parent.ok()) return fail(parent.error());
  if (!parent->has_value()) {
    for (std::string_view d = dir; !d.empty(); d = SplitParent(d).first) {
      auto exists = OpenDir(ref, d, /*create=*/false);
      if (exists.ok() && exists->has_value()) break;
      missing.emplace_back(d);
    }
    parent = OpenDir(ref, dir, /*create=*/true);
    if (!parent.ok()) return fail(parent.error());
  }
  int dir_fd = (*parent)->get();
  // One write at a time per folder: the kernel serialises changes to a folder anyway, and
  // threads that wait for its lock there spin on the CPU; here they sleep.
  std::lock_guard<std::mutex> folder_lock(
      folder_mu_[std::hash<std::string_view>()(dir) % folder_mu_.size()]);
  Result<Value> out = req.kind == kFileKind        ? ApplyFile(req.spec, dir_fd, *path, how)
                      : req.kind == kDirectoryKind ? ApplyDirectory(req.spec, dir_fd, *path, how)
                                                   : ApplySymlink(req.spec, dir_fd, *path, how);
  if (out.ok() && !missing.empty()) {
    Value::List list;
    for (auto& m : missing) list.push_back(Value::String(std::move(m)));
    out->Set(std::string(kParentsCreatedField), Value::MakeList(std::move(list)));
  }
  return out;
}

Result<Value> FileTarget::Create(const provider::ResourceRequest& req, bool adopt) {
  return ApplyKind(req, adopt ? Apply::kAdopt : Apply::kCreate);
}

Result<Value> FileTarget::Update(const provider::ResourceRequest& req, const Value& prior) {
  // The live object is compared instead of `prior`: it may have drifted since. Only the record
  // of the folders the first write made is carried over.
  Result<Value> out = ApplyKind(req, Apply::kUpdate);
  const Value* made = prior.Find(kParentsCreatedField);
  if (out.ok() && made != nullptr && out->Find(kParentsCreatedField) == nullptr) {
    out->Set(std::string(kParentsCreatedField), *made);
  }
  return out;
}

namespace {

// Removes the folder `rel` when it is empty; true when it is gone.
bool RemoveEmptyFolder(const RootRef& ref, std::string_view rel) {
  auto [dir, leaf] = SplitParent(rel);
  auto parent = OpenDir(ref, dir, /*create=*/false);
  if (!parent.ok() || !parent->has_value()) return false;
  std::string name(leaf);
  return unlinkat((*parent)->get(), name.c_str(), AT_REMOVEDIR) == 0 || errno == ENOENT;
}

}  // namespace

void FileTarget::RemoveCreatedParents(const RootRef& ref, const Value& prior,
                                      std::string_view path) const {
  std::lock_guard<std::mutex> lock(created_mu_);
  const Value* made = prior.Find(kParentsCreatedField);
  if (made != nullptr && made->is_list()) {
    // Deepest first (the list is written deepest first).
    bool removing = true;
    for (const Value& v : made->as_list()) {
      if (!v.is_string() || !PathProblem(v.as_string(), root_).empty()) continue;
      if (removing && RemoveEmptyFolder(ref, v.as_string())) {
        if (auto it = created_left_.find(v.as_string()); it != created_left_.end())
          created_left_.erase(it);
      } else {
        removing = false;
        created_left_.insert(v.as_string());
      }
    }
  }
  for (std::string_view dir = SplitParent(path).first; !dir.empty(); dir = SplitParent(dir).first) {
    auto it = created_left_.find(dir);
    if (it == created_left_.end() || !RemoveEmptyFolder(ref, dir)) break;
    created_left_.erase(it);
  }
}

Status FileTarget::Delete(const provider::ResourceRequest& prior) {
  Result<std::string> path = SpecPath(prior.spec);
  if (!path.ok()) return MakeError(prior.kind + "/" + prior.name + ": " + path.error().message);
  bool directory = prior.kind == kDirectoryKind;
  if (!directory && prior.kind != kFileKind && prior.kind != kSymlinkKind) {
    return MakeError("the file provider has no kind \"" + prior.kind + "\"");
  }
  auto root = OpenRoot(/*for_write=*/true, /*create=*/false);
  if (!root.ok()) return root.error();
  if (*root == nullptr) return Status::Ok();
  RootRef ref{(*root)->get(), root_};
  auto [dir, leaf] = SplitParent(*path);
  auto parent = OpenDir(ref, dir, /*create=*/false);
  if (!parent.ok()) return parent.error();
  if (!parent->has_value()) return Status::Ok();
  int dir_fd = (*parent)->get();
  std::string name(leaf);
  std::string display = DisplayPath(root_, *path);
  if (!directory) {
    if (unlinkat(dir_fd, name.c_str(), 0) == 0 || errno == ENOENT) {
      RemoveCreatedParents(ref, prior.spec, *path);
      return Status::Ok();
    }
    if (errno == EISDIR || errno == EPERM) {
      return MakeError(display + " is a directory, not a " +
                       std::string(prior.kind == kFileKind ? "file" : "symlink") +
                       "; it is not deleted");
    }
    return MakeError("cannot delete " + display + ": " + ErrnoMessage());
  }
  if (unlinkat(dir_fd, name.c_str(), AT_REMOVEDIR) == 0 || errno == ENOENT) {
    RemoveCreatedParents(ref, prior.spec, *path);
    return Status::Ok();
  }
  int err = errno;
  if (err == ENOTEMPTY || err == EEXIST) {
    const Value* purge = prior.spec.Find("purge");
    if (purge != nullptr && purge->is_bool() && purge->as_bool()) {
      return RemoveTree(dir_fd, name, display);
    }
    return MakeError("directory " + display +
                     " is not empty; it is not deleted (with purge: true, deleting it also "
                     "deletes what is inside)");
  }
  if (err == ENOTDIR) {
    return MakeError(display + " is not a directory; it is not deleted");
  }
  return MakeError("cannot delete " + display + ": " + std::string(std::strerror(err)));
}

}  // namespace driftless::providers::file

namespace driftless::providers::file {

std::string FileTarget::HierarchyPath(const std::string& kind, const value::Value& spec) const {
  (void)kind;
  const value::Value* path = spec.Find("path");
  return path != nullptr && path->is_string() ? path->as_string() : "";
}

value::Value FileTarget::WithDescendants(const std::string& kind, value::Value spec,
                                         const std::vector<std::string>& relative_paths) const {
  const value::Value* purge = spec.Find("purge");
  if (kind != kDirectoryKind || purge == nullptr || !purge->is_bool() || !purge->as_bool()) {
    return spec;
  }
  std::vector<std::string> keep = relative_paths;
  if (const value::Value* declared = spec.Find("managed_children");
      declared && declared->is_list()) {
    for (const auto& v : declared->as_list())
      if (v.is_string()) keep.push_back(v.as_string());
  }
  std::sort(keep.begin(), keep.end());
  keep.erase(std::unique(keep.begin(), keep.end()), keep.end());
  value::Value::List list;
  for (auto& k : keep) list.push_back(value::Value::String(std::move(k)));
  spec.Set("managed_children", value::Value::MakeList(std::move(list)));
  return spec;
}

Result<std::unique_ptr<provider::Watcher>> FileTarget::Watch(
    const std::vector<provider::WatchItem>& items) {
  std::vector<WatchedPath> paths;
  paths.reserve(items.size());
  for (const auto& item : items) {
    Result<std::string> path = SpecPath(item.attrs);
    if (!path.ok()) continue;  // not a path this target manages: the scan reports it
    paths.push_back({item.address, *path, item.kind == "file.directory"});
  }
  return WatchFiles(root_, paths);
}

}  // namespace driftless::providers::file
