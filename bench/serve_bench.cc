// `driftless serve` as users run it, against a repository reached by file:// and a SQLite
// state on the disk (a benchmark, not a test: it reports, it asserts only correctness):
//  - fleet: E environments (branches env-000, env-001, ...) of F file resources each, from one
//    commit; the time from the server's start to every environment applied and then watched,
//    the server's resident memory then (it follows and watches all of them), and
//    GET /api/v1/environments under C concurrent keep-alive clients (median, p99);
//  - webhook: W environments of G files; K commits, each pushed to one branch and announced by
//    a signed GitHub-style webhook; the time from the webhook sent to the server's log saying
//    that commit's run is applied (median, p99). The server polls once an hour, so only the
//    hook can have started the fetch; Argo CD's default is a poll every 3 minutes;
//  - streams: S event streams open on /api/v1/events; one run requested through the API must
//    reach every stream; the server's resident memory with them open.
//
//   driftless-serve-bench [--envs 100] [--files 1000] [--clients 100] [--requests 200]
//                         [--hook-envs 10] [--hook-files 100] [--commits 100] [--streams 1000]
//                         [--only fleet,webhook,streams] [--bin PATH]

#include <openssl/hmac.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"
#include "http_load.h"
#include "repo_gen.h"
#include "server/http/testing/raw_client.h"

namespace driftless::bench {
namespace {

namespace fs = std::filesystem;
using server::http::testing::RawClient;
using server::http::testing::RawResponse;

std::string Slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void Spit(const fs::path& p, const std::string& s) {
  std::ofstream out(p, std::ios::trunc);
  out << s;
  if (!out) Die("cannot write " + p.string());
}

// Git with the user's configuration kept out.
std::string Git(const fs::path& home, const std::vector<std::string>& args) {
  std::vector<std::string> full = {"git",
                                   "-c",
                                   "user.name=Bench",
                                   "-c",
                                   "user.email=b@example.com",
                                   "-c",
                                   "init.defaultBranch=main"};
  full.insert(full.end(), args.begin(), args.end());
  const std::string out = (home / "git.out").string();
  if (Run(full, {"GIT_CONFIG_NOSYSTEM=1", "HOME=" + home.string()}, out, out) != 0) {
    Die("git " + args.back() + " failed: " + Slurp(out));
  }
  std::string text = Slurp(out);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  return text;
}

std::string EnvName(size_t i) {
  std::string n = std::to_string(i);
  return "env-" + std::string(n.size() < 3 ? 3 - n.size() : 0, '0') + n;
}

// A repository of `files` resources whose rule maps branches env-* to environments of that name
// under `root`, `envs` branches on its one commit, and a bare clone at work/origin.git.
void MakeFleetRepo(const fs::path& work, size_t envs, size_t files) {
  fs::path repo = work / "repo";
  RepoOptions options;
  options.resources = files;
  options.chain = 0;
  if (std::string err = WriteRepo(repo.string(), options); !err.empty()) Die(err);
  std::string project = Slurp(repo / "driftless.yaml");
  const std::string from = "root: \"${var.root}\"";
  size_t at = project.find(from);
  if (at == std::string::npos) Die("the generated project has no root to replace");
  project.replace(at, from.size(), "root: \"" + (work / "root").string() + "/${env}\"");
  project += "environments:\n  - branch: \"env-*\"\n    name: \"env-{1}\"\n    sync: auto\n";
  Spit(repo / "driftless.yaml", project);
  Git(work, {"-C", repo.string(), "init", "-q"});
  Git(work, {"-C", repo.string(), "add", "-A"});
  Git(work, {"-C", repo.string(), "commit", "-q", "-m", "fleet"});
  for (size_t i = 0; i < envs; ++i) Git(work, {"-C", repo.string(), "branch", EnvName(i)});
  Git(work, {"clone", "-q", "--bare", repo.string(), (work / "origin.git").string()});
  Git(work, {"-C", repo.string(), "remote", "add", "origin", (work / "origin.git").string()});
}

// The server's standard error, line by line, read by a thread of its own (so that the server
// never blocks on a full pipe while the benchmark waits on something else).
class ServerLog {
 public:
  explicit ServerLog(int fd) : fd_(fd), reader_([this] { Read(); }) {}
  ~ServerLog() {
    reader_.join();
    ::close(fd_);
  }
  // Waits until a line from index `from` on holds every needle; returns the index after it.
  size_t WaitFor(const std::vector<std::string>& needles, size_t from, Clock::duration timeout) {
    std::unique_lock lock(mu_);
    size_t found = 0;
    auto has = [&] {
      for (size_t i = from; i < lines_.size(); ++i) {
        bool all = true;
        for (const auto& n : needles) all = all && lines_[i].find(n) != std::string::npos;
        if (all) {
          found = i + 1;
          return true;
        }
      }
      from = std::max(from, lines_.size());
      return ended_;
    };
    if (!cv_.wait_for(lock, timeout, has) || found == 0) {
      Die("the server's log has no line with " + needles.front() +
          (needles.size() > 1 ? " … " + needles.back() : "") +
          (lines_.empty() ? "" : "; its last line: " + lines_.back()));
    }
    return found;
  }
  size_t size() {
    std::lock_guard lock(mu_);
    return lines_.size();
  }
  std::string Line(size_t i) {
    std::lock_guard lock(mu_);
    return i < lines_.size() ? lines_[i] : std::string();
  }

