// driftless-bench: times the driftless binary on synthetic repositories of N file.file
// resources (see repo_gen.h) and prints a markdown table.
//
//   driftless-bench [--sizes 1000,10000,100000] [--runs 3] [--bin PATH] [--out FILE.md]
//                   [--json FILE.json] [--chains 10] [--files-per-doc 1000]
//                   [--parallelism P] [--workdir DIR] [--keep]
//
// Every engine run is a fork/exec of the binary, waited for with wait4: wall time from a
// steady clock around fork..wait4, peak memory from rusage.ru_maxrss. Each figure is the median
// of the runs with min-max; peak memory is the largest of the runs. Every run's result is
// checked (exit code, the plan's counts, and after apply every file's bytes) so that no figure
// comes from a run that did less work than it should.

#include <fcntl.h>
#include <openssl/evp.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "base/strings.h"
#include "repo_gen.h"

#ifndef DRIFTLESS_BIN
#define DRIFTLESS_BIN "driftless"
#endif

namespace driftless::bench {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// Anything that makes a figure untrustworthy: the benchmark stops with this message.
struct BenchFailure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Options {
  std::vector<size_t> sizes = {1000, 10000, 100000};
  int runs = 3;
  std::string bin = DRIFTLESS_BIN;
  std::string out_md;
  std::string out_json;
  RepoOptions repo;
  int parallelism = 0;  // 0: the engine's default
  std::string workdir;
  bool keep = false;
};

// One measured run.
struct Sample {
  double seconds = 0;
  double cpu_seconds = 0;  // user + system time of the child
  long max_rss_kib = 0;    // 0 when not measured (in-process floor)
};

// All runs of one operation at one N.
struct Figure {
  std::string op;
  size_t n = 0;
  bool has_memory = true;
  std::vector<Sample> samples;

  double Median() const {
    std::vector<double> s;
    for (const auto& x : samples) s.push_back(x.seconds);
    std::sort(s.begin(), s.end());
    if (s.empty()) return 0;
    size_t m = s.size() / 2;
    return s.size() % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
  }
  double Min() const {
    double v = samples.empty() ? 0 : samples[0].seconds;
    for (const auto& x : samples) v = std::min(v, x.seconds);
    return v;
  }
  double Max() const {
    double v = 0;
    for (const auto& x : samples) v = std::max(v, x.seconds);
    return v;
  }
  double MedianCpu() const {
    std::vector<double> s;
    for (const auto& x : samples) s.push_back(x.cpu_seconds);
    std::sort(s.begin(), s.end());
    if (s.empty()) return 0;
    size_t m = s.size() / 2;
    return s.size() % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
  }
  double PeakMiB() const {
    long v = 0;
    for (const auto& x : samples) v = std::max(v, x.max_rss_kib);
    return static_cast<double>(v) / 1024.0;
  }
};

// The operations, in table order.
struct OpInfo {
  const char* id;
  const char* label;
};
constexpr OpInfo kOps[] = {
    {"validate", "validate"},
    {"apply_empty", "apply from empty"},
    {"plan_noop", "plan, no changes"},
    {"plan_one_change", "plan, one declaration changed"},
    {"plan_drift", "plan, one managed file edited (drift)"},
    {"floor_1t", "floor: open+fstat+read+sha256 of the N files, 1 thread"},
    {"floor_2t", "floor: open+fstat+read+sha256 of the N files, 2 threads"},
};

// ---------------------------------------------------------------------------------------------
// Small helpers.

std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteText(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) throw BenchFailure("cannot write " + path);
}

std::string Tail(const std::string& text, size_t max_bytes) {
  if (text.size() <= max_bytes) return text;
  return "...\n" + text.substr(text.size() - max_bytes);
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r')) s.pop_back();
  size_t i = 0;
  while (i < s.size() && s[i] == ' ') ++i;
  return s.substr(i);
}

