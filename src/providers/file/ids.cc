#include "providers/file/ids.h"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <cerrno>
#include <optional>
#include <vector>

#include "providers/file/paths.h"

namespace driftless::providers::file {
namespace {

// Cached answers are dropped after this long, so renamed users show up soon in a long-running
// controller.
constexpr std::chrono::seconds kCacheLifetime{10};

// Calls one of the reentrant lookups with a buffer that grows until it fits. Returns whether an
// entry was found.
template <typename Entry, typename Lookup>
bool LookUp(Lookup lookup, Entry& entry) {
  std::vector<char> buf(4096);
  while (true) {
    Entry* found = nullptr;
    int rc = lookup(&entry, buf.data(), buf.size(), &found);
    if (rc == ERANGE && buf.size() < (1u << 22)) {
      buf.resize(buf.size() * 2);
      continue;
    }
    if (rc != 0 || found == nullptr) return false;
    return true;
  }
}

std::optional<std::string> LookUpUserName(uid_t uid) {
  struct passwd pw {};
  std::string name;
  bool ok = LookUp(
      [&](struct passwd* e, char* b, size_t n, struct passwd** r) {
        int rc = getpwuid_r(uid, e, b, n, r);
        if (rc == 0 && *r != nullptr) name = (*r)->pw_name;
        return rc;
      },
      pw);
  if (!ok) return std::nullopt;
  return name;
}

std::optional<std::string> LookUpGroupName(gid_t gid) {
  struct group gr {};
  std::string name;
  bool ok = LookUp(
      [&](struct group* e, char* b, size_t n, struct group** r) {
        int rc = getgrgid_r(gid, e, b, n, r);
        if (rc == 0 && *r != nullptr) name = (*r)->gr_name;
        return rc;
      },
      gr);
  if (!ok) return std::nullopt;
  return name;
}

std::optional<uid_t> LookUpUserId(const std::string& name) {
  struct passwd pw {};
  uid_t uid = 0;
  bool ok = LookUp(
      [&](struct passwd* e, char* b, size_t n, struct passwd** r) {
        int rc = getpwnam_r(name.c_str(), e, b, n, r);
        if (rc == 0 && *r != nullptr) uid = (*r)->pw_uid;
        return rc;
      },
      pw);
  if (!ok) return std::nullopt;
  return uid;
}

std::optional<gid_t> LookUpGroupId(const std::string& name) {
  struct group gr {};
  gid_t gid = 0;
  bool ok = LookUp(
      [&](struct group* e, char* b, size_t n, struct group** r) {
        int rc = getgrnam_r(name.c_str(), e, b, n, r);
        if (rc == 0 && *r != nullptr) gid = (*r)->gr_gid;
        return rc;
      },
      gr);
  if (!ok) return std::nullopt;
  return gid;
}

}  // namespace

void IdNames::ExpireLocked() {
  auto now = std::chrono::steady_clock::now();
  if (now - filled_ < kCacheLifetime) return;
  filled_ = now;
  user_names_.clear();
  group_names_.clear();
  user_ids_.clear();
  group_ids_.clear();
}

std::string IdNames::UserName(uid_t uid) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    ExpireLocked();
    auto it = user_names_.find(uid);
    if (it != user_names_.end()) return it->second;
  }
  // The lookup itself runs unlocked: it may read files or ask a name service.
  std::string name = LookUpUserName(uid).value_or(std::to_string(uid));
  std::lock_guard<std::mutex> lock(mu_);
  user_names_.emplace(uid, name);
  return name;
}

std::string IdNames::GroupName(gid_t gid) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    ExpireLocked();
    auto it = group_names_.find(gid);
    if (it != group_names_.end()) return it->second;
  }
  std::string name = LookUpGroupName(gid).value_or(std::to_string(gid));
  std::lock_guard<std::mutex> lock(mu_);
  group_names_.emplace(gid, name);
  return name;
}

Result<uid_t> IdNames::UserId(const std::string& name) {
  if (auto numeric = ParseNumericId(name)) return static_cast<uid_t>(*numeric);
  {
    std::lock_guard<std::mutex> lock(mu_);
    ExpireLocked();
    auto it = user_ids_.find(name);
    if (it != user_ids_.end()) return it->second;
  }
  std::optional<uid_t> uid = LookUpUserId(name);
  if (!uid) return MakeError("owner \"" + name + "\" is not a user on this host");
  std::lock_guard<std::mutex> lock(mu_);
  user_ids_.emplace(name, *uid);
  return *uid;
}

Result<gid_t> IdNames::GroupId(const std::string& name) {
  if (auto numeric = ParseNumericId(name)) return static_cast<gid_t>(*numeric);
  {
    std::lock_guard<std::mutex> lock(mu_);
    ExpireLocked();
    auto it = group_ids_.find(name);
    if (it != group_ids_.end()) return it->second;
  }
  std::optional<gid_t> gid = LookUpGroupId(name);
  if (!gid) return MakeError("group \"" + name + "\" is not a group on this host");
  std::lock_guard<std::mutex> lock(mu_);
  group_ids_.emplace(name, *gid);
  return *gid;
}

std::string IdNames::CanonicalUser(const std::string& declared) {
  // Through the id and back, so that an alias ("toor") reads as the name Read reports ("root").
  Result<uid_t> uid = UserId(declared);
  if (!uid.ok()) return declared;
  return UserName(*uid);
}

std::string IdNames::CanonicalGroup(const std::string& declared) {
  Result<gid_t> gid = GroupId(declared);
  if (!gid.ok()) return declared;
  return GroupName(*gid);
}

}  // namespace driftless::providers::file
