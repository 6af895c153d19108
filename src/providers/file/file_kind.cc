// file.file: read, create, adopt and update a regular file.

#include <unistd.h>

#include "base/hash.h"
#include "providers/file/file_target.h"
#include "providers/file/paths.h"

namespace driftless::providers::file {

using value::Value;

Value FileTarget::FileResult(const Value& spec, const std::string& path, ObjectType type,
                             const struct stat& st, const std::string* content) const {
  Value out = Value::MakeObject();
  CopyDeclared(spec, {"name", "source"}, out);
  out.Set("path", Value::String(path));
  out.Set("type", Value::String(std::string(TypeName(type))));
  SetStatFields(st, out);
  if (type == ObjectType::kFile && content != nullptr) {
    // Live bytes of a secret are as secret as the declared ones.
    const Value* declared = spec.Find("content");
    bool sensitive = declared != nullptr && declared->sensitive();
    Value text = Value::String(*content);
    text.set_sensitive(sensitive);
    // The bytes just written are the declared ones, whose hash Normalize computed already.
    const Value* declared_sha = spec.Find("sha256");
    Value sha = Value::String(declared != nullptr && declared->is_string() &&
                                      &declared->as_string() == content &&
                                      declared_sha != nullptr && declared_sha->is_string()
                                  ? declared_sha->as_string()
                                  : Sha256Hex(*content));
    sha.set_sensitive(sensitive);
    out.Set("content", std::move(text));
    out.Set("sha256", std::move(sha));
    out.Set("size", Value::Int(static_cast<int64_t>(content->size())));
  }
  return out;
}

Result<std::optional<Value>> FileTarget::ReadFile(const Value& spec, const RootRef& root,
                                                  const std::string& path) const {
  auto live = Inspect(root, path, /*read_content=*/true);
  if (!live.ok()) return live.error();
  if (!live->has_value()) return std::optional<Value>();
  const LiveObject& obj = **live;
  return std::optional<Value>(FileResult(spec, path, obj.type, obj.st, &obj.content));
}

Result<Value> FileTarget::ApplyFile(const Value& spec, int dir_fd, const std::string& path,
                                    Apply how) {
  std::string display = DisplayPath(root_, path);
  const std::string* content = SpecString(spec, "content");
  if (content == nullptr) {
    return MakeError(display + ": the spec has no content (Normalize turns source into it)");
  }
  auto mode = SpecMode(spec);
  if (!mode.ok()) return MakeError(display + ": " + mode.error().message);
  auto own = SpecOwnership(spec);
  if (!own.ok()) return MakeError(display + ": " + own.error().message);
  uid_t uid = own->uid.value_or(static_cast<uid_t>(-1));
  gid_t gid = own->gid.value_or(static_cast<gid_t>(-1));

  std::string_view leaf = SplitParent(path).second;
  if (how == Apply::kCreate) {
    auto written = WriteFileAt(dir_fd, leaf, *content, mode->value_or(0644), uid, gid,
                               /*no_replace=*/true, display);
    if (!written.ok()) return written.error();
    if (!written->has_value()) {
      return MakeError(display + " already exists (set policy.adopt: true to take it over)");
    }
    return FileResult(spec, path, ObjectType::kFile, **written, content);
  }

  // Adopt or update: change only what differs from the live object.
  auto live = InspectAt(dir_fd, leaf, /*read_content=*/true, display);
  if (!live.ok()) return live.error();
  if (live->has_value()) {
    LiveObject& obj = **live;
    if (obj.type == ObjectType::kDirectory) {
      return MakeError(display + " is a directory, not a file; it is not replaced");
    }
    if (obj.type == ObjectType::kFile && obj.content == *content) {
      bool same = (!own->uid || *own->uid == obj.st.st_uid) &&
                  (!own->gid || *own->gid == obj.st.st_gid) &&
                  (!*mode || **mode == (obj.st.st_mode & 07777));
      if (same) return FileResult(spec, path, ObjectType::kFile, obj.st, content);
      // A file with other names (hard links) is rewritten rather than changed in place, so
      // that chmod and chown never reach an inode that may also be reachable from outside the
      // root.
      if (obj.st.st_nlink <= 1) {
        Status st = ConvergeAttributes(obj.fd.get(), obj.st, *own, *mode, display);
        if (!st.ok()) return st.error();
        return FileResult(spec, path, ObjectType::kFile, obj.st, content);
      }
    }
    if (obj.type == ObjectType::kFile) {
      // New bytes, same mode and owner unless declared otherwise.
      if (!own->uid) uid = obj.st.st_uid;
      if (!own->gid) gid = obj.st.st_gid;
      if (!*mode) *mode = obj.st.st_mode & 07777;
    }
  }
  auto written = WriteFileAt(dir_fd, leaf, *content, mode->value_or(0644), uid, gid,
                             /*no_replace=*/false, display);
  if (!written.ok()) return written.error();
  return FileResult(spec, path, ObjectType::kFile, **written, content);
}

}  // namespace driftless::providers::file