 private:
  void Read() {
    std::string buffer;
    char chunk[65536];
    while (true) {
      ssize_t n = ::read(fd_, chunk, sizeof chunk);
      if (n <= 0) break;
      buffer.append(chunk, static_cast<size_t>(n));
      size_t start = 0, nl;
      std::vector<std::string> got;
      while ((nl = buffer.find('\n', start)) != std::string::npos) {
        got.push_back(buffer.substr(start, nl - start));
        start = nl + 1;
      }
      buffer.erase(0, start);
      if (!got.empty()) {
        std::lock_guard lock(mu_);
        for (auto& l : got) lines_.push_back(std::move(l));
        cv_.notify_all();
      }
    }
    std::lock_guard lock(mu_);
    ended_ = true;
    cv_.notify_all();
  }
  int fd_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> lines_;
  bool ended_ = false;
  std::thread reader_;
};

struct Server {
  int pid = -1;
  uint16_t port = 0;
  std::unique_ptr<ServerLog> log;
};

Server StartServer(const std::string& bin, const fs::path& work,
                   const std::vector<std::string>& extra) {
  std::vector<std::string> args = {"/bin/sh",
                                   "-c",
                                   "exec \"$0\" \"$@\" 2>&1",
                                   bin,
                                   "serve",
                                   "--repo",
                                   "file://" + (work / "origin.git").string(),
                                   "--state",
                                   (work / "state.db").string(),
                                   "--listen",
                                   "127.0.0.1:0",
                                   "--poll",
                                   "1h"};
  args.insert(args.end(), extra.begin(), extra.end());
  int fd = -1;
  Server s;
  s.pid = StartPiped(args, {"DRIFTLESS_CACHE=" + (work / "cache").string()}, &fd);
  int pid = s.pid;
  SetDieContext("driftless-serve-bench", [pid] { ::kill(pid, SIGKILL); });
  s.log = std::make_unique<ServerLog>(fd);
  size_t at = s.log->WaitFor({"\"msg\":\"listening\""}, 0, std::chrono::seconds(120));
  const std::string line = s.log->Line(at - 1);
  const std::string key = "\"address\":\"127.0.0.1:";
  size_t p = line.find(key);
  if (p == std::string::npos) Die("no address in " + line);
  s.port = static_cast<uint16_t>(std::atoi(line.c_str() + p + key.size()));
  return s;
}

void StopServer(Server& s) {
  ::kill(s.pid, SIGTERM);
  int status = 0;
  ::waitpid(s.pid, &status, 0);
  s.log.reset();
  SetDieContext("driftless-serve-bench");
}

std::string MakeToken(const std::string& bin, const fs::path& work, const std::string& role,
                      const std::string& name) {
  const std::string out = (work / "token.out").string();
  if (Run({bin, "token", "create", "--role", role, "--name", name, "--state",
           (work / "state.db").string()},
          {}, out, out) != 0) {
    Die("token create failed: " + Slurp(out));
  }
  std::string text = Slurp(out);
  while (!text.empty() && text.back() == '\n') text.pop_back();
  return text.substr(text.rfind('\n') + 1);
}

std::string HexHmac(const std::string& key, const std::string& body) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(body.data()), body.size(), mac, &len);
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out += kHex[mac[i] >> 4];
    out += kHex[mac[i] & 15];
  }
  return out;
}

