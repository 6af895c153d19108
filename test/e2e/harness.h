#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace driftless::test {

/// The outcome of running the driftless binary.
struct RunResult {
  int exit_code = -1;  ///< -1 when killed by a signal
  int signal = 0;
  std::string out;
  std::string err;
};

/// A temporary folder removed at destruction, with a repository in `repo()`, a target root in
/// `root()` and a state file `state()`.
class Sandbox {
 public:
  Sandbox();
  ~Sandbox();
  Sandbox(const Sandbox&) = delete;
  Sandbox& operator=(const Sandbox&) = delete;

  const std::string& dir() const { return dir_; }
  std::string repo() const { return dir_ + "/repo"; }
  std::string root() const { return dir_ + "/root"; }
  std::string state() const { return dir_ + "/state.db"; }

  /// Writes a file under repo() (parents created).
  void WriteRepoFile(const std::string& rel, const std::string& content) const;
  /// A driftless.yaml with one file target `host` rooted at root(), plus `extra` appended.
  void WriteProject(const std::string& extra = "") const;
  /// Runs the driftless binary with `args` plus --dir repo() --state state() (not added when
  /// args start with a top-level flag such as --version, or name them already); `env` entries are
  /// NAME=VALUE added to the environment; `stdin_text` is fed on standard input.
  RunResult Run(const std::vector<std::string>& args, const std::vector<std::string>& env = {},
                const std::string& stdin_text = "") const;
  /// Starts the binary in the background (same arguments as Run); returns its pid. Output goes
  /// to files under dir().
  int Start(const std::vector<std::string>& args, const std::vector<std::string>& env = {}) const;

 private:
  std::string dir_;
};

/// A parsed JSON document, for reading `--json` output in tests.
struct Json {
  enum class Type { kNull, kBool, kNumber, kString, kArray, kObject };
  Type type = Type::kNull;
  bool boolean = false;
  double number = 0;
  std::string text;
  std::vector<Json> items;
  std::vector<std::pair<std::string, Json>> fields;

  const Json* Find(std::string_view key) const;
  /// The member's string, or "".
  std::string Str(std::string_view key) const;
  /// The member's number, or -1.
  int64_t Int(std::string_view key) const;
  /// True when the member is `true`.
  bool Bool(std::string_view key) const;
  /// True when the member is missing or null.
  bool IsNull(std::string_view key) const;
};

/// Parses JSON with the engine's own parser; false when it is not valid JSON.
bool ReadJson(std::string_view text, Json* out);

/// Reads a whole file ("" when missing).
std::string ReadFile(const std::string& path);
/// True when the path exists (lstat).
bool Exists(const std::string& path);
/// Permission bits of a path (stat), or -1.
int ModeOf(const std::string& path);
/// Waits for a child started by Sandbox::Start; returns its exit code or -signal.
int Wait(int pid);

}  // namespace driftless::test
