#pragma once

#include <span>
#include <string>
#include <string_view>

#include "base/result.h"

namespace driftless {

/// Reads a whole file.
Result<std::string> ReadFileToString(const std::string& path);

/// Writes a file atomically: a temporary file in the same folder, then rename(2).
/// `mode` is applied to the temporary file before the rename.
Status WriteFileAtomic(const std::string& path, std::string_view content, unsigned mode = 0644);
/// The same with the content in pieces, written one after the other (a large file made of
/// parts need not be joined into one string first).
Status WriteFileAtomic(const std::string& path, std::span<const std::string_view> pieces,
                       unsigned mode = 0644);

/// Creates a folder and its parents (like mkdir -p).
Status MakeDirs(const std::string& path, unsigned mode = 0755);

/// "strerror(errno)" for the current errno.
std::string ErrnoMessage();

}  // namespace driftless