std::optional<RawResponse> Request(uint16_t port, const std::string& raw) {
  auto c = RawClient::ConnectTcp(port);
  if (!c.ok() || !c->Send(raw)) return std::nullopt;
  return c->ReadResponse(std::chrono::seconds(60));
}

double MiB(long kib) { return static_cast<double>(kib) / 1024.0; }

struct Options {
  size_t envs = 100, files = 1000, hook_envs = 10, hook_files = 100, commits = 100;
  int clients = 100, requests = 200, streams = 1000;
  std::string only = "fleet,webhook,streams";
  std::string bin = DRIFTLESS_BIN;
};

bool Wanted(const Options& o, const std::string& part) {
  return ("," + o.only + ",").find("," + part + ",") != std::string::npos;
}

void Fleet(const Options& o, const fs::path& work) {
  MakeFleetRepo(work, o.envs, o.files);
  const std::string token = MakeToken(o.bin, work, "viewer", "bench");
  Clock::time_point t0 = Clock::now();
  Server s = StartServer(o.bin, work, {});
  size_t at = 0;
  for (size_t i = 0; i < o.envs; ++i) {
    at = std::max(at, s.log->WaitFor({"\"msg\":\"run applied\""}, at, std::chrono::minutes(30)));
  }
  const double reconcile = Seconds(Clock::now() - t0);
  // At rest: every environment's drift watch has made its watchers and its first full scan.
  at = 0;
  for (size_t i = 0; i < o.envs; ++i) {
    at = s.log->WaitFor({"\"msg\":\"event\"", "\"type\":\"watch.started\""}, at,
                        std::chrono::minutes(30));
  }
  const double watched = Seconds(Clock::now() - t0);
  auto [rss, threads] = RssAndThreads(s.pid);
  const long peak = PeakRssKib(s.pid);
  const std::string request = "GET /api/v1/environments?limit=" + std::to_string(o.envs) +
                              " HTTP/1.1\r\nHost: bench\r\n"
                              "Authorization: Bearer " +
                              token + "\r\n\r\n";
  LoadResult load = Load(s.port, request, o.clients, o.requests, [&](const RawResponse& r) {
    if (r.status != 200) return "status " + std::to_string(r.status) + ": " + r.body;
    if (r.body.find(EnvName(o.envs - 1)) == std::string::npos) {
      return std::string("the list lacks ") + EnvName(o.envs - 1);
    }
    return std::string();
  });
  auto [rss_after, threads_after] = RssAndThreads(s.pid);
  StopServer(s);
  std::printf("\n### Fleet: %zu environments of %zu files\n\n", o.envs, o.files);
  std::printf("| measure | value |\n| --- | ---: |\n");
  std::printf("| start → every environment applied | %.1f s |\n", reconcile);
  std::printf("| start → every environment watched (its first scan done) | %.1f s |\n", watched);
  std::printf(
      "| resident memory, all applied and watched | %.1f MiB (peak %.1f MiB, %ld threads) |\n",
      MiB(rss), MiB(peak), threads);
  std::printf(
      "| GET /api/v1/environments?limit=%zu, %d clients × %d requests: median | %.2f ms |\n",
      o.envs, o.clients, o.requests, load.p50_ms);
  std::printf("| … p99 | %.2f ms |\n| … requests/s | %.0f |\n", load.p99_ms, load.rps);
  std::printf("| resident memory after the load | %.1f MiB (%ld threads) |\n", MiB(rss_after),
              threads_after);
}