std::string Grouped(size_t n) {
  std::string digits = std::to_string(n), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string Fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

// Seconds: four decimals below 0.1 s, three below 10 s, two above.
std::string Secs(double s) { return Fixed(s, s < 0.1 ? 4 : s < 10 ? 3 : 2); }

std::string JsonString(const std::string& s) { return Quote(s); }

void RemoveAll(const fs::path& p) {
  std::error_code ec;
  fs::remove_all(p, ec);
  if (ec) throw BenchFailure("cannot remove " + p.string() + ": " + ec.message());
}

// ---------------------------------------------------------------------------------------------
// Running the engine.

struct Outcome {
  int exit_code = -1;  // 128 + signal when killed
  Sample sample;
  std::string out;
  std::string err;
};

std::string Describe(const std::vector<std::string>& args) {
  std::string s;
  for (const auto& a : args) s += (s.empty() ? "" : " ") + a;
  return s;
}

// fork/exec of `args` (args[0] is the binary) with stdout and stderr sent to files in `scratch`;
// waits with wait4 and measures wall time and the child's peak RSS.
Outcome Run(const std::vector<std::string>& args, const fs::path& scratch) {
  std::string out_path = (scratch / "stdout.txt").string();
  std::string err_path = (scratch / "stderr.txt").string();
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::fflush(stdout);
  std::fflush(stderr);
  Clock::time_point start = Clock::now();
  pid_t pid = fork();
  if (pid < 0) throw BenchFailure(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
    int out = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int err = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (in < 0 || out < 0 || err < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
      _exit(126);
    execv(argv[0], argv.data());
    _exit(127);
  }
  int status = 0;
  struct rusage ru {};
  pid_t got;
  do {
    got = wait4(pid, &status, 0, &ru);
  } while (got < 0 && errno == EINTR);
  Clock::time_point end = Clock::now();
  if (got != pid) throw BenchFailure(std::string("wait4: ") + std::strerror(errno));
  Outcome o;
  o.sample.seconds = std::chrono::duration<double>(end - start).count();
  o.sample.max_rss_kib = ru.ru_maxrss;  // KiB on Linux
  auto tv = [](const struct timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  o.sample.cpu_seconds = tv(ru.ru_utime) + tv(ru.ru_stime);
  o.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  o.out = ReadText(out_path);
  o.err = ReadText(err_path);
  if (o.exit_code == 127 && o.out.empty() && o.err.empty()) {
    throw BenchFailure("cannot run " + args[0] + " (exec failed; pass --bin PATH)");
  }
  return o;
}

// Fails loudly unless the run exited with `want_exit` and its stdout holds `want_text`.
void Expect(const Outcome& o, const std::vector<std::string>& args, int want_exit,
            const std::string& want_text) {
  bool ok = o.exit_code == want_exit && o.out.find(want_text) != std::string::npos;
  if (ok) return;
  throw BenchFailure("unexpected result of\n  " + Describe(args) + "\nexit code " +
                     std::to_string(o.exit_code) + " (wanted " + std::to_string(want_exit) +
                     "), wanted the output to contain:\n  " + want_text + "\n--- stdout (end):\n" +
                     Tail(o.out, 1500) + "\n--- stderr (end):\n" + Tail(o.err, 1500));
}

std::string PlanLine(size_t create, size_t update, size_t heal, size_t unchanged, size_t drifted) {
  std::string s = "Plan: " + std::to_string(create) + " to create, " + std::to_string(update) +
                  " to update, 0 to replace, 0 to delete, " + std::to_string(heal) + " to heal, " +
                  std::to_string(unchanged) + " unchanged";
  if (drifted) s += "; " + std::to_string(drifted) + " drifted";
  return s + ".\n";
}

// ---------------------------------------------------------------------------------------------
// Checks and the physical floor.

// Every one of the N files must exist under root with its exact bytes, and nothing else may
// be there: throws with the counts otherwise.
void VerifyApplied(const fs::path& root, size_t n) {
  size_t missing = 0, wrong = 0;
  std::string first_problem;
  for (size_t i = 0; i < n; ++i) {
    fs::path p = root / ResourcePath(i);
    std::ifstream in(p, std::ios::binary);
    if (!in) {
      if (first_problem.empty()) first_problem = "missing: " + ResourcePath(i);
      ++missing;
      continue;
    }
    std::stringstream ss;
    ss << in.rdbuf();
    if (ss.str() != ResourceContent(i)) {
      if (first_problem.empty()) first_problem = "wrong content: " + ResourcePath(i);
      ++wrong;
    }
  }
  size_t files = 0, others = 0;
  std::error_code ec;
  if (fs::is_directory(root, ec)) {
    for (fs::recursive_directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec)) {
      if (it->is_directory()) continue;
      if (it->is_regular_file())
        ++files;
      else
        ++others;
    }
    if (ec) throw BenchFailure("cannot list " + root.string() + ": " + ec.message());
  }
  if (missing || wrong || files != n || others) {
    throw BenchFailure("apply did not produce the " + Grouped(n) + " files: " + Grouped(missing) +
                       " missing, " + Grouped(wrong) + " with wrong content, " + Grouped(files) +
                       " regular files and " + Grouped(others) +
                       " other objects under the root (first problem: " + first_problem + ")");
  }
}

// Reads and hashes files i = first, first + step, ... < n; returns how many failed.
size_t HashFiles(const std::string& root, size_t n, size_t first, size_t step,
                 unsigned char& sink) {
  size_t failed = 0;
  std::string buf;
  std::string path;
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  for (size_t i = first; i < n; i += step) {
    path = root;
    path += '/';
    path += ResourcePath(i);
    int fd = open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
      ++failed;
      continue;
    }
    struct stat st {};
    if (fstat(fd, &st) != 0) {
      ++failed;
      close(fd);
      continue;
    }
    buf.resize(static_cast<size_t>(st.st_size) + 1);
    ssize_t got = read(fd, buf.data(), buf.size());
    close(fd);
    if (got != st.st_size) {
      ++failed;
      continue;
    }
    if (EVP_Digest(buf.data(), static_cast<size_t>(got), md, &md_len, EVP_sha256(), nullptr) != 1) {
      ++failed;
      continue;
    }
    sink ^= md[0];
  }
  return failed;
}

Sample Floor(const fs::path& root, size_t n, int threads) {
  std::string r = root.string();
  std::vector<size_t> failed(static_cast<size_t>(threads), 0);
  std::vector<unsigned char> sinks(static_cast<size_t>(threads), 0);
  Clock::time_point start = Clock::now();
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) {
    pool.emplace_back([&, t] {
      failed[static_cast<size_t>(t)] =
          HashFiles(r, n, static_cast<size_t>(t), static_cast<size_t>(threads),
                    sinks[static_cast<size_t>(t)]);
    });
  }
  failed[0] = HashFiles(r, n, 0, static_cast<size_t>(threads), sinks[0]);
  for (auto& t : pool) t.join();
  Clock::time_point end = Clock::now();
  size_t bad = 0;
  for (size_t f : failed) bad += f;
  if (bad) throw BenchFailure("floor: " + Grouped(bad) + " of the files could not be read");
  static volatile unsigned char keep;  // the hashes must not be optimised away
  for (unsigned char s : sinks) keep = keep ^ s;
  return {std::chrono::duration<double>(end - start).count(), 0};
}

