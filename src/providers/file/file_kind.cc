// file.file: read, create, adopt and update a regular file.

#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>

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

namespace {

// How far in the past a file's last change must lie, at the moment its stamp is taken, for the
// stamp to be trusted (Git's "racy" rule): a later change must get other times. The kernel
// stamps files with a clock that lags the real one by up to a tick (at most 10 ms); file systems
// that store whole seconds (their times have no nanoseconds) round down by up to 2 s (FAT).
constexpr int64_t kRacyWindowNs = 50'000'000;
constexpr int64_t kRacyWindowCoarseNs = 2'100'000'000;

int64_t Ns(const struct timespec& t) { return int64_t{t.tv_sec} * 1'000'000'000 + t.tv_nsec; }

// The longest stamp: five 64-bit numbers in hex and four colons.
constexpr size_t kStampMax = 5 * 16 + 4;

// "dev:ino:size:mtime:ctime", times in nanoseconds, numbers in lower-case hex without leading
// zeros (as printf's %llx writes them: stamps in state were written so), into `buf`; its length.
size_t FormatStamp(const struct stat& st, char (&buf)[kStampMax]) {
  const uint64_t numbers[5] = {static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino),
                               static_cast<uint64_t>(st.st_size),
                               static_cast<uint64_t>(Ns(st.st_mtim)),
                               static_cast<uint64_t>(Ns(st.st_ctim))};
  size_t n = 0;
  for (int i = 0; i < 5; ++i) {
    if (i > 0) buf[n++] = ':';
    int shift = 60;
    while (shift > 0 && (numbers[i] >> shift) == 0) shift -= 4;
    for (; shift >= 0; shift -= 4) buf[n++] = "0123456789abcdef"[(numbers[i] >> shift) & 0xf];
  }
  return n;
}

std::string StampText(const struct stat& st) {
  char buf[kStampMax];
  return std::string(buf, FormatStamp(st, buf));
}

// Whether `st` has the stamp `stamp`, without making a string of it.
bool HasStamp(const struct stat& st, std::string_view stamp) {
  char buf[kStampMax];
  return std::string_view(buf, FormatStamp(st, buf)) == stamp;
}

// The folders that a thread's stamp checks opened inside its current provider::ReadScope (a
// plan's or a check's reads), for one open root: held so that its address is not taken by
// another while they are open. At most DirStatCache::kMaxDirs a thread, all closed with the root
// at the end of the scope or when a check of another root comes.
struct ScopedDirs {
  std::shared_ptr<const void> root;
  DirStatCache dirs;
};
thread_local ScopedDirs t_scoped_dirs;

void ReleaseScopedDirs() {
  t_scoped_dirs.dirs.Clear();
  t_scoped_dirs.root.reset();
}

int64_t RealNowNs() {
  struct timespec t {};
  clock_gettime(CLOCK_REALTIME, &t);
  return Ns(t);
}

}  // namespace

bool StampSettled(const struct stat& st, int64_t now_ns) {
  const bool coarse = st.st_mtim.tv_nsec == 0 && st.st_ctim.tv_nsec == 0;
  const int64_t last = std::max(Ns(st.st_mtim), Ns(st.st_ctim));
  return last < now_ns - (coarse ? kRacyWindowCoarseNs : kRacyWindowNs);
}

Result<provider::StampedRead> FileTarget::ReadIfChanged(const provider::ResourceRequest& req,
                                                        std::string_view stamp) const {
  if (req.kind != kFileKind) return Target::ReadIfChanged(req, stamp);
  Result<std::string> path = SpecPath(req.spec);
  if (!path.ok()) return MakeError(req.kind + "/" + req.name + ": " + path.error().message);
  auto root = OpenRoot(/*for_write=*/false, /*create=*/false);
  if (!root.ok()) return root.error();
  provider::StampedRead out;
  if (*root == nullptr) return out;  // no root: nothing exists
  RootRef ref{(*root)->get(), root_};
  if (!stamp.empty() && (*root)->local) {
    // Most files are unchanged: their stamp needs only the confined lookup, not an open.
    // Inside a plan's or a check's reads, each folder is resolved once for all its files.
    std::optional<struct stat> st;
    if (provider::ReadScope::Active()) {
      if (t_scoped_dirs.root != *root) {
        t_scoped_dirs.dirs.Clear();
        t_scoped_dirs.root = *root;
        provider::ReadScope::AtEnd(&ReleaseScopedDirs);
      }
      st = t_scoped_dirs.dirs.Stat(ref, *path);
    } else {
      st = StatBeneath(ref, *path);
    }
    if (st && TypeOf(st->st_mode) == ObjectType::kFile && st->st_dev == (*root)->dev &&
        HasStamp(*st, stamp)) {
      out.unchanged = true;
      return out;
    }
  }
  // Before the file is looked at for the stamp it is given: a change after this moment gets
  // later times. (The check above gives none.)
  const int64_t now_ns = RealNowNs();
  auto live = Inspect(ref, *path, /*read_content=*/false);
  if (!live.ok()) return live.error();
  if (!live->has_value()) return out;
  LiveObject& obj = **live;
  // Only regular files on the root's own local file system (not a mount inside it) have stamps.
  const bool stamped = obj.type == ObjectType::kFile && (*root)->local && obj.fd.valid() &&
                       obj.st.st_dev == (*root)->dev;
  std::string now_stamp = stamped ? StampText(obj.st) : "";
  if (stamped && !stamp.empty() && now_stamp == stamp) {
    out.unchanged = true;
    return out;
  }
  if (obj.type == ObjectType::kFile) {
    std::string display = DisplayPath(root_, *path);
    auto content = ReadAll(obj.fd.get(), static_cast<size_t>(obj.st.st_size), display);
    if (!content.ok()) return content.error();
    obj.content = std::move(*content);
  }
  out.live = FileResult(req.spec, *path, obj.type, obj.st, &obj.content);
  if (stamped && StampSettled(obj.st, now_ns)) out.stamp = std::move(now_stamp);
  return out;
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