void Webhook(const Options& o, const fs::path& work) {
  MakeFleetRepo(work, o.hook_envs, o.hook_files);
  const std::string secret = "bench-webhook-secret";
  Spit(work / "hook.secret", secret + "\n");
  fs::permissions(work / "hook.secret", fs::perms::owner_read | fs::perms::owner_write);
  Server s = StartServer(o.bin, work, {"--webhook-secret-file", (work / "hook.secret").string()});
  size_t at = 0;
  for (size_t i = 0; i < o.hook_envs; ++i) {
    at = std::max(at, s.log->WaitFor({"\"msg\":\"run applied\""}, at, std::chrono::minutes(10)));
  }
  const fs::path repo = work / "repo";
  std::vector<double> ms;
  for (size_t k = 0; k < o.commits; ++k) {
    const std::string env = EnvName(k % o.hook_envs);
    const size_t i = (k / o.hook_envs) % o.hook_files;
    Git(work, {"-C", repo.string(), "checkout", "-q", env});
    RepoOptions ro;
    ro.resources = o.hook_files;
    ro.chain = 0;
    const fs::path file = repo / ResourceFile(i, ro);
    std::string text = Slurp(file);
    size_t line = text.find(ContentLine(i));
    if (line == std::string::npos) Die("no content line for resource " + std::to_string(i));
    text.replace(line, ContentLine(i).size(), ChangedContentLine(i));
    Spit(file, text);
    Git(work, {"-C", repo.string(), "commit", "-q", "-am", "change " + std::to_string(k)});
    const std::string sha = Git(work, {"-C", repo.string(), "rev-parse", "HEAD"});
    Git(work, {"-C", repo.string(), "push", "-q", "origin", env});
    const std::string body = "{\"ref\":\"refs/heads/" + env + "\",\"after\":\"" + sha + "\"}";
    const std::string raw =
        "POST /api/v1/hooks/git HTTP/1.1\r\nHost: bench\r\n"
        "Content-Type: application/json\r\nX-GitHub-Event: push\r\n"
        "X-GitHub-Delivery: bench-" +
        std::to_string(getpid()) + "-" + std::to_string(k) +
        "\r\nX-Hub-Signature-256: sha256=" + HexHmac(secret, body) +
        "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
    const size_t from = s.log->size();
    Clock::time_point t0 = Clock::now();
    std::optional<RawResponse> r = Request(s.port, raw);
    if (!r || r->status != 202) {
      Die("the webhook got " + (r ? std::to_string(r->status) + ": " + r->body : "no answer"));
    }
    s.log->WaitFor({"\"msg\":\"run applied\"", "\"commit\":\"" + sha + "\""}, from,
                   std::chrono::minutes(5));
    ms.push_back(Seconds(Clock::now() - t0) * 1000);
  }
  StopServer(s);
  std::printf("\n### Webhook → applied: %zu commits over %zu environments of %zu files\n\n",
              o.commits, o.hook_envs, o.hook_files);
  std::printf("| measure | value |\n| --- | ---: |\n");
  std::printf("| median | %.0f ms |\n| p99 | %.0f ms |\n| min / max | %.0f / %.0f ms |\n",
              Percentile(ms, 0.5), Percentile(ms, 0.99), Percentile(ms, 0), Percentile(ms, 1));
}