// ---------------------------------------------------------------------------------------------
// The machine.

std::string CpuModel() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      size_t colon = line.find(':');
      if (colon != std::string::npos) return Trim(line.substr(colon + 1));
    }
  }
  return "unknown";
}

double MemTotalGiB() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  long kib = 0;
  std::string unit;
  while (in >> key >> kib >> unit) {
    if (key == "MemTotal:") return static_cast<double>(kib) / (1024.0 * 1024.0);
  }
  return 0;
}

int CpuCount() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) return CPU_COUNT(&set);
  return static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));
}

std::string LoadAverage() {
  std::ifstream in("/proc/loadavg");
  double a = 0, b = 0, c = 0;
  in >> a >> b >> c;
  return Fixed(a, 2) + " " + Fixed(b, 2) + " " + Fixed(c, 2);
}

std::string FsType(const fs::path& p) {
  struct statfs sf {};
  if (statfs(p.c_str(), &sf) != 0) return "unknown";
  switch (static_cast<unsigned long>(sf.f_type)) {
    case 0xEF53:
      return "ext4";
    case 0x01021994:
      return "tmpfs";
    case 0x9123683E:
      return "btrfs";
    case 0x58465342:
      return "xfs";
    case 0x794C7630:
      return "overlayfs";
    default: {
      char buf[32];
      std::snprintf(buf, sizeof buf, "0x%lx", static_cast<unsigned long>(sf.f_type));
      return buf;
    }
  }
}

