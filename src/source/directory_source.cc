#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>

#include "base/file_util.h"
#include "source/source.h"

namespace driftless::source {

DirectorySource::DirectorySource(std::string root) : root_(std::move(root)) {
  while (root_.size() > 1 && root_.back() == '/') root_.pop_back();
}

namespace {

Status Walk(const std::string& root, const std::string& rel, std::vector<std::string>& out) {
  std::string dir = rel.empty() ? root : root + "/" + rel;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return MakeError("cannot list folder " + dir + ": " + ErrnoMessage());
  std::vector<std::pair<std::string, bool>> entries;
  while (struct dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == ".." || name == ".git" || name == ".driftless") continue;
    bool is_dir = e->d_type == DT_DIR;
    if (e->d_type == DT_UNKNOWN || e->d_type == DT_LNK) {
      struct stat st {};
      if (stat((dir + "/" + name).c_str(), &st) == 0) is_dir = S_ISDIR(st.st_mode);
      if (e->d_type == DT_LNK) is_dir = false;  // never follow folder links out of the tree
    }
    entries.emplace_back(std::move(name), is_dir);
  }
  closedir(d);
  for (auto& [name, is_dir] : entries) {
    std::string child = rel.empty() ? name : rel + "/" + name;
    if (is_dir) {
      Status s = Walk(root, child, out);
      if (!s.ok()) return s;
    } else {
      out.push_back(std::move(child));
    }
  }
  return Status::Ok();
}

}  // namespace

Result<std::vector<std::string>> DirectorySource::ListFiles() const {
  std::vector<std::string> out;
  Status s = Walk(root_, "", out);
  if (!s.ok()) return s.error();
  std::sort(out.begin(), out.end());
  return out;
}

Result<std::string> DirectorySource::ReadFile(const std::string& path) const {
  if (path.empty() || path[0] == '/' || path == ".." || path.find("../") == 0 ||
      path.find("/../") != std::string::npos) {
    return MakeError("path " + path + " is outside the repository");
  }
  return ReadFileToString(root_ + "/" + path);
}

}  // namespace driftless::source
