#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "value/value.h"

namespace driftless::server::controller {

/// Where the server's log lines go: one JSON object per line, {"time", "level", "msg", fields...}
/// with sorted keys. Thread-safe. The default writes to standard error.
class Log {
 public:
  using Fields = std::vector<std::pair<std::string, value::Value>>;
  /// A log that writes to `fd` (2: standard error).
  explicit Log(int fd = 2) : fd_(fd) {}
  virtual ~Log() = default;
  /// Writes one line: level "info", "warning" or "error".
  virtual void Write(std::string_view level, std::string_view msg, const Fields& fields = {});
  /// The JSON text of one line, without the newline (what Write writes).
  static std::string Line(std::string_view level, std::string_view msg, const Fields& fields);

 private:
  int fd_;
};

}  // namespace driftless::server::controller
