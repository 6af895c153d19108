#pragma once

#include <sys/types.h>

#include <chrono>
#include <mutex>
#include <string>
#include <unordered_map>

#include "base/result.h"

namespace driftless::providers::file {

/// Translates between user and group names and ids through the system databases
/// (getpwnam_r and friends), caching answers for a few seconds so that reading many files costs
/// no lookup per file. Safe to use from several threads at once.
class IdNames {
 public:
  /// The name of a user id, or the id in decimal when it has no name.
  std::string UserName(uid_t uid);
  /// The name of a group id, or the id in decimal when it has no name.
  std::string GroupName(gid_t gid);
  /// The id of a user given by name or by number; an unknown name is an error.
  Result<uid_t> UserId(const std::string& name);
  /// The id of a group given by name or by number; an unknown name is an error.
  Result<gid_t> GroupId(const std::string& name);
  /// The canonical spelling of a declared owner: the name Read reports for its id (a numeric id
  /// that has a name becomes the name, an alias becomes the first name of its id); an unknown
  /// name is returned as it is (it is reported when writing).
  std::string CanonicalUser(const std::string& declared);
  /// The same for a group.
  std::string CanonicalGroup(const std::string& declared);

 private:
  void ExpireLocked();

  std::mutex mu_;
  std::chrono::steady_clock::time_point filled_{};
  std::unordered_map<uid_t, std::string> user_names_;
  std::unordered_map<gid_t, std::string> group_names_;
  std::unordered_map<std::string, uid_t> user_ids_;   // only names that exist
  std::unordered_map<std::string, gid_t> group_ids_;  // only names that exist
};

}  // namespace driftless::providers::file
