#pragma once

#include <chrono>
#include <cstdio>
#include <mutex>
#include <string>

namespace driftless::cli {

/// True when the stream is a terminal.
bool IsTerminal(FILE* f);

/// True when colour should be used on `f`: a terminal, and NO_COLOR not set.
bool UseColor(FILE* f, bool no_color_flag);

/// Asks a yes/no question on the terminal; true only for "yes".
bool Confirm(const std::string& question);

/// A one-line progress indicator on stderr, redrawn at most every 100 ms; silent unless stderr
/// is a terminal.
class ProgressLine {
 public:
  explicit ProgressLine(std::string verb);
  ~ProgressLine();
  void Update(size_t done, size_t total, const std::string& what);
  void Done();

 private:
  std::string verb_;
  bool enabled_;
  bool drawn_ = false;
  std::mutex mu_;
  std::chrono::steady_clock::time_point last_{};
};

}  // namespace driftless::cli
