#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "server/http/testing/raw_client.h"

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
  virtual ~Sandbox();
  Sandbox(const Sandbox&) = delete;
  Sandbox& operator=(const Sandbox&) = delete;

  const std::string& dir() const { return dir_; }
  std::string repo() const { return dir_ + "/repo"; }
  std::string root() const { return dir_ + "/root"; }
  std::string state() const { return dir_ + "/state.db"; }
  /// Where the commands of Spawn and History keep their state: state() here.
  virtual std::string StateLocation() const { return state(); }

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
/// The raw bytes of a sandbox's SQLite state and its side files (-wal, -shm, -journal): what a
/// check that something never reaches state must search, since recent writes sit in the WAL.
std::string StateBytes(const Sandbox& s);
/// True when the path exists (lstat).
bool Exists(const std::string& path);
/// Permission bits of a path (stat), or -1.
int ModeOf(const std::string& path);
/// Waits for a child started by Sandbox::Start or Spawn; returns its exit code or -signal.
int Wait(int pid);
/// True once the child has exited; it is left to be reaped by Wait.
bool Exited(int pid);

/// Parses `text`; fails the test (and returns an empty value) when it is not JSON. `what` names
/// the output in the failure message.
Json ParseJsonOrFail(const std::string& text, const std::string& what);
/// The exit code and the start of both outputs of a run, for failure messages.
std::string Summary(const RunResult& r);

/// A sandbox whose commands use a fresh database on the test PostgreSQL server as their state
/// (uri() is empty when it could not be made).
class PgSandbox : public Sandbox {
 public:
  /// Creates the database (named dl_e2e_...).
  PgSandbox();

  /// The database's libpq connection string.
  const std::string& dsn() const { return dsn_; }
  /// The same as a postgresql:// URI, as --state takes it.
  const std::string& uri() const { return uri_; }
  /// uri().
  std::string StateLocation() const override { return uri_; }
  /// Run with `--state uri()` appended.
  RunResult Pg(std::vector<std::string> args, const std::vector<std::string>& env = {}) const;

 private:
  std::string dsn_;
  std::string uri_;
};

/// A background driftless process with its own output files.
struct Proc {
  int pid = -1;          ///< for Wait, Exited and kill
  std::string out_path;  ///< its standard output
  std::string err_path;  ///< its standard error

  /// Its standard output so far.
  std::string Out() const { return ReadFile(out_path); }
  /// Its standard error so far.
  std::string Err() const { return ReadFile(err_path); }
};

/// Starts the binary in the background with `args` plus --dir s.repo() --state
/// s.StateLocation(); its output goes to s.dir()/`tag`.out and .err.
Proc Spawn(const Sandbox& s, std::vector<std::string> args, const std::string& tag);

/// Runs git `args` (a shell fragment) in `dir` with the user's configuration kept out (HOME is
/// the sandbox's folder) and a fixed author; fails the test when git fails.
void GitIn(const Sandbox& box, const std::string& dir, const std::string& args);

/// What the tests of `driftless serve` share: a sandbox, the server process (killed when the
/// test ends and it still runs), git in the sandbox, and a repository whose first commit is
/// mirrored as origin.git, which the server follows by file://.
class ServeFixture : public ::testing::Test {
 protected:
  void TearDown() override;
  /// Git in `dir` (GitIn).
  void Git(const std::string& dir, const std::string& args) { GitIn(box_, dir, args); }
  /// Writes app.yaml: the file.file `app` (app.conf on the target `host`) holding `content`.
  void WriteApp(const std::string& content);
  /// Writes driftless.yaml (project `shop`, the `environments` rules given as YAML lines, the
  /// file target `host` under box_.root()/${env}, then `extra` YAML lines), commits what the
  /// repository holds as its first commit and clones it bare as origin.git.
  void CommitFirst(const std::string& environments, const std::string& extra = "");
  /// Waits (up to kPatience) until the server's standard error holds `needle` `times` times.
  bool ErrHas(const std::string& needle, size_t times = 1);
  /// A new token made by `driftless token create` (alone on the last line of its output),
  /// limited to the environments `envs` matches.
  std::string Token(const std::string& role, const std::string& name,
                    const std::string& envs = "**");
  /// `file://` + the mirror's path, for `serve --repo`.
  std::string Origin() const { return "file://" + box_.dir() + "/origin.git"; }

  Sandbox box_;
  Proc proc_;
};

/// The TCP port a `driftless serve` process logged as listening on (its
/// `{"address":"HOST:PORT","msg":"listening"}` line), waiting for that line; 0 when it never came.
uint16_t ServePort(const Proc& p);

