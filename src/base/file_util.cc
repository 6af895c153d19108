#include "base/file_util.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/hash.h"

namespace driftless {

std::string ErrnoMessage() { return std::strerror(errno); }

Result<std::string> ReadFileToString(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return MakeError("cannot read " + path + ": " + ErrnoMessage());
  std::string out;
  struct stat st {};
  if (fstat(fd, &st) == 0 && st.st_size > 0) out.reserve(static_cast<size_t>(st.st_size));
  char buf[65536];
  while (true) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      std::string msg = "cannot read " + path + ": " + ErrnoMessage();
      close(fd);
      return MakeError(msg);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return out;
}

Status WriteFileAtomic(const std::string& path, std::string_view content, unsigned mode) {
  return WriteFileAtomic(path, std::span<const std::string_view>(&content, 1), mode);
}

Status WriteFileAtomic(const std::string& path, std::span<const std::string_view> pieces,
                       unsigned mode) {
  size_t slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : path.substr(0, slash);
  std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  std::string tmp = dir + "/." + base + ".driftless-" + RandomHex(4);
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return MakeError("cannot create " + tmp + ": " + ErrnoMessage());
  for (std::string_view content : pieces) {
    size_t off = 0;
    while (off < content.size()) {
      ssize_t n = write(fd, content.data() + off, content.size() - off);
      if (n < 0) {
        if (errno == EINTR) continue;
        std::string msg = "cannot write " + tmp + ": " + ErrnoMessage();
        close(fd);
        unlink(tmp.c_str());
        return MakeError(msg);
      }
      off += static_cast<size_t>(n);
    }
  }
  if (fchmod(fd, mode) != 0 || close(fd) != 0) {
    std::string msg = "cannot finish " + tmp + ": " + ErrnoMessage();
    unlink(tmp.c_str());
    return MakeError(msg);
  }
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    std::string msg = "cannot rename " + tmp + " to " + path + ": " + ErrnoMessage();
    unlink(tmp.c_str());
    return MakeError(msg);
  }
  return Status::Ok();
}

Status MakeDirs(const std::string& path, unsigned mode) {
  if (path.empty()) return Status::Ok();
  struct stat st {};
  if (stat(path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) return Status::Ok();
    return MakeError(path + " exists and is not a folder");
  }
  size_t slash = path.rfind('/');
  if (slash != std::string::npos && slash > 0) {
    Status parent = MakeDirs(path.substr(0, slash), mode);
    if (!parent.ok()) return parent;
  }
  if (mkdir(path.c_str(), mode) != 0 && errno != EEXIST) {
    return MakeError("cannot create folder " + path + ": " + ErrnoMessage());
  }
  return Status::Ok();
}

}  // namespace driftless
