// The container provider at 100 containers, and podman-compose on the same containers.
//
//   driftless-container-bench [--containers 100] [--runs 5] [--stops 50] [--bin PATH]
//                             [--no-compose]
//
// It starts its own Podman service with scripts/podman-test-server.sh (and stops it), and
// declares one image (the fixture's busybox root filesystem) and --containers busybox httpd
// containers (command, env, labels, init). It applies them, then times `driftless plan
// --detailed-exitcode` with nothing to change (median of --runs, each checked to report no
// change), beside a floor: one GET /containers/NAME/json per container over the same socket, in
// this process, on one reused connection. Latency: `driftless watch` runs; `podman stop` of one
// container at a time (--stops of them, each another container), measured from just before the
// command to the watch printing that container's drift.detected (median, 99th percentile, max);
// the podman stop command's own time is given beside it. podman-compose: a compose file that
// declares the same containers (container_name, image, command, environment, labels, init),
// `podman-compose up -d` with nothing changed, timed once on the containers driftless made, and
// the ratio to the plan.

#include <curl/curl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "bench_util.h"

namespace {

using driftless::bench::Clock;
using driftless::bench::Die;
using driftless::bench::LineReader;
using driftless::bench::LoadAverage;
using driftless::bench::Percentile;
using driftless::bench::Seconds;
namespace fs = std::filesystem;

std::string g_service_dir;
std::string g_script;

void StopService() {
  if (!g_service_dir.empty()) {
    std::string cmd = "bash '" + g_script + "' stop '" + g_service_dir + "' >/dev/null 2>&1";
    if (std::system(cmd.c_str()) != 0) std::fprintf(stderr, "could not stop the service\n");
  }
}

std::string ReadLine(const fs::path& p) {
  std::ifstream in(p);
  std::string line;
  std::getline(in, line);
  return line;
}

std::vector<std::string> ReadLines(const fs::path& p) {
  std::ifstream in(p);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) out.push_back(line);
  }
  return out;
}

std::string Name(size_t i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "dlb-c%03zu", i);
  return buf;
}

size_t Discard(char*, size_t size, size_t n, void*) { return size * n; }

// One GET /v1.41/containers/NAME/json per container on one connection: what any tool that
// compares live containers must at least do.
double InspectFloor(const std::string& socket, size_t containers) {
  CURL* c = curl_easy_init();
  if (c == nullptr) Die("libcurl");
  curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, socket.c_str());
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, Discard);
  Clock::time_point t0 = Clock::now();
  for (size_t i = 0; i < containers; ++i) {
    const std::string url = "http://engine/v1.41/containers/" + Name(i) + "/json";
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    long code = 0;
    if (curl_easy_perform(c) != CURLE_OK) Die("inspect over the socket failed");
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    if (code != 200) Die("inspect of " + Name(i) + " answered " + std::to_string(code));
  }
  double s = Seconds(Clock::now() - t0);
  curl_easy_cleanup(c);
  return s;
}

