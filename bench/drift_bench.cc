// Drift detection latency and full-scan time.
//
//   driftless-drift-bench [--files 10000] [--changes 200] [--scan-files 100000]
//                         [--scan-changes 20] [--bin PATH]
//
// Latency: a repository of --files managed files, with a `notify:` webhook sink pointing to a
// receiver on 127.0.0.1 run by the benchmark, is applied; `driftless watch` runs on it, and the
// benchmark writes to --changes different managed files one at a time, measuring from just
// before the write to (a) the moment the watch prints the matching drift.detected event (its
// standard output is a pipe read by the benchmark) and (b) the moment the webhook request for
// that event has fully arrived at the receiver. Median, 99th percentile and max of each.
// Full scan: `driftless drift --full` (every live object read and compared with applied) on
// --scan-files unchanged files, median of 3; and `driftless drift` on the same files, which
// skips the files whose stamp it recorded (its first run after the apply, which records them, is
// reported alone). Then a watch of those files: start-up, and --scan-changes changes one at a
// time, each to another file (median and max).

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "bench_util.h"
#include "notify/testing/http_receiver.h"
#include "repo_gen.h"

namespace driftless::bench {
namespace {

namespace fs = std::filesystem;

// Runs a command with its standard output to /dev/null; returns the exit code.
int RunQuietly(const std::vector<std::string>& args) { return Run(args, {}, "/dev/null", ""); }

// A repository of n files applied under dir/root with state dir/state.db; `project_extra` is
// appended to its driftless.yaml.
void Prepare(const std::string& bin, const fs::path& dir, size_t n,
             const std::string& project_extra = "") {
  RepoOptions o;
  o.resources = n;
  o.chain = 0;
  if (std::string err = WriteRepo((dir / "repo").string(), o); !err.empty()) Die(err);
  if (!project_extra.empty()) {
    std::FILE* f = std::fopen((dir / "repo" / "driftless.yaml").c_str(), "a");
    if (f == nullptr) Die("cannot append to driftless.yaml");
    std::fputs(project_extra.c_str(), f);
    std::fclose(f);
  }
  int rc = RunQuietly({bin, "apply", "--auto-approve", "--dir", (dir / "repo").string(), "--state",
                       (dir / "state.db").string(), "--var", "root=" + (dir / "root").string()});
  if (rc != 0) Die("apply failed (exit " + std::to_string(rc) + ")");
}

int Main(int argc, char** argv) {
  SetDieContext("driftless-drift-bench");
  size_t files = 10000, changes = 200, scan_files = 100000, scan_changes = 20;
  std::string bin = DRIFTLESS_BIN;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--files")
      files = std::stoul(argv[i + 1]);
    else if (a == "--changes")
      changes = std::stoul(argv[i + 1]);
    else if (a == "--scan-files")
      scan_files = std::stoul(argv[i + 1]);
    else if (a == "--scan-changes")
      scan_changes = std::stoul(argv[i + 1]);
    else if (a == "--bin")
      bin = argv[i + 1];
    else
      Die("unknown option " + a);
  }
  changes = std::min(changes, files);
  fs::path work = fs::temp_directory_path() / ("driftless-drift-bench." + std::to_string(getpid()));
  fs::create_directories(work);

  // Latency.
  notify::testing::Receiver receiver;
  if (!receiver.Start()) Die("cannot listen on 127.0.0.1");
  fs::path lat = work / "latency";
  Prepare(bin, lat, files,
          "notify:\n  - name: bench\n    on: [drift.detected]\n    webhook: \"" +
              receiver.Url("/drift") + "\"\n");
  int out = -1;
  pid_t watch = StartPiped(
      {bin, "watch", "--dir", (lat / "repo").string(), "--state", (lat / "state.db").string(),
       "--var", "root=" + (lat / "root").string(), "--interval", "1h"},
      {}, &out);
  LineReader watch_out(out);
  // Reads the watch's output until a line holds every needle (or 10 s pass).
  auto wait_line = [&](const std::vector<std::string>& needles) {
    return watch_out.WaitForLine(needles, std::chrono::seconds(10));
  };
  if (!wait_line({"\"type\":\"watch.started\""})) Die("watch did not start");
  std::vector<double> ms, hook_ms;
  for (size_t k = 0; k < changes; ++k) {
    size_t i = (k * 7919) % files;  // spread over the folders
    std::string path = (lat / "root" / ResourcePath(i)).string();
    Clock::time_point t0 = Clock::now();
    {
      std::FILE* f = std::fopen(path.c_str(), "a");
      if (f == nullptr) Die("cannot write " + path);
      std::fputs("changed by hand\n", f);
      std::fclose(f);
    }
    if (!wait_line({"\"type\":\"drift.detected\"", "/" + ResourceName(i) + "\""})) {
      Die("no drift event for " + ResourceName(i));
    }
    ms.push_back(Seconds(Clock::now() - t0) * 1000);
    notify::testing::Request hook;
    std::string resource = "/" + ResourceName(i) + "\"";
    if (!receiver.WaitFor(
            [&](const notify::testing::Request& r) {
              return r.arrived >= t0 && r.body.find(resource) != std::string::npos;
            },
            &hook, std::chrono::seconds(10))) {
      Die("no webhook request for " + ResourceName(i));
    }
    hook_ms.push_back(Seconds(hook.arrived - t0) * 1000);
  }
  kill(watch, SIGTERM);
  waitpid(watch, nullptr, 0);
  receiver.Stop();
  std::sort(ms.begin(), ms.end());
  std::sort(hook_ms.begin(), hook_ms.end());

