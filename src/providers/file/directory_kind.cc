// file.directory: read, create, adopt, update and purge a folder.

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <map>

#include "base/file_util.h"
#include "providers/file/file_target.h"
#include "providers/file/paths.h"

namespace driftless::providers::file {

using value::Value;

namespace {

// At most this many unmanaged entries are listed by Read.
constexpr size_t kMaxUnmanagedListed = 100;

// The managed paths of a purged folder as a tree of names. A node is `managed` when its path
// is itself managed (kept whole); other nodes only lead to managed paths.
struct ManagedNode {
  bool managed = false;
  std::map<std::string, ManagedNode, std::less<>> children;
};

ManagedNode BuildManagedTree(const Value& spec) {
  ManagedNode root;
  const Value* list = spec.Find("managed_children");
  if (list == nullptr || !list->is_list()) return root;
  for (const Value& item : list->as_list()) {
    // Entries were checked by Normalize; anything odd is skipped rather than trusted.
    if (!item.is_string() || !PathProblem(item.as_string(), "").empty()) continue;
    ManagedNode* node = &root;
    std::string_view rest = item.as_string();
    while (!rest.empty()) {
      size_t slash = rest.find('/');
      std::string_view seg = rest.substr(0, slash);
      rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
      node = &node->children[std::string(seg)];
    }
    node->managed = true;
  }
  return root;
}

bool PurgeOn(const Value& spec) {
  const Value* purge = spec.Find("purge");
  return purge != nullptr && purge->is_bool() && purge->as_bool();
}

// Walks what a purge concerns: `visit(dir_fd, name, rel)` is called for every entry that is
// neither managed nor on the way to a managed path; it returns false to stop.
template <typename Visit>
Status WalkUnmanaged(int dir_fd, const ManagedNode& node, const std::string& display,
                     const std::string& rel_prefix, Visit& visit) {
  auto entries = ListDir(dir_fd, display);
  if (!entries.ok()) return entries.error();
  for (const DirEntry& e : *entries) {
    std::string rel = rel_prefix + e.name;
    auto it = node.children.find(e.name);
    if (it == node.children.end()) {
      if (!visit(dir_fd, e.name, rel)) return Status::Ok();
      continue;
    }
    if (it->second.managed) continue;
    // On the way to a managed path. Only a real folder is entered; anything else there is
    // left alone (the managed resources below it report the problem).
    if (e.type != ObjectType::kDirectory) continue;
    int fd = openat(dir_fd, e.name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT) continue;
      return MakeError("cannot open " + display + "/" + e.name + ": " + ErrnoMessage());
    }
    UniqueFd sub(fd);
    Status st = WalkUnmanaged(sub.get(), it->second, display + "/" + e.name, rel + "/", visit);
    if (!st.ok()) return st;
  }
  return Status::Ok();
}

// Removes what is inside the folder `dir_fd` and not managed.
Status Purge(int dir_fd, const Value& spec, const std::string& display) {
  ManagedNode tree = BuildManagedTree(spec);
  Status failure;
  auto remove = [&](int fd, const std::string& name, const std::string& rel) {
    failure = RemoveTree(fd, name, display + "/" + rel);
    return failure.ok();
  };
  Status walked = WalkUnmanaged(dir_fd, tree, display, "", remove);
  if (!walked.ok()) return walked;
  return failure;
}

// What a purge would remove, for Read.
Result<Value> Unmanaged(int dir_fd, const Value& spec, const std::string& display) {
  ManagedNode tree = BuildManagedTree(spec);
  Value::List found;
  size_t more = 0;
  auto collect = [&](int, const std::string&, const std::string& rel) {
    if (found.size() < kMaxUnmanagedListed) {
      found.push_back(Value::String(rel));
    } else {
      ++more;
    }
    return true;
  };
  Status walked = WalkUnmanaged(dir_fd, tree, display, "", collect);
  if (!walked.ok()) return walked.error();
  if (more > 0) found.push_back(Value::String("... and " + std::to_string(more) + " more"));
  return Value::MakeList(std::move(found));
}

}  // namespace

Value FileTarget::DirectoryResult(const Value& spec, const std::string& path, ObjectType type,
                                  const struct stat& st) const {
  Value out = Value::MakeObject();
  CopyDeclared(spec, {"name", "purge", "managed_children"}, out);
  out.Set("path", Value::String(path));
  out.Set("type", Value::String(std::string(TypeName(type))));
  SetStatFields(st, out);
  return out;
}

Result<std::optional<Value>> FileTarget::ReadDirectory(const Value& spec, const RootRef& root,
                                                       const std::string& path) const {
  auto live = Inspect(root, path, /*read_content=*/false);
  if (!live.ok()) return live.error();
  if (!live->has_value()) return std::optional<Value>();
  const LiveObject& obj = **live;
  Value out = DirectoryResult(spec, path, obj.type, obj.st);
  if (obj.type == ObjectType::kDirectory && PurgeOn(spec)) {
    auto unmanaged = Unmanaged(obj.fd.get(), spec, DisplayPath(root_, path));
    if (!unmanaged.ok()) return unmanaged.error();
    out.Set("unmanaged_children", std::move(unmanaged).value());
  }
  return std::optional<Value>(std::move(out));
}

Result<Value> FileTarget::ApplyDirectory(const Value& spec, int dir_fd, const std::string& path,
                                         Apply how) {
  std::string display = DisplayPath(root_, path);
  auto mode = SpecMode(spec);
  if (!mode.ok()) return MakeError(display + ": " + mode.error().message);
  auto own = SpecOwnership(spec);
  if (!own.ok()) return MakeError(display + ": " + own.error().message);

  std::string_view leaf = SplitParent(path).second;
  std::string name(leaf);

  UniqueFd fd;
  struct stat st {};
  bool created = false;
  if (how != Apply::kCreate) {
    auto live = InspectAt(dir_fd, leaf, /*read_content=*/false, display);
    if (!live.ok()) return live.error();
    if (live->has_value()) {
      LiveObject& obj = **live;
      if (obj.type != ObjectType::kDirectory) {
        return MakeError(display + " is a " + std::string(TypeName(obj.type)) +
                         ", not a directory; it is not replaced");
      }
      fd = std::move(obj.fd);
      st = obj.st;
    }
  }
  if (!fd.valid()) {
    if (mkdirat(dir_fd, name.c_str(), mode->value_or(0755) & 0777) != 0) {
      if (errno == EEXIST && how == Apply::kCreate) {
        return MakeError(display + " already exists (set policy.adopt: true to take it over)");
      }
      return MakeError("cannot create " + display + ": " + ErrnoMessage());
    }
    created = true;
    int raw = openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (raw < 0) return MakeError("cannot open " + display + ": " + ErrnoMessage());
    fd.reset(raw);
    if (fstat(fd.get(), &st) != 0) {
      return MakeError("cannot read " + display + ": " + ErrnoMessage());
    }
  }
  // mkdir applied the umask, so a new folder gets its mode explicitly (0755 by default).
  std::optional<unsigned> want = *mode;
  if (!want && created) want = 0755 | (st.st_mode & 07000);
  Status converged = ConvergeAttributes(fd.get(), st, *own, want, display);
  if (!converged.ok()) return converged.error();

  Value out = DirectoryResult(spec, path, ObjectType::kDirectory, st);
  if (PurgeOn(spec)) {
    if (!created) {
      Status purged = Purge(fd.get(), spec, display);
      if (!purged.ok()) return purged.error();
    }
    out.Set("unmanaged_children", Value::MakeList());
  }
  return out;
}

}  // namespace driftless::providers::file
