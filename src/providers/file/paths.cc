#include "providers/file/paths.h"

#include <cstdint>
#include <cstdio>

namespace driftless::providers::file {
namespace {

constexpr size_t kMaxSegment = 255;
constexpr size_t kMaxPath = 4095;

std::string Quoted(std::string_view s) { return "\"" + std::string(s) + "\""; }

}  // namespace

std::string PathProblem(std::string_view path, std::string_view root) {
  if (path.empty()) return "path is empty";
  if (path.find('\0') != std::string_view::npos) return "path contains a NUL byte";
  if (path.front() == '/') {
    return "path " + Quoted(path) + " is absolute; paths are relative to the target root " +
           std::string(root);
  }
  if (path.size() > kMaxPath) return "path is longer than 4095 bytes";
  int depth = 0;
  bool dotdot = false;
  size_t start = 0;
  while (true) {
    size_t slash = path.find('/', start);
    std::string_view seg = path.substr(
        start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (seg.empty()) {
      if (slash == std::string_view::npos) return "path " + Quoted(path) + " ends with \"/\"";
      return "path " + Quoted(path) + " has an empty segment (\"//\")";
    }
    if (seg == "..") {
      dotdot = true;
      if (--depth < 0) {
        return "path " + Quoted(path) + " escapes the target root " + std::string(root);
      }
    } else if (seg == ".") {
      return "path " + Quoted(path) + " has a \".\" segment; write the path without it";
    } else {
      if (seg.size() > kMaxSegment) {
        return "path " + Quoted(path) + " has a segment longer than 255 bytes";
      }
      ++depth;
    }
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  if (dotdot) {
    return "path " + Quoted(path) +
           " has a \"..\" segment; write the path inside the target root " + std::string(root) +
           " without it";
  }
  return "";
}

std::pair<std::string_view, std::string_view> SplitParent(std::string_view path) {
  size_t slash = path.rfind('/');
  if (slash == std::string_view::npos) return {std::string_view(), path};
  return {path.substr(0, slash), path.substr(slash + 1)};
}

std::optional<unsigned> ParseMode(std::string_view text) {
  if (text.empty() || text.size() > 5) return std::nullopt;
  unsigned mode = 0;
  for (char c : text) {
    if (c < '0' || c > '7') return std::nullopt;
    mode = mode * 8 + static_cast<unsigned>(c - '0');
  }
  if (mode > 07777) return std::nullopt;
  return mode;
}

std::string FormatMode(unsigned mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", mode & 07777);
  return buf;
}

std::optional<unsigned> ParseNumericId(std::string_view text) {
  if (text.empty() || text.size() > 10) return std::nullopt;
  uint64_t id = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    id = id * 10 + static_cast<uint64_t>(c - '0');
  }
  if (id >= 4294967295ULL) return std::nullopt;
  return static_cast<unsigned>(id);
}

std::string DisplayPath(std::string_view root, std::string_view rel) {
  std::string out(root);
  if (rel.empty()) return out;
  if (out.empty() || out.back() != '/') out += '/';
  out += rel;
  return out;
}

std::optional<std::string> CanonicalRoot(std::string_view root, std::string& problem) {
  if (root.empty()) {
    problem = "root is empty";
    return std::nullopt;
  }
  if (root.find('\0') != std::string_view::npos) {
    problem = "root contains a NUL byte";
    return std::nullopt;
  }
  if (root.front() != '/') {
    problem = "root \"" + std::string(root) + "\" is not an absolute path";
    return std::nullopt;
  }
  std::string out;
  size_t start = 1;
  while (start <= root.size()) {
    size_t slash = root.find('/', start);
    if (slash == std::string_view::npos) slash = root.size();
    std::string_view seg = root.substr(start, slash - start);
    if (seg == "." || seg == "..") {
      problem = "root \"" + std::string(root) + "\" has a \"" + std::string(seg) +
                "\" segment; write the absolute path without it";
      return std::nullopt;
    }
    if (!seg.empty()) {
      out += '/';
      out += seg;
    }
    start = slash + 1;
  }
  if (out.empty()) out = "/";
  return out;
}

}  // namespace driftless::providers::file
