#include "providers/file/confined_fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>

#include "base/file_util.h"
#include "base/hash.h"
#include "providers/file/paths.h"

namespace driftless::providers::file {
namespace {

// Whether openat2(2) may be tried; turned off for good once the kernel says ENOSYS.
std::atomic<bool> g_fast_lookup{true};

// Nested folders deeper than this are not removed (each level holds a descriptor).
constexpr int kMaxRemoveDepth = 256;

// openat2(2) confined beneath `dir_fd`, refusing every symlink. -1 with errno on failure.
int OpenBeneath(int dir_fd, const std::string& path, uint64_t flags) {
  struct open_how how {};
  how.flags = flags;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  while (true) {
    long fd = syscall(SYS_openat2, dir_fd, path.c_str(), &how, sizeof how);
    if (fd >= 0) return static_cast<int>(fd);
    if (errno == EINTR || errno == EAGAIN) continue;
    if (errno == ENOSYS) g_fast_lookup.store(false, std::memory_order_relaxed);
    return -1;
  }
}

std::string ErrnoText(int err) { return std::strerror(err); }

std::string SymlinkMessage(const std::string& display) {
  return display + " is a symlink; driftless never follows a symlink inside the target root";
}

// Flags for looking at an object without side effects: no symlink, no blocking on a FIFO, no
// controlling terminal.
constexpr int kInspectFlags = O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY;

Result<std::optional<LiveObject>> FromOpenFd(UniqueFd fd, bool read_content,
                                             const std::string& display) {
  LiveObject obj;
  if (fstat(fd.get(), &obj.st) != 0) {
    return MakeError("cannot read " + display + ": " + ErrnoMessage());
  }
  obj.type = TypeOf(obj.st.st_mode);
  if (obj.type == ObjectType::kFile && read_content) {
    auto content = ReadAll(fd.get(), static_cast<size_t>(obj.st.st_size), display);
    if (!content.ok()) return content.error();
    obj.content = std::move(content).value();
  }
  obj.fd = std::move(fd);
  return std::optional<LiveObject>(std::move(obj));
}

// A temporary name beside `leaf`, short enough for any file system. The suffix is random so
// that nobody can take a name before it is used (that would only make the write fail: temporary
// files are created with O_EXCL): from a generator per thread, seeded once from the system's
// random source, since asking OpenSSL for every name costs a getpid call and a lock each.
std::string TempName(std::string_view leaf) {
  thread_local uint64_t state = [] {
    uint64_t seed = std::stoull(RandomHex(8), nullptr, 16);
    return seed == 0 ? 1 : seed;
  }();
  state ^= state << 13;  // xorshift64
  state ^= state >> 7;
  state ^= state << 17;
  char suffix[17];
  std::snprintf(suffix, sizeof suffix, "%08x", static_cast<unsigned>(state >> 32));
  std::string out;
  out.reserve(leaf.size() + 20);
  out += '.';
  out.append(leaf.substr(0, 200));
  out += ".driftless-";
  out += suffix;
  return out;
}

// Creates a new temporary file beside `leaf` (0600, O_EXCL); -1 with errno when that fails. A
// name that is taken is tried again with another one.
int CreateTemp(int dir_fd, std::string_view leaf, std::string& tmp) {
  for (int attempt = 0;; ++attempt) {
    tmp = TempName(leaf);
    int fd =
        openat(dir_fd, tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd >= 0 || errno != EEXIST || attempt == 3) return fd;
  }
}

}  // namespace

void UniqueFd::reset(int fd) {
  if (fd_ >= 0) close(fd_);
  fd_ = fd;
}

ObjectType TypeOf(mode_t mode) {
  if (S_ISREG(mode)) return ObjectType::kFile;
  if (S_ISDIR(mode)) return ObjectType::kDirectory;
  if (S_ISLNK(mode)) return ObjectType::kSymlink;
  return ObjectType::kOther;
}

std::string_view TypeName(ObjectType type) {
  switch (type) {
    case ObjectType::kFile:
      return "file";
    case ObjectType::kDirectory:
      return "directory";
    case ObjectType::kSymlink:
      return "symlink";
    case ObjectType::kOther:
      return "other";
  }
  return "other";
}

void SetFastLookupForTesting(bool enabled) {
  g_fast_lookup.store(enabled, std::memory_order_relaxed);
}

Result<std::optional<DirFd>> OpenDir(const RootRef& root, std::string_view rel_dir, bool create) {
  if (rel_dir.empty()) return std::optional<DirFd>(DirFd::Borrow(root.fd));
  std::string rel(rel_dir);
  if (g_fast_lookup.load(std::memory_order_relaxed)) {
    int fd = OpenBeneath(root.fd, rel, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) return std::optional<DirFd>(DirFd::Own(UniqueFd(fd)));
    if (!create && (errno == ENOENT || errno == ENOTDIR)) return std::optional<DirFd>();
    // Anything else (a symlink on the way, a folder to create): the walk makes the folders and
    // says exactly which component is in the way.
  }
  DirFd cur = DirFd::Borrow(root.fd);
  size_t start = 0;
  while (start < rel.size()) {
    size_t slash = rel.find('/', start);
    if (slash == std::string::npos) slash = rel.size();
    std::string seg = rel.substr(start, slash - start);
    std::string display = DisplayPath(root.path, std::string_view(rel).substr(0, slash));
    start = slash + 1;
    int fd = openat(cur.get(), seg.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0) {
      cur = DirFd::Own(UniqueFd(fd));
      continue;
    }
    int err = errno;
    if (err == ENOENT) {
      if (!create) return std::optional<DirFd>();
      bool made = mkdirat(cur.get(), seg.c_str(), 0755) == 0;
      if (!made && errno != EEXIST) {
        return MakeError("cannot create folder " + display + ": " + ErrnoMessage());
      }
      fd = openat(cur.get(), seg.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (fd >= 0) {
        UniqueFd owned(fd);
        // mkdir applies the umask; the contract is 0755 for the folders made on the way.
        if (made && fchmod(owned.get(), 0755) != 0) {
          return MakeError("cannot set the mode of " + display + ": " + ErrnoMessage());
        }
        cur = DirFd::Own(std::move(owned));
        continue;
      }
      err = errno;  // something else appeared meanwhile: diagnose it below
    }
    if (err == ENOTDIR || err == ELOOP || err == EEXIST) {
      struct stat st {};
      if (fstatat(cur.get(), seg.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
        if (S_ISLNK(st.st_mode)) return MakeError(SymlinkMessage(display));
        if (!S_ISDIR(st.st_mode)) {
          if (!create) return std::optional<DirFd>();
          return MakeError(display + " is a " + std::string(TypeName(TypeOf(st.st_mode))) +
                           ", not a folder");
        }
      }
    }
    return MakeError("cannot open folder " + display + ": " + ErrnoText(err));
  }
  return std::optional<DirFd>(std::move(cur));
}

Result<std::optional<LiveObject>> Inspect(const RootRef& root, std::string_view rel,
                                          bool read_content) {
  std::string display = DisplayPath(root.path, rel);
  if (g_fast_lookup.load(std::memory_order_relaxed)) {
    int fd = OpenBeneath(root.fd, std::string(rel), kInspectFlags);
    if (fd >= 0) return FromOpenFd(UniqueFd(fd), read_content, display);
    if (errno == ENOENT || errno == ENOTDIR) return std::optional<LiveObject>();
    // ELOOP: a symlink, either the object itself or a parent; the walk tells which.
  }
  auto [dir, leaf] = SplitParent(rel);
  auto parent = OpenDir(root, dir, /*create=*/false);
  if (!parent.ok()) return parent.error();
  if (!parent->has_value()) return std::optional<LiveObject>();
  return InspectAt((*parent)->get(), leaf, read_content, display);
}

std::optional<struct stat> StatBeneath(const RootRef& root, std::string_view rel) {
  if (!g_fast_lookup.load(std::memory_order_relaxed)) return std::nullopt;
  int fd = OpenBeneath(root.fd, std::string(rel), O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  UniqueFd owned(fd);
  struct stat st {};
  if (fstat(owned.get(), &st) != 0) return std::nullopt;
  return st;
}

std::optional<struct stat> DirStatCache::Stat(const RootRef& root, std::string_view rel) {
  if (!g_fast_lookup.load(std::memory_order_relaxed)) return std::nullopt;
  auto [dir, leaf] = SplitParent(rel);
  // Paths have passed PathProblem; a leaf that could name something else is never stat'ed.
  if (leaf.empty() || leaf == "." || leaf == "..") return std::nullopt;
  int dir_fd = root.fd;
  if (!dir.empty()) {
    std::string key(dir);
    auto it = dirs_.find(key);
    if (it == dirs_.end()) {
      int fd = OpenBeneath(root.fd, key, O_PATH | O_DIRECTORY | O_CLOEXEC);
      if (fd < 0) return std::nullopt;  // missing, not a folder, a symlink on the way
      UniqueFd owned(fd);
      if (dirs_.size() >= kMaxDirs) dirs_.clear();
      it = dirs_.emplace(std::move(key), std::move(owned)).first;
    }
    dir_fd = it->second.get();
  }
  struct stat st {};
  if (fstatat(dir_fd, std::string(leaf).c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    return std::nullopt;
  }
  return st;
}

Result<std::optional<LiveObject>> InspectAt(int dir_fd, std::string_view leaf, bool read_content,
                                            const std::string& display) {
  std::string name(leaf);
  int fd = openat(dir_fd, name.c_str(), kInspectFlags);
  if (fd >= 0) return FromOpenFd(UniqueFd(fd), read_content, display);
  int err = errno;
  if (err == ENOENT) return std::optional<LiveObject>();
  // A symlink (ELOOP), a socket (ENXIO) or an object we may not open: lstat tells what it is.
  LiveObject obj;
  if (fstatat(dir_fd, name.c_str(), &obj.st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return std::optional<LiveObject>();
    return MakeError("cannot read " + display + ": " + ErrnoText(err));
  }
  obj.type = TypeOf(obj.st.st_mode);
  if (obj.type == ObjectType::kSymlink) {
    std::string buf(static_cast<size_t>(obj.st.st_size) + 1, '\0');
    while (true) {
      ssize_t n = readlinkat(dir_fd, name.c_str(), buf.data(), buf.size());
      if (n < 0) {
        if (errno == ENOENT) return std::optional<LiveObject>();
        return MakeError("cannot read the symlink " + display + ": " + ErrnoMessage());
      }
      if (static_cast<size_t>(n) < buf.size()) {
        buf.resize(static_cast<size_t>(n));
        break;
      }
      buf.resize(buf.size() * 2);  // the link changed since lstat
    }
    obj.link_target = std::move(buf);
    return std::optional<LiveObject>(std::move(obj));
  }
  if (obj.type == ObjectType::kOther) return std::optional<LiveObject>(std::move(obj));
  return MakeError("cannot read " + display + ": " + ErrnoText(err));
}

Result<std::string> ReadAll(int fd, size_t size_hint, const std::string& display) {
  // One read for a file of the expected size: a regular file returns fewer bytes than asked
  // only at its end.
  std::string out(size_hint + 1, '\0');
  size_t total = 0;
  while (true) {
    ssize_t n = read(fd, out.data() + total, out.size() - total);
    if (n < 0) {
      if (errno == EINTR) continue;
      return MakeError("cannot read " + display + ": " + ErrnoMessage());
    }
    if (n == 0) break;
    total += static_cast<size_t>(n);
    if (total < out.size()) {
      if (total >= size_hint) break;
      continue;
    }
    out.resize(out.size() * 2);
  }
  out.resize(total);
  return out;
}

Result<std::optional<struct stat>> WriteFileAt(int dir_fd, std::string_view leaf,
                                               std::string_view content, unsigned mode, uid_t uid,
                                               gid_t gid, bool no_replace,
                                               const std::string& display) {
  std::string tmp;
  std::string name(leaf);
  int raw = CreateTemp(dir_fd, leaf, tmp);
  if (raw < 0) {
    return MakeError("cannot create a temporary file beside " + display + ": " + ErrnoMessage());
  }
  UniqueFd fd(raw);
  auto fail = [&](const std::string& what) -> Error {
    std::string msg = what + " " + display + ": " + ErrnoMessage();
    fd.reset();
    unlinkat(dir_fd, tmp.c_str(), 0);
    return MakeError(msg);
  };
  size_t off = 0;
  while (off < content.size()) {
    ssize_t n = write(fd.get(), content.data() + off, content.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail("cannot write");
    }
    off += static_cast<size_t>(n);
  }
  // chown first: it clears the set-user-ID and set-group-ID bits that chmod then sets.
  if ((uid != static_cast<uid_t>(-1) || gid != static_cast<gid_t>(-1)) &&
      fchown(fd.get(), uid, gid) != 0) {
    return fail("cannot set the owner of");
  }
  if (fchmod(fd.get(), mode) != 0) return fail("cannot set the mode of");
  struct stat st {};
  if (fstat(fd.get(), &st) != 0) return fail("cannot write");
  if (close(fd.release()) != 0) {
    std::string msg = "cannot write " + display + ": " + ErrnoMessage();
    unlinkat(dir_fd, tmp.c_str(), 0);
    return MakeError(msg);
  }
  if (no_replace) {
    if (renameat2(dir_fd, tmp.c_str(), dir_fd, name.c_str(), RENAME_NOREPLACE) == 0) {
      return std::optional<struct stat>(st);
    }
    int err = errno;
    if (err == EINVAL || err == ENOSYS) {
      // The file system cannot rename without replacing: a hard link is just as exclusive.
      if (linkat(dir_fd, tmp.c_str(), dir_fd, name.c_str(), 0) == 0) {
        unlinkat(dir_fd, tmp.c_str(), 0);
        return std::optional<struct stat>(st);
      }
      err = errno;
    }
    unlinkat(dir_fd, tmp.c_str(), 0);
    if (err == EEXIST) return std::optional<struct stat>();
    return MakeError("cannot create " + display + ": " + ErrnoText(err));
  }
  if (renameat(dir_fd, tmp.c_str(), dir_fd, name.c_str()) != 0) {
    int err = errno;
    unlinkat(dir_fd, tmp.c_str(), 0);
    if (err == EISDIR) return MakeError(display + " is a directory; it is not replaced by a file");
    return MakeError("cannot replace " + display + ": " + ErrnoText(err));
  }
  return std::optional<struct stat>(st);
}

Result<bool> SymlinkAt(int dir_fd, std::string_view leaf, const std::string& target, bool replace,
                       const std::string& display) {
  std::string name(leaf);
  if (!replace) {
    if (symlinkat(target.c_str(), dir_fd, name.c_str()) == 0) return true;
    if (errno == EEXIST) return false;
    return MakeError("cannot create the symlink " + display + ": " + ErrnoMessage());
  }
  std::string tmp = TempName(leaf);
  if (symlinkat(target.c_str(), dir_fd, tmp.c_str()) != 0) {
    return MakeError("cannot create a temporary symlink beside " + display + ": " + ErrnoMessage());
  }
  if (renameat(dir_fd, tmp.c_str(), dir_fd, name.c_str()) != 0) {
    int err = errno;
    unlinkat(dir_fd, tmp.c_str(), 0);
    if (err == EISDIR) {
      return MakeError(display + " is a directory; it is not replaced by a symlink");
    }
    return MakeError("cannot replace " + display + ": " + ErrnoText(err));
  }
  return true;
}

namespace {

Status RemoveTreeAt(int dir_fd, const std::string& name, const std::string& display, int depth) {
  if (unlinkat(dir_fd, name.c_str(), 0) == 0 || errno == ENOENT) return Status::Ok();
  if (errno != EISDIR && errno != EPERM) {
    return MakeError("cannot remove " + display + ": " + ErrnoMessage());
  }
  if (depth >= kMaxRemoveDepth) {
    return MakeError("cannot remove " + display + ": folders nested more than " +
                     std::to_string(kMaxRemoveDepth) + " deep");
  }
  int raw = openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (raw < 0) return MakeError("cannot remove " + display + ": " + ErrnoMessage());
  UniqueFd sub(raw);
  auto entries = ListDir(sub.get(), display);
  if (!entries.ok()) return entries.error();
  for (const DirEntry& e : *entries) {
    Status st = RemoveTreeAt(sub.get(), e.name, display + "/" + e.name, depth + 1);
    if (!st.ok()) return st;
  }
  sub.reset();
  if (unlinkat(dir_fd, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT) {
    return MakeError("cannot remove " + display + ": " + ErrnoMessage());
  }
  return Status::Ok();
}

}  // namespace

Status RemoveTree(int dir_fd, const std::string& name, const std::string& display) {
  return RemoveTreeAt(dir_fd, name, display, 0);
}

Result<std::vector<DirEntry>> ListDir(int dir_fd, const std::string& display) {
  // fdopendir takes over its descriptor, so it gets a fresh one of the same folder.
  int raw = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (raw < 0) return MakeError("cannot list " + display + ": " + ErrnoMessage());
  DIR* dir = fdopendir(raw);
  if (dir == nullptr) {
    std::string msg = "cannot list " + display + ": " + ErrnoMessage();
    close(raw);
    return MakeError(msg);
  }
  std::vector<DirEntry> out;
  while (true) {
    errno = 0;
    struct dirent* ent = readdir(dir);
    if (ent == nullptr) {
      if (errno != 0) {
        std::string msg = "cannot list " + display + ": " + ErrnoMessage();
        closedir(dir);
        return MakeError(msg);
      }
      break;
    }
    std::string_view name = ent->d_name;
    if (name == "." || name == "..") continue;
    DirEntry e{std::string(name), ObjectType::kOther};
    switch (ent->d_type) {
      case DT_REG:
        e.type = ObjectType::kFile;
        break;
      case DT_DIR:
        e.type = ObjectType::kDirectory;
        break;
      case DT_LNK:
        e.type = ObjectType::kSymlink;
        break;
      case DT_UNKNOWN: {
        struct stat st {};
        if (fstatat(dirfd(dir), ent->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
          e.type = TypeOf(st.st_mode);
        }
        break;
      }
      default:
        break;
    }
    out.push_back(std::move(e));
  }
  closedir(dir);
  std::sort(out.begin(), out.end(),
            [](const DirEntry& a, const DirEntry& b) { return a.name < b.name; });
  return out;
}

}  // namespace driftless::providers::file
