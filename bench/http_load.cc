#include "http_load.h"

#include <atomic>
#include <chrono>
#include <fstream>
#include <latch>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "bench_util.h"

namespace driftless::bench {

using server::http::testing::RawClient;

LoadResult Load(uint16_t port, const std::string& request, int clients, int requests,
                const AnswerCheck& check) {
  std::vector<std::vector<double>> latencies(clients);
  std::atomic<int> ready{0};
  std::latch go(1);
  std::atomic<int> failures{0};
  std::mutex first_mu;
  std::string first_failure;
  auto fail = [&](std::string what) {
    ++failures;
    std::lock_guard lock(first_mu);
    if (first_failure.empty()) first_failure = std::move(what);
  };
  std::vector<std::thread> threads;
  for (int i = 0; i < clients; ++i) {
    // Connected and warmed one after the other: a burst of connects would measure the
    // server's accept queue (cpp-httplib listens with a backlog of 5).
    auto connected = RawClient::ConnectTcp(port);
    if (!connected.ok()) Die("connect: " + connected.error().message);
    connected->Send(request);
    auto first = connected->ReadResponse(std::chrono::seconds(60));
    if (!first) Die("no answer to a first request");
    if (std::string why = check(*first); !why.empty()) Die("first answer: " + why);
    threads.emplace_back([&, i, c = std::make_shared<RawClient>(std::move(*connected))] {
      RawClient* client = c.get();
      ++ready;
      go.wait();
      latencies[i].reserve(requests);
      for (int r = 0; r < requests; ++r) {
        auto start = Clock::now();
        if (!client->Send(request)) {
          fail("send failed");
          return;
        }
        auto reply = client->ReadResponse(std::chrono::seconds(60));
        if (!reply) {
          fail("no answer");
          return;
        }
        if (std::string why = check(*reply); !why.empty()) {
          fail(why);
          return;
        }
        latencies[i].push_back(Seconds(Clock::now() - start) * 1000);
      }
    });
  }
  while (ready < clients) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  auto start = Clock::now();
  go.count_down();
  for (auto& t : threads) t.join();
  double wall = Seconds(Clock::now() - start);
  if (failures > 0) {
    Die(std::to_string(failures.load()) + " clients failed; first: " + first_failure);
  }
  std::vector<double> all;
  for (auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  return {static_cast<double>(all.size()) / wall, Percentile(all, 0.5), Percentile(all, 0.99)};
}

namespace {
long StatusField(int pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field, 0) == 0) return std::atol(line.c_str() + field.size());
  }
  return -1;
}
}  // namespace

std::pair<long, long> RssAndThreads(int pid) {
  return {StatusField(pid, "VmRSS:"), StatusField(pid, "Threads:")};
}

long PeakRssKib(int pid) { return StatusField(pid, "VmHWM:"); }

}  // namespace driftless::bench
