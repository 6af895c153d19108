#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace driftless {

/// A position in a source file; line and column are 1-based, 0 means unknown.
struct SourcePos {
  std::string file;
  uint32_t line = 0;
  uint32_t column = 0;

  /// "file:line:col", "file:line", "file" or "" depending on what is known.
  std::string ToString() const;
};

/// One problem found in the user's input.
struct Diagnostic {
  enum class Severity { kError, kWarning };
  Severity severity = Severity::kError;
  SourcePos pos;
  std::string message;  ///< what is wrong
  std::string hint;     ///< what to do about it (optional)

  /// "file:line:col: error: message (hint)".
  std::string ToString() const;
};

/// A collection of diagnostics: all problems of a run are reported together.
class Diagnostics {
 public:
  void Error(SourcePos pos, std::string message, std::string hint = "");
  void Warning(SourcePos pos, std::string message, std::string hint = "");
  void Add(Diagnostic d) { items_.push_back(std::move(d)); }
  void Append(const Diagnostics& other);

  bool HasErrors() const;
  size_t ErrorCount() const;
  bool empty() const { return items_.empty(); }
  const std::vector<Diagnostic>& items() const { return items_; }

  /// Sorts by file, line, column, message so output is deterministic.
  void Sort();
  /// All diagnostics, one per line.
  std::string ToString() const;

 private:
  std::vector<Diagnostic> items_;
};

}  // namespace driftless