std::string UtcNow() {
  std::time_t t = std::time(nullptr);
  struct tm tm {};
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M UTC", &tm);
  return buf;
}

// ---------------------------------------------------------------------------------------------
// The benchmark.

struct Context {
  std::string version;
  std::string date;
  int cpus = 0;
  std::string cpu_model;
  double mem_gib = 0;
  std::string load_start;
  std::string load_end;
  std::string fs_type;
};

class Bench {
 public:
  Bench(Options options, fs::path base) : o_(std::move(options)), base_(std::move(base)) {}

  std::deque<Figure>& figures() { return figures_; }

  void RunSize(size_t n) {
    fs::path dir = base_ / ("n" + std::to_string(n));
    fs::path repo = dir / "repo";
    // Every apply gets a new root and a new state; the plans use the last ones. Nothing is
    // deleted before the whole benchmark is over: on ext4 without a journal, files created
    // within ~30 s after many were deleted pay for it in the inode allocator
    // (recently_deleted), which would charge the engine for the benchmark's own clean-up.
    fs::path root = dir / "root-0";
    fs::path state = dir / "state-0" / "state.db";
    fs::path scratch = dir / "scratch";
    fs::create_directories(scratch);
    RepoOptions ro = o_.repo;
    ro.resources = n;
    Log("N=" + Grouped(n) + ": generating the repository");
    if (std::string err = WriteRepo(repo.string(), ro); !err.empty()) throw BenchFailure(err);

    auto engine = [&](std::initializer_list<std::string> head, bool changing) {
      std::vector<std::string> args = {o_.bin};
      args.insert(args.end(), head);
      args.insert(args.end(), {"--dir", repo.string(), "--state", state.string(), "--var",
                               "root=" + root.string(), "--no-color"});
      if (o_.parallelism > 0 && changing) {
        args.push_back("--parallelism");
        args.push_back(std::to_string(o_.parallelism));
      }
      return args;
    };

    // validate
    Figure& validate = Add("validate", n);
    auto validate_args = engine({"validate"}, false);
    for (int r = 0; r < o_.runs; ++r) {
      Outcome out = Run(validate_args, scratch);
      Expect(out, validate_args, 0, "Valid: " + std::to_string(n) + " resources");
      Record(validate, out.sample, r);
    }

    // apply from an empty root and an empty state, every run
    Figure& apply = Add("apply_empty", n);
    auto apply_args = engine({"apply", "--auto-approve"}, true);
    for (int r = 0; r < o_.runs; ++r) {
      root = dir / ("root-" + std::to_string(r + 1));
      state = dir / ("state-" + std::to_string(r + 1)) / "state.db";
      fs::create_directories(state.parent_path());
      apply_args = engine({"apply", "--auto-approve"}, true);
      Outcome out = Run(apply_args, scratch);
      Expect(out, apply_args, 0, "succeeded: " + std::to_string(n) + " created.");
      Record(apply, out.sample, r);
      VerifyApplied(root, n);
    }

    // plan with no changes
    Figure& noop = Add("plan_noop", n);
    auto plan_args = engine({"plan", "--detailed-exitcode"}, true);
    for (int r = 0; r < o_.runs; ++r) {
      Outcome out = Run(plan_args, scratch);
      Expect(out, plan_args, 0, PlanLine(0, 0, 0, n, 0));
      Record(noop, out.sample, r);
    }

    // plan with one declaration changed (restored after each run)
    Figure& change = Add("plan_one_change", n);
    size_t k = n / 2;
    std::string yaml = (repo / ResourceFile(k, ro)).string();
    std::string original = ReadText(yaml);
    size_t at = original.find(ContentLine(k) + "\n");
    if (at == std::string::npos)
      throw BenchFailure("cannot find resource " + ResourceName(k) + " in " + yaml);
    std::string edited = original;
    edited.replace(at, ContentLine(k).size(), ChangedContentLine(k));
    for (int r = 0; r < o_.runs; ++r) {
      WriteText(yaml, edited);
      Outcome out = Run(plan_args, scratch);
      WriteText(yaml, original);
      Expect(out, plan_args, 2, PlanLine(0, 1, 0, n - 1, 0));
      Record(change, out.sample, r);
    }

    // plan after one managed file was edited on disk (restored after each run)
    Figure& drift = Add("plan_drift", n);
    size_t d = n / 3;
    fs::path drifted = root / ResourcePath(d);
    for (int r = 0; r < o_.runs; ++r) {
      Overwrite(drifted, ResourceContent(d) + "edited by hand\n");
      Outcome out = Run(plan_args, scratch);
      Overwrite(drifted, ResourceContent(d));
      Expect(out, plan_args, 2, PlanLine(0, 0, 1, n - 1, 1));
      Record(drift, out.sample, r);
    }
    if (ReadText(drifted.string()) != ResourceContent(d)) {
      throw BenchFailure("could not restore " + drifted.string());
    }

    // the physical floor, in-process
    for (int threads : {1, 2}) {
      Figure& f = Add(threads == 1 ? "floor_1t" : "floor_2t", n);
      f.has_memory = false;
      for (int r = 0; r < o_.runs; ++r) Record(f, Floor(root, n, threads), r);
    }
  }

