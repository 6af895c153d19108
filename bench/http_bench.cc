// The HTTP layer (src/server/http, Boost.Beast) against cpp-httplib, Debian's other C++ HTTP
// server, each in a child process of its own:
//  - requests per second and latency (median, p99) of a trivial JSON route under 100
//    concurrent keep-alive clients (the Beast server's route on its I/O thread and on its
//    worker pool);
//  - resident memory and threads of the server holding 1,000 idle event streams, and a
//    broadcast that every stream must receive (checked, not timed).
// Rounds alternate the servers (A B A B ...); figures are medians over the rounds.
//
//   driftless-http-bench [--clients 100] [--requests 300] [--streams 1000] [--rounds 3]

#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"
#include "http_load.h"
#include "server/http/server.h"
#include "server/http/testing/raw_client.h"
#ifdef DRIFTLESS_BENCH_HTTPLIB
#include <httplib.h>
#endif

namespace {

using driftless::bench::Die;
using driftless::bench::LoadResult;
using driftless::bench::Percentile;
using driftless::bench::RssAndThreads;
namespace http = driftless::server::http;
using http::testing::RawClient;

constexpr const char* kPing = "{\"ok\":true}";

// The Beast server of the benchmark: /api/v1/ping on the I/O thread, /api/v1/ping-worker on the
// worker pool, /events streams, POST /broadcast sends one event to every stream.
int ServeBeast() {
  std::mutex mu;
  std::vector<std::shared_ptr<http::EventStream>> streams;
  http::Router router;
  auto ping = [](const http::Request&) { return http::Response::Json(200, kPing); };
  (void)router.AddSync("GET", "/api/v1/ping", ping, {"", false});
  (void)router.AddSync("GET", "/api/v1/ping-worker", ping, {"", true});
  (void)router.Add("GET", "/events",
                   [&](const http::Request&, http::Responder responder) {
                     auto stream = responder.OpenStream({std::chrono::milliseconds(15000), {}});
                     stream->Send({"0", "hello", ""});
                     std::lock_guard lock(mu);
                     streams.push_back(std::move(stream));
                   },
                   {"", false});
  (void)router.AddSync("POST", "/broadcast",
                       [&](const http::Request&) {
                         std::lock_guard lock(mu);
                         for (auto& s : streams) s->Send({"1", "tick", "broadcast"});
                         return http::Response::Json(200, std::to_string(streams.size()));
                       },
                       {"", false});
  http::ServerOptions options;
  options.max_connections = 10000;
  http::Server server(std::move(router), options);
  server.StopOnSignals();
  if (auto s = server.Start(); !s.ok()) Die(s.error().message);
  std::printf("port %u\n", server.tcp_port());
  std::fflush(stdout);
  server.Wait();
  return 0;
}

#ifdef DRIFTLESS_BENCH_HTTPLIB
// The same routes on cpp-httplib: one pool thread per open connection, so the pool must be as
// large as the number of streams to hold.
int ServeHttplib(int pool_threads) {
  httplib::Server server;
  server.new_task_queue = [pool_threads] { return new httplib::ThreadPool(pool_threads); };
  server.set_keep_alive_max_count(1000000);
  server.set_tcp_nodelay(true);
  server.set_keep_alive_timeout(60);  // its default, 5 s, closes clients waiting for the start
  server.set_read_timeout(60, 0);     // as the Beast server (else Nagle adds 40 ms)
  std::mutex mu;
  std::condition_variable cv;
  uint64_t generation = 0;
  auto ping = [](const httplib::Request&, httplib::Response& res) {
    res.set_content(kPing, "application/json");
  };
  server.Get("/api/v1/ping", ping);
  server.Get("/api/v1/ping-worker", ping);
  server.Get("/events", [&](const httplib::Request&, httplib::Response& res) {
    res.set_chunked_content_provider(
        "text/event-stream",
        [&, seen = uint64_t{0}, hello = false](size_t, httplib::DataSink& sink) mutable {
          if (!hello) {
            hello = true;
            std::string e = "id: 0\nevent: hello\ndata: \n\n";
            return sink.write(e.data(), e.size());
          }
          std::unique_lock lock(mu);
          cv.wait(lock, [&] { return generation > seen; });
          seen = generation;
          lock.unlock();
          std::string e = "id: 1\nevent: tick\ndata: broadcast\n\n";
          return sink.write(e.data(), e.size());
        });
  });
  server.Post("/broadcast", [&](const httplib::Request&, httplib::Response& res) {
    {
      std::lock_guard lock(mu);
      ++generation;
    }
    cv.notify_all();
    res.set_content("ok", "application/json");
  });
  int port = server.bind_to_any_port("127.0.0.1");
  if (port <= 0) Die("httplib: cannot bind");
  std::printf("port %d\n", port);
  std::fflush(stdout);
  server.listen_after_bind();
  return 0;
}
#endif

struct Child {
  int pid = -1;
  uint16_t port = 0;
};

Child StartServer(const std::string& self, const std::string& kind) {
  int fd = -1;
  Child child;
  child.pid = driftless::bench::StartPiped({self, "--serve", kind}, {}, &fd);
  driftless::bench::LineReader reader(fd);
  std::string line;
  if (!reader.WaitForLine({"port "}, std::chrono::seconds(60), &line)) {
    Die(kind + " server did not report its port");
  }
  child.port = static_cast<uint16_t>(std::stoi(line.substr(line.find("port ") + 5)));
  ::close(fd);
  int pid = child.pid;
  driftless::bench::SetDieContext("driftless-http-bench", [pid] { ::kill(pid, SIGKILL); });
  return child;
}

void StopServer(const Child& child) {
  ::kill(child.pid, SIGTERM);
  int status = 0;
  // The Beast server stops gracefully; httplib installs no handler and dies of it.
  ::waitpid(child.pid, &status, 0);
}

LoadResult Load(uint16_t port, const std::string& path, int clients, int requests) {
  return driftless::bench::Load(port, "GET " + path + " HTTP/1.1\r\nHost: bench\r\n\r\n", clients,
                                requests, [](const http::testing::RawResponse& reply) {
                                  if (reply.status == 200 && reply.body == kPing)
                                    return std::string();
                                  return "status " + std::to_string(reply.status) + ": " +
                                         reply.body;
                                });
}

struct StreamResult {
  long rss_idle_kib = 0, rss_streams_kib = 0, threads_idle = 0, threads_streams = 0;
};

StreamResult Streams(const Child& child, int count) {
  StreamResult result;
  std::tie(result.rss_idle_kib, result.threads_idle) = RssAndThreads(child.pid);
  std::vector<RawClient> clients;
  for (int i = 0; i < count; ++i) {
    auto c = RawClient::ConnectTcp(child.port);
    if (!c.ok()) Die("stream " + std::to_string(i) + ": " + c.error().message);
    if (!c->Send("GET /events HTTP/1.1\r\nHost: bench\r\n\r\n")) Die("stream send");
    clients.push_back(std::move(*c));
  }
  for (auto& c : clients) {
    if (!c.ReadUntil("event: hello", std::chrono::seconds(120))) Die("a stream got no hello");
  }
  std::tie(result.rss_streams_kib, result.threads_streams) = RssAndThreads(child.pid);
  auto b = RawClient::ConnectTcp(child.port);
  if (!b.ok() || !b->Send("POST /broadcast HTTP/1.1\r\nHost: bench\r\nContent-Length: 0\r\n\r\n"))
    Die("broadcast");
  for (auto& c : clients) {
    if (!c.ReadUntil("data: broadcast", std::chrono::seconds(120))) {
      Die("a stream missed the broadcast");
    }
  }
  return result;
}

double Median(std::vector<double> v) { return Percentile(std::move(v), 0.5); }

}  // namespace

