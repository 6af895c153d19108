// The files of one commit: the tree is walked once when the snapshot is made (path -> blob id);
// blobs are read on demand from the object database. See RepoHandle for the threading rules.

#include <algorithm>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

#include "source/git_internal.h"

namespace driftless::source::git_internal {
namespace {

// What a tree holds besides readable files, for ReadFile's messages.
enum class Special { kSymlink, kSubmodule };

struct TreeIndex {
  std::vector<std::string> files;                     // sorted
  std::unordered_map<std::string, git_oid> blobs;     // path -> blob id, for every listed file
  std::unordered_map<std::string, Special> specials;  // symbolic links and submodules
};

int IndexEntry(const char* root, const git_tree_entry* entry, void* payload) {
  auto& index = *static_cast<TreeIndex*>(payload);
  std::string name = git_tree_entry_name(entry);
  // Same rule as DirectorySource: nothing named .git or .driftless, at any depth.
  if (name == ".git" || name == ".driftless") return 1;  // > 0: skip the entry (and its subtree)
  std::string path = std::string(root) + name;           // root is "" or "dir/sub/"
  switch (git_tree_entry_filemode(entry)) {
    case GIT_FILEMODE_BLOB:
    case GIT_FILEMODE_BLOB_EXECUTABLE:
      index.blobs.emplace(path, *git_tree_entry_id(entry));
      index.files.push_back(std::move(path));
      break;
    case GIT_FILEMODE_LINK:
      index.specials.emplace(std::move(path), Special::kSymlink);
      break;
    case GIT_FILEMODE_COMMIT:
      index.specials.emplace(std::move(path), Special::kSubmodule);
      break;
    default:  // trees: walked into
      break;
  }
  return 0;
}

// "a/./b" and "./a//b" -> "a/b"; std::nullopt when the path is absolute or climbs with "..".
std::optional<std::string> NormalizePath(const std::string& path) {
  if (path.empty() || path[0] == '/') return std::nullopt;
  std::string out;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    std::string_view part(path.data() + start, end - start);
    if (part == "..") return std::nullopt;
    if (!part.empty() && part != ".") {
      if (!out.empty()) out += '/';
      out += part;
    }
    start = end + 1;
  }
  if (out.empty()) return std::nullopt;
  return out;
}

class GitSnapshot : public Source {
 public:
  GitSnapshot(std::shared_ptr<RepoHandle> handle, std::string id, std::string location,
              TreeIndex index)
      : handle_(std::move(handle)),
        id_(std::move(id)),
        location_(std::move(location)),
        index_(std::move(index)) {}

  Result<std::vector<std::string>> ListFiles() const override { return index_.files; }

  Result<std::string> ReadFile(const std::string& path) const override {
    std::optional<std::string> clean = NormalizePath(path);
    if (!clean) return MakeError("path " + path + " is outside the repository");
    auto it = index_.blobs.find(*clean);
    if (it == index_.blobs.end()) {
      auto special = index_.specials.find(*clean);
      if (special != index_.specials.end() && special->second == Special::kSymlink) {
        return MakeError(path + " is a symbolic link in " + Describe() +
                         "; only regular files are read from a commit");
      }
      if (special != index_.specials.end()) {
        return MakeError(path + " is a submodule in " + Describe() + "; submodules are not read");
      }
      return MakeError("no file " + path + " in " + Describe());
    }
    git_odb_object* raw = nullptr;
    int rc;
    if (handle_->odb_needs_lock) {
      std::lock_guard<std::mutex> lock(handle_->mu);
      rc = git_odb_read(&raw, handle_->odb.get(), &it->second);
    } else {
      rc = git_odb_read(&raw, handle_->odb.get(), &it->second);  // thread-safe: see RepoHandle
    }
    if (rc < 0) {
      return MakeError("cannot read " + path + " in " + Describe() + ": " + LastGitError());
    }
    OdbObjectPtr object(raw);
    return std::string(static_cast<const char*>(git_odb_object_data(object.get())),
                       git_odb_object_size(object.get()));
  }

  std::string Describe() const override {
    return "commit " + id_.substr(0, 7) + " of " + location_;
  }
  std::string Revision() const override { return id_; }

 private:
  std::shared_ptr<RepoHandle> handle_;
  std::string id_;
  std::string location_;
  TreeIndex index_;  // immutable after construction: read from any thread
};

}  // namespace

Result<std::unique_ptr<Source>> MakeSnapshot(std::shared_ptr<RepoHandle> handle,
                                             const git_commit* commit,
                                             const std::string& location) {
  std::string id = OidHex(*git_commit_id(commit));
  git_tree* raw_tree = nullptr;
  if (git_commit_tree(&raw_tree, commit) < 0) {
    return MakeError("cannot read the tree of commit " + id.substr(0, 7) + " of " + location +
                     ": " + LastGitError());
  }
  TreePtr tree(raw_tree);
  TreeIndex index;
  if (git_tree_walk(tree.get(), GIT_TREEWALK_PRE, IndexEntry, &index) < 0) {
    return MakeError("cannot list the files of commit " + id.substr(0, 7) + " of " + location +
                     ": " + LastGitError());
  }
  // A pre-order walk of Git's tree order is already byte order; sorting keeps the contract
  // independent of that detail and costs little next to the walk.
  std::sort(index.files.begin(), index.files.end());
  return std::unique_ptr<Source>(
      new GitSnapshot(std::move(handle), std::move(id), location, std::move(index)));
}

}  // namespace driftless::source::git_internal