 private:
  void Log(const std::string& line) {
    std::fprintf(stderr, "%s\n", line.c_str());
    std::fflush(stderr);
  }

  Figure& Add(const std::string& op, size_t n) {
    figures_.push_back(Figure{op, n, true, {}});
    return figures_.back();
  }

  void Record(Figure& f, const Sample& s, int run) {
    f.samples.push_back(s);
    std::string line = "N=" + Grouped(f.n) + " " + f.op + " run " + std::to_string(run + 1) + "/" +
                       std::to_string(o_.runs) + ": " + Secs(s.seconds) + " s";
    if (s.max_rss_kib)
      line += ", " + Fixed(static_cast<double>(s.max_rss_kib) / 1024.0, 1) + " MiB";
    Log(line);
  }

  // Rewrites a file's bytes in place: its mode and owner stay as they are.
  static void Overwrite(const fs::path& p, const std::string& bytes) {
    int fd = open(p.c_str(), O_WRONLY | O_TRUNC | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) throw BenchFailure("cannot open " + p.string() + ": " + std::strerror(errno));
    ssize_t w = write(fd, bytes.data(), bytes.size());
    close(fd);
    if (w != static_cast<ssize_t>(bytes.size())) throw BenchFailure("cannot write " + p.string());
  }

  Options o_;
  fs::path base_;
  std::deque<Figure> figures_;
};

// ---------------------------------------------------------------------------------------------
// Reports.