int main(int argc, char** argv) {
  driftless::bench::SetDieContext("driftless-http-bench");
  int clients = 100, requests = 300, streams = 1000, rounds = 3;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) Die(a + " needs a value");
      return argv[++i];
    };
    if (a == "--serve") {
      std::string kind = next();
      if (kind == "beast") return ServeBeast();
#ifdef DRIFTLESS_BENCH_HTTPLIB
      if (kind == "httplib") return ServeHttplib(streams + 100);
#endif
      Die("unknown server " + kind);
    } else if (a == "--clients") {
      clients = std::stoi(next());
    } else if (a == "--requests") {
      requests = std::stoi(next());
    } else if (a == "--streams") {
      streams = std::stoi(next());
    } else if (a == "--rounds") {
      rounds = std::stoi(next());
    } else {
      Die("unknown flag " + a);
    }
  }
  rlimit limit{};
  ::getrlimit(RLIMIT_NOFILE, &limit);
  limit.rlim_cur = limit.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &limit);  // the children inherit it
  std::string self = "/proc/self/exe";
  char path[4096];
  ssize_t n = ::readlink("/proc/self/exe", path, sizeof path - 1);
  if (n > 0) self.assign(path, static_cast<size_t>(n));

  std::vector<std::string> kinds = {"beast"};
#ifdef DRIFTLESS_BENCH_HTTPLIB
  kinds.push_back("httplib");
#endif
  std::map<std::string, std::vector<double>> rps, p50, p99;
  std::map<std::string, StreamResult> held;
  std::printf("load average before: %s\n", driftless::bench::LoadAverage().c_str());
  for (int round = 0; round < rounds; ++round) {
    for (const auto& kind : kinds) {
      for (std::string path : {"/api/v1/ping", "/api/v1/ping-worker"}) {
        Child child = StartServer(self, kind);
        LoadResult r = Load(child.port, path, clients, requests);
        StopServer(child);
        std::string key = kind + " " + path;
        rps[key].push_back(r.rps);
        p50[key].push_back(r.p50_ms);
        p99[key].push_back(r.p99_ms);
        std::fprintf(stderr, "round %d %s: %.0f req/s, p50 %.2f ms, p99 %.2f ms\n", round + 1,
                     key.c_str(), r.rps, r.p50_ms, r.p99_ms);
      }
    }
  }
  for (const auto& kind : kinds) {
    Child child = StartServer(self, kind);
    held[kind] = Streams(child, streams);
    StopServer(child);
  }
  std::printf("load average after: %s\n\n", driftless::bench::LoadAverage().c_str());
  std::printf(
      "| server, route | requests/s | median ms | p99 ms |\n| --- | ---: | ---: | ---: |\n");
  for (const auto& [key, values] : rps) {
    std::printf("| %s | %.0f | %.2f | %.2f |\n", key.c_str(), Median(values), Median(p50[key]),
                Median(p99[key]));
  }
  std::printf(
      "\n| server | RSS idle MiB | RSS with %d streams MiB | per stream KiB | threads idle "
      "/ with streams |\n| --- | ---: | ---: | ---: | ---: |\n",
      streams);
  for (const auto& [kind, r] : held) {
    std::printf("| %s | %.1f | %.1f | %.1f | %ld / %ld |\n", kind.c_str(), r.rss_idle_kib / 1024.0,
                r.rss_streams_kib / 1024.0,
                static_cast<double>(r.rss_streams_kib - r.rss_idle_kib) / streams, r.threads_idle,
                r.threads_streams);
  }
  std::printf("\nEvery stream received the broadcast (checked).\n");
  return 0;
}