int Main(int argc, char** argv) {
  driftless::bench::SetDieContext("driftless-container-bench", StopService);
  std::string bin = DRIFTLESS_BIN;
  size_t containers = 100, runs = 5, stops = 50;
  bool compose = true;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) Die(a + " needs a value");
      return argv[++i];
    };
    if (a == "--containers")
      containers = std::stoul(next());
    else if (a == "--runs")
      runs = std::stoul(next());
    else if (a == "--stops")
      stops = std::stoul(next());
    else if (a == "--bin")
      bin = next();
    else if (a == "--no-compose")
      compose = false;
    else
      Die("unknown option " + a);
  }
  stops = std::min(stops, containers);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  const std::string load_start = LoadAverage();
  fs::path work =
      fs::temp_directory_path() / ("driftless-container-bench." + std::to_string(getpid()));
  fs::create_directories(work / "repo" / "images");
  g_script = std::string(DRIFTLESS_SOURCE_DIR) + "/scripts/podman-test-server.sh";
  const fs::path service = work / "podman";
  if (driftless::bench::Run({"bash", g_script, "start", service.string()}, {},
                            (work / "service.log").string(), (work / "service.log").string()) != 0)
    Die("cannot start the Podman service: see " + (work / "service.log").string());
  g_service_dir = service.string();
  const std::string endpoint = ReadLine(service / "endpoint");
  const std::string socket = endpoint.substr(7);
  const std::vector<std::string> podman_env = ReadLines(service / "env");
  fs::copy_file(service / "busybox-rootfs.tar", work / "repo" / "images" / "busybox.tar");

  // The declarations, and the same containers for podman-compose.
  {
    std::ofstream(work / "repo" / "driftless.yaml")
        << "project: containerbench\ntargets:\n  engine: {provider: container, endpoint: \""
        << endpoint << "\"}\n";
    std::ofstream y(work / "repo" / "containers.yaml");
    std::ofstream c(work / "compose.yml");
    y << "kind: container.image\nname: busybox\ntarget: engine\n"
      << "spec: {ref: \"localhost/dlbench:1\", source: images/busybox.tar}\n";
    c << "version: \"3\"\nservices:\n";
    for (size_t i = 0; i < containers; ++i) {
      y << "---\nkind: container.container\nname: " << Name(i) << "\ntarget: engine\n"
        << "spec:\n  image: \"${container.image.busybox.ref}\"\n"
        << "  command: [httpd, -f, -p, \"8080\"]\n  init: true\n"
        << "  env: {INDEX: \"" << i << "\", MODE: bench}\n  labels: {app: bench}\n";
      c << "  " << Name(i) << ":\n    container_name: " << Name(i)
        << "\n    image: localhost/dlbench:1\n    command: [httpd, -f, -p, \"8080\"]\n"
        << "    init: true\n    environment: {INDEX: \"" << i << "\", MODE: bench}\n"
        << "    labels: {app: bench}\n";
    }
  }
  const std::string repo = (work / "repo").string(), state = (work / "state.db").string();
  auto driftless = [&](std::vector<std::string> args, const std::string& log) {
    args.insert(args.begin(), bin);
    args.insert(args.end(), {"--dir", repo, "--state", state});
    return driftless::bench::Run(args, {}, log, log);
  };
  Clock::time_point t0 = Clock::now();
  if (driftless({"apply", "--auto-approve"}, (work / "apply.log").string()) != 0)
    Die("apply failed: see " + (work / "apply.log").string());
  const double apply_s = Seconds(Clock::now() - t0);
  std::vector<double> plans, floors;
  for (size_t r = 0; r < runs; ++r) {
    t0 = Clock::now();
    int rc = driftless({"plan", "--detailed-exitcode"}, (work / "plan.log").string());
    if (rc != 0) Die("plan found changes or failed (exit " + std::to_string(rc) + ")");
    plans.push_back(Seconds(Clock::now() - t0));
    floors.push_back(InspectFloor(socket, containers));
  }

  // podman-compose up -d on the same containers, nothing changed (before the latency run stops
  // half of them).
  double compose_s = -1;
  std::string compose_note;
  if (compose) {
    if (driftless::bench::Run({"podman-compose", "version"}) != 0) {
      compose_note = "not run: podman-compose is missing";
    } else {
      t0 = Clock::now();
      int rc = driftless::bench::Run({"podman-compose", "-f", (work / "compose.yml").string(), "-p",
                                      "containerbench", "up", "-d"},
                                     podman_env, (work / "compose.log").string(),
                                     (work / "compose.log").string());
      compose_s = Seconds(Clock::now() - t0);
      compose_note = "exit " + std::to_string(rc);
      int plan_rc = driftless({"plan", "--detailed-exitcode"}, (work / "plan.log").string());
      if (plan_rc != 0) {
        compose_note +=
            "; it changed the containers (driftless plan exit " + std::to_string(plan_rc) + ")";
      }
    }
  }

  // Latency of podman stop -> drift.detected.
  int out = -1;
  pid_t watch = driftless::bench::StartPiped(
      {bin, "watch", "--dir", repo, "--state", state, "--interval", "1h"}, {}, &out);
  LineReader watch_out(out);
  if (!watch_out.WaitForLine({"\"type\":\"watch.started\""}, std::chrono::seconds(60)))
    Die("watch did not start");
  std::vector<double> ms, stop_ms;
  for (size_t k = 0; k < stops; ++k) {
    const std::string name = Name((k * 37) % containers);
    t0 = Clock::now();
    if (driftless::bench::Run({"podman", "stop", "-t", "10", name}, podman_env) != 0)
      Die("podman stop " + name + " failed");
    stop_ms.push_back(Seconds(Clock::now() - t0) * 1000);
    if (!watch_out.WaitForLine(
            {"\"type\":\"drift.detected\"", "container.container/" + name + "\""},
            std::chrono::seconds(60)))
      Die("no drift event for " + name);
    ms.push_back(Seconds(Clock::now() - t0) * 1000);
  }
  kill(watch, SIGTERM);
  waitpid(watch, nullptr, 0);

  (void)driftless({"destroy", "default", "--auto-approve"}, (work / "destroy.log").string());
  StopService();
  g_service_dir.clear();
  fs::remove_all(work);

  std::printf(
      "Machine: %ld CPUs online, load average %s at the start, %s at the end; Podman "
      "4.3 service started by the benchmark (scripts/podman-test-server.sh)\n\n",
      sysconf(_SC_NPROCESSORS_ONLN), load_start.c_str(), LoadAverage().c_str());
  std::printf("| measure | value |\n| --- | ---: |\n");
  std::printf("| containers | %zu (and one image) |\n", containers);
  std::printf("| apply from empty | %.2f s |\n", apply_s);
  std::printf("| `driftless plan`, no changes: median of %zu (min-max) | %.3f s (%.3f-%.3f) |\n",
              runs, Percentile(plans, 0.5), Percentile(plans, 0), Percentile(plans, 1));
  std::printf("| floor: %zu inspects over the socket, one connection: median | %.3f s |\n",
              containers, Percentile(floors, 0.5));
  std::printf("| ratio plan / floor | %.1fx |\n", Percentile(plans, 0.5) / Percentile(floors, 0.5));
  std::printf("| drift latency, podman stop -> drift.detected, %zu stops: median | %.0f ms |\n",
              stops, Percentile(ms, 0.5));
  std::printf("| same: 99th percentile | %.0f ms |\n", Percentile(ms, 0.99));
  std::printf("| same: max | %.0f ms |\n", Percentile(ms, 1));
  std::printf("| the podman stop command itself: median | %.0f ms |\n", Percentile(stop_ms, 0.5));
  if (compose_s >= 0) {
    std::printf("| `podman-compose up -d`, same containers, nothing changed (one run) | %.2f s |\n",
                compose_s);
    std::printf("| ratio podman-compose / driftless plan | %.1fx |\n",
                compose_s / Percentile(plans, 0.5));
  }
  if (!compose_note.empty()) std::printf("\npodman-compose: %s\n", compose_note.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return Main(argc, argv); }