  // Full scan of unchanged files, and scans that trust stamps.
  fs::path scan = work / "scan";
  Prepare(bin, scan, scan_files);
  auto drift = [&](bool full) {
    std::vector<std::string> args = {bin,       "drift",
                                     "--dir",   (scan / "repo").string(),
                                     "--state", (scan / "state.db").string(),
                                     "--var",   "root=" + (scan / "root").string()};
    if (full) args.push_back("--full");
    Clock::time_point t0 = Clock::now();
    int rc = RunQuietly(args);
    if (rc != 0) Die("drift found something on unchanged files (exit " + std::to_string(rc) + ")");
    return Seconds(Clock::now() - t0);
  };
  const double first_stamped = drift(false);  // reads everything, records the stamps
  std::vector<double> scans, stamped;
  for (int r = 0; r < 3; ++r) {
    scans.push_back(drift(true));
    stamped.push_back(drift(false));
  }
  std::sort(scans.begin(), scans.end());
  std::sort(stamped.begin(), stamped.end());

  // Watching all of them: start-up time and changes one at a time.
  int big = -1;
  Clock::time_point started = Clock::now();
  pid_t big_watch = StartPiped(
      {bin, "watch", "--dir", (scan / "repo").string(), "--state", (scan / "state.db").string(),
       "--var", "root=" + (scan / "root").string(), "--interval", "1h"},
      {}, &big);
  watch_out = LineReader(big);
  // Its start-up is a full scan of --scan-files files: more than 10 s on a busy machine.
  if (!watch_out.WaitForLine({"\"type\":\"watch.started\""}, std::chrono::seconds(300)))
    Die("watch of the large repository did not start within 300 s");
  double startup = Seconds(Clock::now() - started);
  std::vector<double> big_ms;
  for (size_t k = 0; k < scan_changes; ++k) {
    size_t i = (scan_files / 2 + k * 7919) % scan_files;
    Clock::time_point t0 = Clock::now();
    {
      std::FILE* f = std::fopen((scan / "root" / ResourcePath(i)).c_str(), "a");
      if (f == nullptr) Die("cannot write in the large repository");
      std::fputs("changed by hand\n", f);
      std::fclose(f);
    }
    if (!wait_line({"\"type\":\"drift.detected\"", "/" + ResourceName(i) + "\""}))
      Die("no drift event in the large repository");
    big_ms.push_back(Seconds(Clock::now() - t0) * 1000);
  }
  std::sort(big_ms.begin(), big_ms.end());
  kill(big_watch, SIGTERM);
  waitpid(big_watch, nullptr, 0);
  fs::remove_all(work);

  std::printf("| measure | value |\n| --- | ---: |\n");
  std::printf(
      "| drift latency, write -> webhook request at a local receiver, %zu files, %zu changes: "
      "median | %.1f ms |\n",
      files, changes, Percentile(hook_ms, 0.5));
  std::printf("| same: 99th percentile | %.1f ms |\n", Percentile(hook_ms, 0.99));
  std::printf("| same: max | %.1f ms |\n", hook_ms.back());
  std::printf(
      "| drift latency, write -> drift.detected on watch's output, %zu files: median | "
      "%.1f ms |\n",
      files, Percentile(ms, 0.5));
  std::printf("| same: 99th percentile | %.1f ms |\n", Percentile(ms, 0.99));
  std::printf(
      "| full scan (`driftless drift --full`), %zu unchanged files: median of 3 (min-max) | "
      "%.2f s (%.2f-%.2f) |\n",
      scan_files, scans[1], scans[0], scans[2]);
  std::printf("| `driftless drift` right after the apply (reads all, records stamps) | %.2f s |\n",
              first_stamped);
  std::printf("| `driftless drift` with stamps: median of 3 (min-max) | %.2f s (%.2f-%.2f) |\n",
              stamped[1], stamped[0], stamped[2]);
  std::printf("| watch of %zu files: start-up (first full scan + watches) | %.2f s |\n", scan_files,
              startup);
  if (!big_ms.empty()) {
    std::printf(
        "| watch of %zu files: one change -> drift.detected, %zu changes: median (max) | %.1f ms "
        "(%.1f) |\n",
        scan_files, big_ms.size(), Percentile(big_ms, 0.5), big_ms.back());
  }
  return 0;
}

}  // namespace
}  // namespace driftless::bench

int main(int argc, char** argv) { return driftless::bench::Main(argc, argv); }