const Figure* FindFigure(const std::deque<Figure>& figs, const std::string& op, size_t n) {
  for (const auto& f : figs)
    if (f.op == op && f.n == n) return &f;
  return nullptr;
}

std::string Markdown(const Options& o, const Context& c, const std::deque<Figure>& figs) {
  std::string md;
  md += "# driftless engine benchmark\n\n";
  md += "- date: " + c.date + "\n";
  md += "- driftless: " + c.version + "\n";
  md += "- machine: " + std::to_string(c.cpus) + " CPUs (nproc), " + c.cpu_model + ", " +
        Fixed(c.mem_gib, 1) + " GiB memory; load average " + c.load_start + " at the start, " +
        c.load_end + " at the end\n";
  md += "- work folder: " + c.fs_type;
  if (c.fs_type == "ext4") {
    md +=
        " (apply roots are deleted only at the end: ext4 without a journal makes file "
        "creation slow for ~30 s after many deletions; `--workdir` on a tmpfs measures the "
        "engine alone)";
  }
  md += "\n";
  md += "- repository: N file.file resources (~80 bytes each), " +
        std::to_string(o.repo.docs_per_file) + " YAML documents per file";
  if (o.repo.chain > 1) md += ", depends_on chains of " + std::to_string(o.repo.chain);
  md += "\n";
  md += "- engine parallelism: " +
        (o.parallelism > 0 ? std::to_string(o.parallelism) : std::string("its default")) + "\n";
  md += "- each figure: median of " + std::to_string(o.runs) +
        " runs (min–max) of a fork/exec + wait4, wall time; peak MiB: the largest ru_maxrss of "
        "the runs. Apply starts from an empty root and an empty state on every run; the plans "
        "run against the applied root with a warm page cache.\n\n";
  md += "| operation |";
  std::string rule = "| --- |";
  for (size_t n : o.sizes) {
    md += " N=" + Grouped(n) + " s, median (min–max) | N=" + Grouped(n) + " peak MiB |";
    rule += " ---: | ---: |";
  }
  md += "\n" + rule + "\n";
  for (const auto& op : kOps) {
    md += std::string("| ") + op.label + " |";
    for (size_t n : o.sizes) {
      const Figure* f = FindFigure(figs, op.id, n);
      if (f == nullptr || f->samples.empty()) {
        md += " – | – |";
        continue;
      }
      md += " " + Secs(f->Median()) + " (" + Secs(f->Min()) + "–" + Secs(f->Max()) + ") |";
      md += f->has_memory ? " " + Fixed(f->PeakMiB(), 1) + " |" : " – |";
    }
    md += "\n";
  }
  md +=
      "\nCPU time of the engine (user + system, median s), for a machine shared with other "
      "work where wall time is noisy:\n\n| operation |";
  rule = "| --- |";
  for (size_t n : o.sizes) {
    md += " N=" + Grouped(n) + " |";
    rule += " ---: |";
  }
  md += "\n" + rule + "\n";
  for (const auto& op : kOps) {
    bool any = false;
    std::string row = std::string("| ") + op.label + " |";
    for (size_t n : o.sizes) {
      const Figure* f = FindFigure(figs, op.id, n);
      if (f == nullptr || !f->has_memory || f->samples.empty()) {
        row += " – |";
        continue;
      }
      any = true;
      row += " " + Secs(f->MedianCpu()) + " |";
    }
    if (any) md += row + "\n";
  }
  md += "\nPlan with no changes against the floor (median / median):";
  for (size_t n : o.sizes) {
    const Figure* plan = FindFigure(figs, "plan_noop", n);
    const Figure* f1 = FindFigure(figs, "floor_1t", n);
    const Figure* f2 = FindFigure(figs, "floor_2t", n);
    if (!plan || !f1 || !f2 || f1->Median() <= 0 || f2->Median() <= 0) continue;
    md += " N=" + Grouped(n) + ": " + Fixed(plan->Median() / f1->Median(), 1) +
          "× the 1-thread floor, " + Fixed(plan->Median() / f2->Median(), 1) +
          "× the 2-thread floor;";
  }
  if (!md.empty() && md.back() == ';') md.back() = '.';
  md += "\n";
  return md;
}