/// What an HTTP request to a served port got: status 0 when the connection failed.
struct HttpReply {
  int status = 0;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  ///< names lowercased
};
/// How long a test waits for what an event stream should show: a failure detector, never a
/// measurement.
inline constexpr std::chrono::seconds kStreamPatience{60};
/// Opens GET /api/v1/events on 127.0.0.1:`port` as a stream with `token` (and `extra` header
/// lines, each ending in CRLF); waits for its 200 response header (test failures otherwise).
server::http::testing::RawClient OpenEventStream(uint16_t port, const std::string& token,
                                                 const std::string& extra = "");
/// Sends one request (HTTP/1.1, Connection: close) to 127.0.0.1:`port` and reads the answer.
/// `headers` are "Name: value" lines.
HttpReply HttpRequest(uint16_t port, const std::string& method, const std::string& path,
                      const std::vector<std::string>& headers = {}, const std::string& body = "");

/// One API request with `token` as its bearer (none when empty); a POST's body is JSON.
HttpReply ApiCall(uint16_t port, const std::string& method, const std::string& target,
                  const std::string& token, const std::string& body = "");

/// The applies of `env` (`history ENV --json`, up to 1,000) on s.StateLocation(), oldest first.
std::vector<Json> History(const Sandbox& s, const std::string& env);

/// Expects the applies of one environment (oldest first), one per process, to have run one after
/// the other: all succeeded, the first created `files` resources and each later one updated them,
/// each started after the one before had finished.
void ExpectSerialised(const std::vector<Json>& applies, int files);

/// A project of `count` file.file resources f0, f1, ... whose content carries ${var.gen}
/// ("generation GEN of fI\n"), so that each run with another --var gen=N has every file to
/// update.
struct GenerationRepo {
  int count = 0;
  bool grouped = false;  ///< under 16 folders g0..g15 rather than all at the root
  bool chained = false;  ///< each depends on the one before, in chains of 8
};
/// Writes `repo` into s.repo(), on one file target `host` rooted at `root` (may use ${env}).
void WriteGenerationRepo(const Sandbox& s, const GenerationRepo& repo, const std::string& root);
/// Counts the files of `repo` under `dir` that do not hold generation `gen`.
int WrongFiles(const std::string& dir, const GenerationRepo& repo, const std::string& gen);

/// The output file (`suffix` ".out" or ".err") of a process started by Sandbox::Start (with
/// several, any one of them), or "" when there is none.
std::string BackgroundFile(const Sandbox& s, const std::string& suffix);
/// The standard output of the process started by Sandbox::Start so far.
std::string BackgroundOutput(const Sandbox& s);
/// How often `needle` stands in `text`.
size_t CountOf(const std::string& text, const std::string& needle);
/// Waits (up to kPatience) until BackgroundOutput holds `needle` at least `times` times.
bool WaitForOutput(const Sandbox& s, const std::string& needle, size_t times = 1);

// --- waiting for what processes report, and holding them in a state ---
//
// No test waits for a while and hopes: it waits for what a process reports (its output, a state
// row, a file) and, when it needs a process to stay in a state, freezes it there (SIGSTOP).
// Every wait gives up after kPatience, as a failure detector only: on a loaded machine the
// things waited for take long, and that must never fail a test.

/// How long a test waits for what a process is to report before it gives up.
inline constexpr std::chrono::seconds kPatience{120};

/// Polls `done` until it holds (true) or `patience` passed (false).
bool PollUntil(const std::function<bool()>& done, std::chrono::milliseconds patience = kPatience);

/// Stops the child `pid` (SIGSTOP) and returns once it is stopped; false when it exited first.
bool Freeze(int pid);
/// Lets a frozen child run on (SIGCONT).
void Thaw(int pid);
/// Freezes the child `pid` in a state where `ready()` holds, as checked while it is frozen:
/// polls `ready()` while the child runs, freezes it, checks again, and thaws it to poll on when
/// the state has passed. False (the child running) when it exited first or after `patience`.
bool FreezeWhen(int pid, const std::function<bool()>& ready,
                std::chrono::milliseconds patience = kPatience);

/// Steps the child `pid` through its work, looking only while it is frozen: freezes it and
/// calls `look()`, which returns 0 when the child is where the test wants it (StepUntil then
/// returns true, the child frozen) or how many clock ticks of CPU time (of all its threads) the
/// child may use before the next look. The child moves between two looks by that much of its
/// own work, however long a look takes and however loaded the machine is, so a test that steps
/// in quanta smaller than the state it waits for cannot jump over it. False (the child running
/// or gone) when it exited first or after `patience`.
bool StepUntil(int pid, const std::function<int()>& look,
               std::chrono::milliseconds patience = kPatience);