void Streams(const Options& o, const fs::path& work) {
  MakeFleetRepo(work, 1, 10);
  const std::string viewer = MakeToken(o.bin, work, "viewer", "bench-viewer");
  const std::string editor = MakeToken(o.bin, work, "editor", "bench-editor");
  Server s = StartServer(o.bin, work, {});
  s.log->WaitFor({"\"msg\":\"run applied\""}, 0, std::chrono::minutes(5));
  auto [rss_idle, threads_idle] = RssAndThreads(s.pid);
  std::vector<RawClient> clients;
  const std::string open =
      "GET /api/v1/events HTTP/1.1\r\nHost: bench\r\n"
      "Accept: text/event-stream\r\nAuthorization: Bearer " +
      viewer + "\r\n\r\n";
  for (int i = 0; i < o.streams; ++i) {
    auto c = RawClient::ConnectTcp(s.port);
    if (!c.ok() || !c->Send(open)) Die("stream " + std::to_string(i) + " cannot connect");
    clients.push_back(std::move(*c));
  }
  for (auto& c : clients) {
    if (!c.ReadUntil("text/event-stream", std::chrono::seconds(120))) {
      Die("a stream was not opened: " + c.received().substr(0, 300));
    }
  }
  auto [rss_streams, threads_streams] = RssAndThreads(s.pid);
  const std::string body = "{\"action\":\"plan\"}";
  std::optional<RawResponse> r =
      Request(s.port, "POST /api/v1/environments/" + EnvName(0) +
                          "/runs HTTP/1.1\r\nHost: bench\r\n"
                          "Content-Type: application/json\r\nAuthorization: Bearer " +
                          editor + "\r\nContent-Length: " + std::to_string(body.size()) +
                          "\r\n\r\n" + body);
  if (!r || r->status / 100 != 2) {
    Die("requesting a run got " + (r ? std::to_string(r->status) + ": " + r->body : "nothing"));
  }
  Clock::time_point t0 = Clock::now();
  std::vector<double> ms;
  for (auto& c : clients) {
    if (!c.ReadUntil("run.queued", std::chrono::seconds(120))) Die("a stream missed the run");
    ms.push_back(Seconds(Clock::now() - t0) * 1000);
  }
  clients.clear();
  StopServer(s);
  std::printf("\n### %d event streams\n\n", o.streams);
  std::printf("| measure | value |\n| --- | ---: |\n");
  std::printf("| resident memory before / with the streams | %.1f / %.1f MiB |\n", MiB(rss_idle),
              MiB(rss_streams));
  std::printf("| per stream | %.1f KiB |\n",
              static_cast<double>(rss_streams - rss_idle) / o.streams);
  std::printf("| threads before / with the streams | %ld / %ld |\n", threads_idle, threads_streams);
  std::printf("| run requested → the last stream has its event | %.0f ms |\n", Percentile(ms, 1));
  std::printf("\nEvery stream received the run's event (checked).\n");
}

}  // namespace

int Main(int argc, char** argv) {
  SetDieContext("driftless-serve-bench");
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) Die(a + " needs a value");
      return argv[++i];
    };
    if (a == "--envs")
      o.envs = std::stoul(next());
    else if (a == "--files")
      o.files = std::stoul(next());
    else if (a == "--clients")
      o.clients = std::stoi(next());
    else if (a == "--requests")
      o.requests = std::stoi(next());
    else if (a == "--hook-envs")
      o.hook_envs = std::stoul(next());
    else if (a == "--hook-files")
      o.hook_files = std::stoul(next());
    else if (a == "--commits")
      o.commits = std::stoul(next());
    else if (a == "--streams")
      o.streams = std::stoi(next());
    else if (a == "--only")
      o.only = next();
    else if (a == "--bin")
      o.bin = next();
    else
      Die("unknown flag " + a);
  }
  rlimit limit{};
  ::getrlimit(RLIMIT_NOFILE, &limit);
  limit.rlim_cur = limit.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &limit);                    // the server inherits it
  const char* tmp = std::getenv("DRIFTLESS_BENCH_DIR");  // the disk, not tmpfs, by default
  fs::path base = tmp != nullptr ? fs::path(tmp) : fs::current_path();
  fs::path work = base / ("driftless-serve-bench." + std::to_string(getpid()));
  std::printf("load average before: %s\n", LoadAverage().c_str());
  for (const char* part : {"fleet", "webhook", "streams"}) {
    if (!Wanted(o, part)) continue;
    fs::path dir = work / part;
    fs::create_directories(dir);
    if (std::string(part) == "fleet") Fleet(o, dir);
    if (std::string(part) == "webhook") Webhook(o, dir);
    if (std::string(part) == "streams") Streams(o, dir);
    std::fflush(stdout);
    fs::remove_all(dir);
  }
  fs::remove_all(work);
  std::printf("\nload average after: %s\n", LoadAverage().c_str());
  return 0;
}

}  // namespace driftless::bench

int main(int argc, char** argv) { return driftless::bench::Main(argc, argv); }
