// file.symlink: read, create, adopt and update a symbolic link.

#include "providers/file/file_target.h"
#include "providers/file/paths.h"

namespace driftless::providers::file {

using value::Value;

namespace {

Value SymlinkResult(const Value& spec, const std::string& path, ObjectType type,
                    const std::string* target) {
  Value out = Value::MakeObject();
  CopyDeclared(spec, {"name"}, out);
  out.Set("path", Value::String(path));
  out.Set("type", Value::String(std::string(TypeName(type))));
  if (type == ObjectType::kSymlink && target != nullptr) out.Set("target", Value::String(*target));
  return out;
}

}  // namespace

Result<std::optional<Value>> FileTarget::ReadSymlink(const Value& spec, const RootRef& root,
                                                     const std::string& path) const {
  auto live = Inspect(root, path, /*read_content=*/false);
  if (!live.ok()) return live.error();
  if (!live->has_value()) return std::optional<Value>();
  const LiveObject& obj = **live;
  return std::optional<Value>(SymlinkResult(spec, path, obj.type, &obj.link_target));
}

Result<Value> FileTarget::ApplySymlink(const Value& spec, int dir_fd, const std::string& path,
                                       Apply how) {
  std::string display = DisplayPath(root_, path);
  const std::string* target = SpecString(spec, "target");
  if (target == nullptr || target->empty() || target->find('\0') != std::string::npos) {
    return MakeError(display + ": the spec has no usable target");
  }
  std::string_view leaf = SplitParent(path).second;
  if (how == Apply::kCreate) {
    auto made = SymlinkAt(dir_fd, leaf, *target, /*replace=*/false, display);
    if (!made.ok()) return made.error();
    if (!*made) {
      return MakeError(display + " already exists (set policy.adopt: true to take it over)");
    }
    return SymlinkResult(spec, path, ObjectType::kSymlink, target);
  }
  auto live = InspectAt(dir_fd, leaf, /*read_content=*/false, display);
  if (!live.ok()) return live.error();
  if (live->has_value()) {
    const LiveObject& obj = **live;
    if (obj.type == ObjectType::kDirectory) {
      return MakeError(display + " is a directory, not a symlink; it is not replaced");
    }
    if (obj.type == ObjectType::kSymlink && obj.link_target == *target) {
      return SymlinkResult(spec, path, ObjectType::kSymlink, target);
    }
  }
  auto made = SymlinkAt(dir_fd, leaf, *target, /*replace=*/true, display);
  if (!made.ok()) return made.error();
  return SymlinkResult(spec, path, ObjectType::kSymlink, target);
}

}  // namespace driftless::providers::file