std::string Json(const Options& o, const Context& c, const std::deque<Figure>& figs) {
  std::string j = "{\n";
  j += "  \"date\": " + JsonString(c.date) + ",\n";
  j += "  \"driftless_version\": " + JsonString(c.version) + ",\n";
  j += "  \"machine\": {\"nproc\": " + std::to_string(c.cpus) +
       ", \"cpu\": " + JsonString(c.cpu_model) + ", \"memory_gib\": " + Fixed(c.mem_gib, 2) +
       ", \"load_average_start\": " + JsonString(c.load_start) +
       ", \"load_average_end\": " + JsonString(c.load_end) +
       ", \"work_fs\": " + JsonString(c.fs_type) + "},\n";
  j += "  \"repository\": {\"docs_per_file\": " + std::to_string(o.repo.docs_per_file) +
       ", \"chain\": " + std::to_string(o.repo.chain) + "},\n";
  j += "  \"parallelism\": " + std::to_string(o.parallelism) + ",\n";
  j += "  \"runs\": " + std::to_string(o.runs) + ",\n";
  j += "  \"results\": [\n";
  for (size_t i = 0; i < figs.size(); ++i) {
    const Figure& f = figs[i];
    j += "    {\"operation\": " + JsonString(f.op) + ", \"n\": " + std::to_string(f.n) +
         ", \"median_s\": " + Fixed(f.Median(), 6) + ", \"min_s\": " + Fixed(f.Min(), 6) +
         ", \"max_s\": " + Fixed(f.Max(), 6) +
         ", \"median_cpu_s\": " + (f.has_memory ? Fixed(f.MedianCpu(), 6) : std::string("null")) +
         ", \"peak_mib\": " + (f.has_memory ? Fixed(f.PeakMiB(), 2) : std::string("null")) +
         ", \"runs\": [";
    for (size_t k = 0; k < f.samples.size(); ++k) {
      j += std::string(k ? ", " : "") + "{\"s\": " + Fixed(f.samples[k].seconds, 6);
      if (f.has_memory) {
        j += ", \"cpu_s\": " + Fixed(f.samples[k].cpu_seconds, 6) +
             ", \"max_rss_kib\": " + std::to_string(f.samples[k].max_rss_kib);
      }
      j += "}";
    }
    j += "]}" + std::string(i + 1 < figs.size() ? "," : "") + "\n";
  }
  j += "  ]\n}\n";
  return j;
}

// ---------------------------------------------------------------------------------------------
// Command line.

void Usage() {
  std::fprintf(stderr,
               "usage: driftless-bench [--sizes 1000,10000,100000] [--runs 3] [--bin PATH]\n"
               "                       [--out FILE.md] [--json FILE.json] [--chains 10]\n"
               "                       [--files-per-doc 1000] [--parallelism P]\n"
               "                       [--workdir DIR] [--keep]\n");
}

bool ParseSize(const std::string& text, size_t& out) {
  if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos) return false;
  out = static_cast<size_t>(std::strtoull(text.c_str(), nullptr, 10));
  return true;
}

