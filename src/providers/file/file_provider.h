#pragma once

#include <memory>

#include "provider/provider.h"

namespace driftless::providers::file {

/// The `file` provider: files, directories and symlinks beneath a target's `root` folder on
/// this host (kinds file.file, file.directory, file.symlink). See README.md beside this file.
std::unique_ptr<provider::Provider> NewFileProvider();

}  // namespace driftless::providers::file