/// True when process `pid` is inside a write transaction on the SQLite state of `s` (it holds
/// the WAL write lock: a POSIX write lock on byte 120 of state.db-shm, as /proc/locks shows).
/// A writer frozen there would make every other writer fail with "database is locked".
bool InStateWrite(const Sandbox& s, int pid);

/// What history says of the apply (or destroy) that process `pid` runs or ran in `env`.
struct ApplyProgress {
  int64_t id = 0;      ///< 0: it has not recorded its start
  std::string status;  ///< "running", "succeeded", "interrupted", ...
  int done = 0;        ///< changes recorded done
  int pending = 0;     ///< changes not yet recorded
};
ApplyProgress ProgressOf(const Sandbox& s, const std::string& env, int pid);

/// Steps the apply that process `pid` runs in `env` (StepUntil) until history shows it running
/// with at least `share` of its changes done (and at least one), some still pending, and `also()`
/// holds; `*progress` (if given) is what the last look saw. Between looks the apply may use
/// half the CPU time that the fastest pace seen so far would need to reach the share (at least a
/// tick; before any pace is known a doubling quantum of at most 8 ticks), so that it is caught
/// however slow each look is. False when it exited first or after `patience`.
bool StepToShare(const Sandbox& s, const std::string& env, int pid, double share,
                 const std::function<bool()>& also, ApplyProgress* progress = nullptr,
                 std::chrono::milliseconds patience = kPatience);

/// Freezes the apply that process `pid` runs in `env` in the middle of its work: history shows
/// it running with changes done and changes pending, and it is outside a write transaction of
/// the state, so that other commands can use the state while it is frozen (StepToShare). False
/// when it was not caught so (it exited first, or after kPatience).
bool FreezeMidApply(const Sandbox& s, const std::string& env, int pid);

/// Waits until `p` says on standard error that it waits for the lock held by process
/// `holder_pid` ("waiting up to ... held by USER@HOST (pid N) ..."); a failure when it exited
/// first or after kPatience.
::testing::AssertionResult SaysItWaits(const Proc& p, int holder_pid);

/// A background driftless process on a terminal: its standard input and standard error are a
/// pseudo-terminal that the test holds (so it asks for confirmation as it does for a user, and
/// waits for the answer holding its lock); its standard output goes to s.dir()/`tag`.out. What
/// it writes to the terminal is read all along, so that it never blocks on a full terminal.
class TerminalProc {
 public:
  /// Starts the binary with `args` plus --dir s.repo() --state s.StateLocation().
  TerminalProc(const Sandbox& s, std::vector<std::string> args, const std::string& tag);
  /// Kills the process when it still runs, and reaps it.
  ~TerminalProc();
  TerminalProc(const TerminalProc&) = delete;
  TerminalProc& operator=(const TerminalProc&) = delete;

  int pid() const { return pid_; }
  /// What it wrote to the terminal so far (standard error, and the echo of what was typed).
  std::string Screen() const;
  /// Its standard output so far.
  std::string Out() const { return ReadFile(out_path_); }
  /// Waits (up to kPatience) until the terminal shows `needle`; false when the process exited
  /// without showing it, or after the patience.
  bool WaitForScreen(const std::string& needle) const;
  /// Types `text` on the terminal (a line ends with "\n").
  void Type(const std::string& text);
  /// Waits for the process to end; its exit code or -signal.
  int Wait();

 private:
  void Read();

  int pid_ = -1;
  int master_ = -1;
  std::atomic<bool> reaped_{false};
  std::string out_path_;
  mutable std::mutex mu_;
  std::string screen_;
  std::atomic<bool> stop_{false};
  std::thread reader_;
};

/// What an apply asks on a terminal before it changes anything.
inline constexpr char kConfirmPrompt[] = "Only 'yes' will be accepted";

/// An apply of `env` (with --var gen=`gen`) on a terminal that holds the environment's lock at
/// its confirmation prompt until it is answered: a holder that stays as long as a test wants.
/// Its lease is an hour, so that nothing but the answer ends the lock.
struct PromptHolder {
  PromptHolder(const Sandbox& s, const std::string& env, const std::string& gen);
  /// Waits until it asks (it took the lock before it planned).
  ::testing::AssertionResult Asking();
  /// Answers yes; then it applies.
  void Approve() { proc.Type("yes\n"); }

  TerminalProc proc;
};

}  // namespace driftless::test