bool ParseArgs(int argc, char** argv, Options& o) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](std::string& out) {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "error: %s needs a value\n", a.c_str());
        return false;
      }
      out = argv[++i];
      return true;
    };
    std::string v;
    size_t num = 0;
    if (a == "--keep") {
      o.keep = true;
    } else if (a == "-h" || a == "--help") {
      Usage();
      std::exit(0);
    } else if (a == "--sizes") {
      if (!value(v)) return false;
      o.sizes.clear();
      std::stringstream ss(v);
      std::string item;
      while (std::getline(ss, item, ',')) {
        if (!ParseSize(item, num) || num == 0 || num > kMaxResources) {
          std::fprintf(stderr, "error: --sizes takes numbers from 1 to %zu, separated by commas\n",
                       kMaxResources);
          return false;
        }
        o.sizes.push_back(num);
      }
      if (o.sizes.empty()) return false;
    } else if (a == "--runs" || a == "--chains" || a == "--files-per-doc" || a == "--parallelism") {
      if (!value(v) || !ParseSize(v, num)) {
        std::fprintf(stderr, "error: %s needs a whole number\n", a.c_str());
        return false;
      }
      if (a == "--runs")
        o.runs = static_cast<int>(std::max<size_t>(1, std::min<size_t>(num, 1000)));
      if (a == "--chains") o.repo.chain = num;
      if (a == "--files-per-doc") o.repo.docs_per_file = std::max<size_t>(1, num);
      if (a == "--parallelism") o.parallelism = static_cast<int>(std::min<size_t>(num, 256));
    } else if (a == "--bin") {
      if (!value(o.bin)) return false;
    } else if (a == "--out") {
      if (!value(o.out_md)) return false;
    } else if (a == "--json") {
      if (!value(o.out_json)) return false;
    } else if (a == "--workdir") {
      if (!value(o.workdir)) return false;
    } else {
      std::fprintf(stderr, "error: unknown argument %s\n", a.c_str());
      Usage();
      return false;
    }
  }
  return true;
}

int Main(int argc, char** argv) {
  Options o;
  if (!ParseArgs(argc, argv, o)) return 1;
  std::error_code ec;
  fs::path bin = fs::absolute(o.bin, ec);
  if (ec || access(bin.c_str(), X_OK) != 0) {
    std::fprintf(stderr, "error: %s is not an executable; pass --bin PATH\n", o.bin.c_str());
    return 1;
  }
  o.bin = bin.string();
  std::string parent = o.workdir;
  if (parent.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    parent = tmp && *tmp ? tmp : "/tmp";
  }
  fs::create_directories(parent, ec);
  std::string pattern = (fs::path(parent) / "driftless-bench-XXXXXX").string();
  if (mkdtemp(pattern.data()) == nullptr) {
    std::fprintf(stderr, "error: cannot make a folder in %s: %s\n", parent.c_str(),
                 std::strerror(errno));
    return 1;
  }
  fs::path base = pattern;

  Context c;
  c.date = UtcNow();
  c.cpus = CpuCount();
  c.cpu_model = CpuModel();
  c.mem_gib = MemTotalGiB();
  c.load_start = LoadAverage();
  c.fs_type = FsType(base);
  Bench bench(o, base);
  int rc = 0;
  try {
    Outcome v = Run({o.bin, "--version"}, base);
    if (v.exit_code != 0) throw BenchFailure("`" + o.bin + " --version` failed: " + v.err);
    c.version = Trim(v.out);
    for (size_t n : o.sizes) bench.RunSize(n);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "\nBENCHMARK FAILED: %s\nThe work folder is kept: %s\n", e.what(),
                 base.c_str());
    return 1;
  }
  c.load_end = LoadAverage();
  std::string md = Markdown(o, c, bench.figures());
  std::fputs(md.c_str(), stdout);
  std::fflush(stdout);
  try {
    if (!o.out_md.empty()) WriteText(o.out_md, md);
    if (!o.out_json.empty()) WriteText(o.out_json, Json(o, c, bench.figures()));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    rc = 1;
  }
  if (o.keep) {
    std::fprintf(stderr, "The work folder is kept: %s\n", base.c_str());
  } else {
    std::fprintf(stderr, "Removing the work folder...\n");
    RemoveAll(base);
  }
  return rc;
}

}  // namespace
}  // namespace driftless::bench

int main(int argc, char** argv) { return driftless::bench::Main(argc, argv); }
