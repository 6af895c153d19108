#pragma once

#include <memory>
#include <string>
#include <vector>

#include "base/result.h"
#include "provider/provider.h"

namespace driftless::providers::file {

/// A managed object to watch: its path relative to the target root.
struct WatchedPath {
  std::string address;
  std::string path;
  bool is_directory = false;  ///< also watch what happens inside it (purge, new entries)
};

/// Watches the objects with inotify: their parent folders (events naming them), and managed
/// folders themselves. Objects whose folder does not exist are left to the periodic scan.
Result<std::unique_ptr<provider::Watcher>> WatchFiles(const std::string& root,
                                                      const std::vector<WatchedPath>& paths);

}  // namespace driftless::providers::file
