#pragma once

// What the benchmark programs share: dying with a message, running a command, reading a watch's
// output line by line, and the arithmetic of timings.

#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace driftless::bench {

/// The clock of every timing.
using Clock = std::chrono::steady_clock;

/// Names the program in Die's messages and sets what Die does before exiting (for example,
/// stopping a server the benchmark started); call again to change the cleanup.
void SetDieContext(std::string program, std::function<void()> cleanup = nullptr);

/// Prints "PROGRAM: what" on standard error, runs the cleanup and exits with 1.
[[noreturn]] void Die(const std::string& what);

/// Runs a command (args[0] is looked up in PATH when it holds no slash) with `env` entries
/// (NAME=VALUE) added to its environment; its standard output goes to `out_path`, its standard
/// error to `err_path` ("" leaves the benchmark's own; the same path as out_path shares the
/// file). Returns the exit code, or -1 when it did not exit normally. With `cpu_seconds`, the
/// command's CPU time (user and system, its waited-for children included) goes there.
int Run(const std::vector<std::string>& args, const std::vector<std::string>& env = {},
        const std::string& out_path = "/dev/null", const std::string& err_path = "/dev/null",
        double* cpu_seconds = nullptr);

/// Starts a program (args[0], a path: not looked up in PATH) in the background with `env` added
/// and its standard output to a pipe, whose read end goes to *out_fd; returns its pid. Dies when
/// there is no pipe.
int StartPiped(const std::vector<std::string>& args, const std::vector<std::string>& env,
               int* out_fd);

/// The 1, 5 and 15 minute load averages ("2.40 1.78 1.41"), for the machine line of a report.
std::string LoadAverage();

/// A duration in seconds.
double Seconds(Clock::duration d);

/// The value at fraction `p` (0 = min, 0.5 = median, 1 = max) of `v`, which must not be empty.
double Percentile(std::vector<double> v, double p);

/// Reads the output of a process (a watch) from a pipe, line by line.
class LineReader {
 public:
  /// Reads from `fd` (not owned).
  explicit LineReader(int fd) : fd_(fd) {}

  /// Reads until a line holds every one of `needles` (true, the line in *found when not null)
  /// or `timeout` passes, or the output ends (false).
  bool WaitForLine(const std::vector<std::string>& needles, Clock::duration timeout,
                   std::string* found = nullptr);

 private:
  int fd_;
  std::string buffer_;
};

}  // namespace driftless::bench
