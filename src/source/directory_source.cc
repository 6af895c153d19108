#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>

#include "base/file_util.h"
#include "source/source.h"

namespace driftless::source {

DirectorySource::DirectorySource(std::string root, std::string revision)
    : root_(std::move(root)), revision_(std::move(revision)) {
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

SubfolderSource::SubfolderSource(std::unique_ptr<Source> inner, std::string prefix)
    : inner_(std::move(inner)), prefix_(std::move(prefix)) {}

Result<std::vector<std::string>> SubfolderSource::ListFiles() const {
  Result<std::vector<std::string>> all = inner_->ListFiles();
  if (!all.ok()) return all;
  std::vector<std::string> out;
  const std::string start = prefix_ + "/";
  for (auto& f : *all) {
    if (f.compare(0, start.size(), start) == 0) out.push_back(f.substr(start.size()));
  }
  return out;  // a sorted list stays sorted once the common prefix is removed
}

Result<std::string> SubfolderSource::ReadFile(const std::string& path) const {
  if (path.empty() || path[0] == '/' || path == ".." || path.rfind("../", 0) == 0 ||
      path.find("/../") != std::string::npos) {
    return MakeError("path " + path + " is outside the repository");
  }
  return inner_->ReadFile(prefix_ + "/" + path);
}

}  // namespace driftless::source
