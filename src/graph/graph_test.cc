#include "graph/graph.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace driftless::graph {
namespace {

std::vector<size_t> Vec(std::span<const size_t> s) { return {s.begin(), s.end()}; }

using Cycle = std::vector<size_t>;

// Counts the visits that run at once. The first visits wait until `peak` of them run together,
// so that a walk able to run `peak` nodes at once is seen doing so on every run, however its
// threads are scheduled. A walk that never gets there is given up on after a minute (a failure
// detector: the test then fails on max() < peak).
class Overlap {
 public:
  explicit Overlap(int peak) : peak_(peak) {}

  void Enter() {
    std::unique_lock<std::mutex> lock(mu_);
    max_ = std::max(max_, ++running_);
    if (max_ >= peak_) {
      cv_.notify_all();
      return;
    }
    if (gave_up_) return;
    if (!cv_.wait_for(lock, std::chrono::minutes(1), [&] { return max_ >= peak_; })) {
      gave_up_ = true;
      cv_.notify_all();
    }
  }
  void Leave() {
    std::lock_guard<std::mutex> lock(mu_);
    --running_;
  }
  int max() {
    std::lock_guard<std::mutex> lock(mu_);
    return max_;
  }

 private:
  const int peak_;
  std::mutex mu_;
  std::condition_variable cv_;
  int running_ = 0;
  int max_ = 0;
  bool gave_up_ = false;
};

// A random DAG: edges only go from a lower to a higher position of a random permutation, so the
// node indices themselves are not already in topological order.
Graph RandomDag(size_t n, size_t edges, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<size_t> perm(n);
  for (size_t i = 0; i < n; ++i) perm[i] = i;
  std::shuffle(perm.begin(), perm.end(), rng);
  Graph g(n);
  std::uniform_int_distribution<size_t> pick(0, n - 1);
  for (size_t e = 0; e < edges; ++e) {
    size_t a = pick(rng), b = pick(rng);
    if (a == b) continue;
    if (a > b) std::swap(a, b);
    g.AddEdge(perm[a], perm[b]);
  }
  return g;
}

// Checks that `order` holds every node once and puts `before` ahead of `after` for every edge.
void ExpectRespectsEdges(const Graph& g, const std::vector<size_t>& order) {
  ASSERT_EQ(order.size(), g.size());
  std::vector<size_t> position(g.size(), g.size());
  for (size_t i = 0; i < order.size(); ++i) {
    ASSERT_LT(order[i], g.size());
    ASSERT_EQ(position[order[i]], g.size()) << "node " << order[i] << " twice";
    position[order[i]] = i;
  }
  for (size_t a = 0; a < g.size(); ++a) {
    for (size_t b : g.Successors(a)) {
      ASSERT_LT(position[a], position[b]) << a << " -> " << b;
    }
  }
}

size_t CountStatus(const std::vector<NodeStatus>& status, NodeStatus want) {
  return static_cast<size_t>(std::count(status.begin(), status.end(), want));
}

TEST(EdgeList, InlineThenHeapSortedWithoutRepeats) {
  EdgeList l;
  EXPECT_TRUE(l.empty());
  EXPECT_TRUE(l.InsertSorted(7));
  EXPECT_FALSE(l.InsertSorted(7));
  EXPECT_EQ(Vec({l.begin(), l.size()}), (std::vector<size_t>{7}));
  for (size_t v : {3, 9, 1, 7, 5, 3}) l.InsertSorted(v);
  EXPECT_EQ(Vec({l.begin(), l.size()}), (std::vector<size_t>{1, 3, 5, 7, 9}));
  EdgeList copy = l;
  EdgeList one;
  one.InsertSorted(4);
  EdgeList one_copy(one);
  EdgeList moved = std::move(l);
  EXPECT_TRUE(l.empty());  // a moved-from list is empty
  EXPECT_EQ(Vec({moved.begin(), moved.size()}), Vec({copy.begin(), copy.size()}));
  moved = one_copy;
  EXPECT_EQ(Vec({moved.begin(), moved.size()}), (std::vector<size_t>{4}));
  one_copy = std::move(copy);
  EXPECT_EQ(one_copy.size(), 5u);
  EXPECT_EQ(Vec({one.begin(), one.size()}), (std::vector<size_t>{4}));
}

TEST(Graph, AddEdgeDeduplicatesAndKeepsListsSorted) {
  Graph g(4);
  g.AddEdge(0, 3);
  g.AddEdge(0, 1);
  g.AddEdge(0, 3);
  g.AddEdge(0, 2);
  g.AddEdge(0, 1);
  g.AddEdge(2, 1);
  EXPECT_EQ(Vec(g.Successors(0)), (std::vector<size_t>{1, 2, 3}));
  EXPECT_EQ(Vec(g.Predecessors(1)), (std::vector<size_t>{0, 2}));
  EXPECT_EQ(Vec(g.Predecessors(3)), (std::vector<size_t>{0}));
  EXPECT_TRUE(g.Successors(3).empty());
  EXPECT_EQ(g.size(), 4u);
}

TEST(Graph, SelfEdgeIsKeptAndIsACycle) {
  Graph g(3);
  g.AddEdge(0, 1);
  g.AddEdge(2, 2);
  g.AddEdge(2, 2);
  EXPECT_EQ(Vec(g.Successors(2)), (std::vector<size_t>{2}));
  EXPECT_EQ(Vec(g.Predecessors(2)), (std::vector<size_t>{2}));
  EXPECT_EQ(g.FindCycle(), (Cycle{2, 2}));
}

TEST(Graph, FindsTwoCycle) {
  Graph g(3);
  g.AddEdge(0, 1);
  g.AddEdge(1, 2);
  g.AddEdge(2, 1);
  EXPECT_EQ(g.FindCycle(), (Cycle{1, 2, 1}));
}

TEST(Graph, FindsLongCycleFollowingEdgeDirection) {
  constexpr size_t kN = 1000;
  Graph g(kN);
  for (size_t i = 0; i + 1 < kN; ++i) g.AddEdge(i, i + 1);
  g.AddEdge(kN - 1, 0);
  std::optional<Cycle> cycle = g.FindCycle();
  ASSERT_TRUE(cycle.has_value());
  ASSERT_EQ(cycle->size(), kN + 1);
  for (size_t i = 0; i < kN; ++i) EXPECT_EQ((*cycle)[i], i);
  EXPECT_EQ(cycle->back(), 0u);
}

TEST(Graph, CycleOnlyContainsTheLoopNotThePathLeadingToIt) {
  Graph g(5);
  g.AddEdge(0, 1);
  g.AddEdge(1, 2);
  g.AddEdge(2, 3);
  g.AddEdge(3, 1);
  g.AddEdge(3, 4);
  EXPECT_EQ(g.FindCycle(), (Cycle{1, 2, 3, 1}));
}

TEST(Graph, FindCycleIsDeterministicAcrossEdgeInsertionOrder) {
  // Two cycles reachable from 0; the smaller successor is explored first whatever the order of
  // AddEdge calls.
  Graph a(4), b(4);
  a.AddEdge(0, 1);
  a.AddEdge(0, 2);
  a.AddEdge(1, 0);
  a.AddEdge(2, 0);
  b.AddEdge(2, 0);
  b.AddEdge(1, 0);
  b.AddEdge(0, 2);
  b.AddEdge(0, 1);
  EXPECT_EQ(a.FindCycle(), (Cycle{0, 1, 0}));
  EXPECT_EQ(b.FindCycle(), (Cycle{0, 1, 0}));
}

TEST(Graph, FindsCycleNotReachableFromNodeZero) {
  Graph g(6);
  g.AddEdge(0, 1);
  g.AddEdge(1, 2);
  g.AddEdge(4, 3);
  g.AddEdge(3, 5);
  g.AddEdge(5, 4);
  EXPECT_EQ(g.FindCycle(), (Cycle{3, 5, 4, 3}));
}

TEST(Graph, NoCycleInDags) {
  EXPECT_FALSE(Graph(0).FindCycle().has_value());
  EXPECT_FALSE(Graph(5).FindCycle().has_value());
  Graph diamond(4);
  diamond.AddEdge(0, 1);
  diamond.AddEdge(0, 2);
  diamond.AddEdge(1, 3);
  diamond.AddEdge(2, 3);
  EXPECT_FALSE(diamond.FindCycle().has_value());
  EXPECT_FALSE(RandomDag(2000, 6000, 7).FindCycle().has_value());
}

TEST(Graph, FindCycleOnLongChainsDoesNotRecurse) {
  constexpr size_t kN = 100000;
  Graph g(kN);
  for (size_t i = 0; i + 1 < kN; ++i) g.AddEdge(i, i + 1);
  EXPECT_FALSE(g.FindCycle().has_value());
  g.AddEdge(kN - 1, kN / 2);
  std::optional<Cycle> cycle = g.FindCycle();
  ASSERT_TRUE(cycle.has_value());
  EXPECT_EQ(cycle->size(), kN - kN / 2 + 1);
  EXPECT_EQ(cycle->front(), kN / 2);
  EXPECT_EQ((*cycle)[1], kN / 2 + 1);
  EXPECT_EQ(cycle->back(), kN / 2);
}

TEST(FormatCycle, JoinsNamesWithArrows) {
  EXPECT_EQ(FormatCycle({"a", "b", "a"}), "dependency cycle: a -> b -> a");
  EXPECT_EQ(FormatCycle({"db", "db"}), "dependency cycle: db -> db");
  Graph g(3);
  g.AddEdge(1, 2);
  g.AddEdge(2, 1);
  const std::vector<std::string> names = {"ns/web", "ns/db", "ns/cache"};
  std::vector<std::string> cycle_names;
  std::optional<Cycle> cycle = g.FindCycle();
  ASSERT_TRUE(cycle.has_value());
  for (size_t node : *cycle) cycle_names.push_back(names[node]);
  EXPECT_EQ(FormatCycle(cycle_names), "dependency cycle: ns/db -> ns/cache -> ns/db");
}

TEST(TopologicalOrder, BreaksTiesBySmallestIndex) {
  Graph g(6);
  g.AddEdge(5, 0);
  g.AddEdge(4, 0);
  g.AddEdge(4, 1);
  g.AddEdge(2, 3);
  g.AddEdge(3, 1);
  EXPECT_EQ(g.TopologicalOrder(), (std::vector<size_t>{2, 3, 4, 1, 5, 0}));
  EXPECT_EQ(Graph(3).TopologicalOrder(), (std::vector<size_t>{0, 1, 2}));
  EXPECT_TRUE(Graph(0).TopologicalOrder().empty());
}

TEST(TopologicalOrder, RespectsEveryEdgeAndIsDeterministic) {
  for (uint32_t seed = 1; seed <= 5; ++seed) {
    Graph g = RandomDag(3000, 9000, seed);
    std::vector<size_t> order = g.TopologicalOrder();
    ExpectRespectsEdges(g, order);
    EXPECT_EQ(order, g.TopologicalOrder());
    EXPECT_EQ(order, RandomDag(3000, 9000, seed).TopologicalOrder());
  }
}

TEST(TopologicalOrder, LongChainInReverseIndexOrder) {
  constexpr size_t kN = 100000;
  Graph g(kN);
  for (size_t i = kN - 1; i > 0; --i) g.AddEdge(i, i - 1);
  std::vector<size_t> order = g.TopologicalOrder();
  ASSERT_EQ(order.size(), kN);
  EXPECT_EQ(order.front(), kN - 1);
  EXPECT_EQ(order.back(), 0u);
  ExpectRespectsEdges(g, order);
}

TEST(Reversed, SwapsEveryEdge) {
  Graph g(4);
  g.AddEdge(0, 1);
  g.AddEdge(0, 2);
  g.AddEdge(2, 3);
  g.AddEdge(1, 3);
  Graph r = g.Reversed();
  ASSERT_EQ(r.size(), 4u);
  for (size_t a = 0; a < g.size(); ++a) {
    EXPECT_EQ(Vec(r.Successors(a)), Vec(g.Predecessors(a)));
    EXPECT_EQ(Vec(r.Predecessors(a)), Vec(g.Successors(a)));
  }
  EXPECT_EQ(r.TopologicalOrder(), (std::vector<size_t>{3, 1, 2, 0}));
  // Still deduplicating after the reversal.
  r.AddEdge(3, 1);
  EXPECT_EQ(Vec(r.Successors(3)), (std::vector<size_t>{1, 2}));
  r.AddEdge(3, 0);
  EXPECT_EQ(Vec(r.Successors(3)), (std::vector<size_t>{0, 1, 2}));
  EXPECT_EQ(Vec(r.Predecessors(0)), (std::vector<size_t>{1, 2, 3}));
  EXPECT_EQ(g.Reversed().Reversed().TopologicalOrder(), g.TopologicalOrder());
}

// Runs a Walk that records, for every node, how often it was visited and the order in which
// visits finished.
struct Recorder {
  explicit Recorder(size_t n) : calls(n) {
    for (auto& c : calls) c.store(0);
  }
  std::function<bool(size_t)> Visit(std::function<bool(size_t)> ok = nullptr) {
    return [this, ok](size_t node) {
      calls[node].fetch_add(1);
      bool result = ok ? ok(node) : true;
      std::lock_guard<std::mutex> lock(mu);
      finished.push_back(node);
      return result;
    };
  }
  std::vector<std::atomic<int>> calls;
  std::mutex mu;
  std::vector<size_t> finished;
};

class WalkTest : public ::testing::TestWithParam<int> {};

TEST_P(WalkTest, AllNodesSucceedInDependencyOrder) {
  for (uint32_t seed = 1; seed <= 3; ++seed) {
    Graph g = RandomDag(2000, 5000, seed);
    Recorder rec(g.size());
    std::vector<NodeStatus> status = Walk(g, GetParam(), rec.Visit());
    EXPECT_EQ(CountStatus(status, NodeStatus::kSucceeded), g.size());
    for (size_t i = 0; i < g.size(); ++i) EXPECT_EQ(rec.calls[i].load(), 1) << i;
    ExpectRespectsEdges(g, rec.finished);
  }
}

TEST_P(WalkTest, FailureSkipsExactlyTheTransitiveDependents) {
  // 0 -> 1 -> 2 -> 7, 0 -> 3, 4 -> 5 -> 6, 1 -> 6, and 8 alone. Node 1 fails.
  Graph g(9);
  g.AddEdge(0, 1);
  g.AddEdge(1, 2);
  g.AddEdge(2, 7);
  g.AddEdge(0, 3);
  g.AddEdge(4, 5);
  g.AddEdge(5, 6);
  g.AddEdge(1, 6);
  Recorder rec(g.size());
  std::vector<NodeStatus> status =
      Walk(g, GetParam(), rec.Visit([](size_t node) { return node != 1; }));
  using S = NodeStatus;
  EXPECT_EQ(status,
            (std::vector<S>{S::kSucceeded, S::kFailed, S::kSkipped, S::kSucceeded, S::kSucceeded,
                            S::kSucceeded, S::kSkipped, S::kSkipped, S::kSucceeded}));
  for (size_t node : {0, 1, 3, 4, 5, 8}) EXPECT_EQ(rec.calls[node].load(), 1) << node;
  for (size_t node : {2, 6, 7}) EXPECT_EQ(rec.calls[node].load(), 0) << node;
}

TEST_P(WalkTest, FailuresInRandomGraphSkipOnlyReachableNodes) {
  Graph g = RandomDag(3000, 6000, 11);
  auto fails = [](size_t node) { return node % 97 == 5; };
  Recorder rec(g.size());
  std::vector<NodeStatus> status =
      Walk(g, GetParam(), rec.Visit([&](size_t n) { return !fails(n); }));
  // Expected: a node is skipped when some predecessor failed or was skipped.
  std::vector<NodeStatus> want(g.size());
  for (size_t node : g.TopologicalOrder()) {
    bool blocked = false;
    for (size_t p : g.Predecessors(node)) {
      blocked = blocked || want[p] == NodeStatus::kFailed || want[p] == NodeStatus::kSkipped;
    }
    want[node] = blocked       ? NodeStatus::kSkipped
                 : fails(node) ? NodeStatus::kFailed
                               : NodeStatus::kSucceeded;
  }
  EXPECT_EQ(status, want);
  EXPECT_GT(CountStatus(want, NodeStatus::kSkipped), 0u);
  for (size_t i = 0; i < g.size(); ++i) {
    EXPECT_EQ(rec.calls[i].load(), want[i] == NodeStatus::kSkipped ? 0 : 1) << i;
  }
}

TEST_P(WalkTest, EverythingFailingDoesNotDeadlock) {
  Graph g = RandomDag(500, 800, 3);
  std::vector<NodeStatus> status = Walk(g, GetParam(), [](size_t) { return false; });
  for (size_t node = 0; node < g.size(); ++node) {
    EXPECT_EQ(status[node],
              g.Predecessors(node).empty() ? NodeStatus::kFailed : NodeStatus::kSkipped);
  }
  Graph wide(300);
  status = Walk(wide, GetParam(), [](size_t) { return false; });
  EXPECT_EQ(CountStatus(status, NodeStatus::kFailed), wide.size());
}

TEST_P(WalkTest, CancelBeforeStartRunsNothing) {
  Graph g = RandomDag(100, 200, 5);
  std::atomic<bool> cancel{true};
  std::atomic<int> calls{0};
  std::vector<NodeStatus> status = Walk(
      g, GetParam(),
      [&](size_t) {
        calls.fetch_add(1);
        return true;
      },
      &cancel);
  EXPECT_EQ(calls.load(), 0);
  EXPECT_EQ(CountStatus(status, NodeStatus::kNotRun), g.size());
}

TEST_P(WalkTest, CancelStopsNewStartsAndLeavesTheRestNotRun) {
  const int parallelism = GetParam();
  Graph g(2000);  // Wide: every node is ready at once.
  std::atomic<bool> cancel{false};
  Recorder rec(g.size());
  std::vector<NodeStatus> status = Walk(g, parallelism, rec.Visit([&](size_t node) {
    if (node == 10) cancel.store(true);
    return true;
  }),
                                        &cancel);
  size_t ran = CountStatus(status, NodeStatus::kSucceeded);
  EXPECT_EQ(ran + CountStatus(status, NodeStatus::kNotRun), g.size());
  EXPECT_EQ(rec.finished.size(), ran);
  for (size_t i = 0; i < g.size(); ++i) {
    EXPECT_EQ(rec.calls[i].load(), status[i] == NodeStatus::kSucceeded ? 1 : 0) << i;
  }
  if (parallelism <= 1) {
    EXPECT_EQ(ran, 11u);  // Smallest index first: 0..10, then nothing.
  } else {
    EXPECT_LT(ran, g.size());
  }
}

TEST_P(WalkTest, CancelInChainStopsAtTheCancellingNode) {
  Graph g(50);
  for (size_t i = 0; i + 1 < g.size(); ++i) g.AddEdge(i, i + 1);
  std::atomic<bool> cancel{false};
  std::vector<NodeStatus> status = Walk(
      g, GetParam(),
      [&](size_t node) {
        if (node == 20) cancel.store(true);
        return true;
      },
      &cancel);
  for (size_t i = 0; i < g.size(); ++i) {
    EXPECT_EQ(status[i], i <= 20 ? NodeStatus::kSucceeded : NodeStatus::kNotRun) << i;
  }
}

TEST_P(WalkTest, ConcurrencyIsBounded) {
  const int parallelism = GetParam();
  const int bound = std::max(parallelism, 1);
  Graph g(64);
  // A few chains and joins so that the ready set grows and shrinks; nodes 0..7 are all ready at
  // the start, so that eight can run at once.
  for (size_t i = 0; i + 8 < g.size(); i += 3) g.AddEdge(i, i + 8);
  Overlap overlap(bound);
  std::vector<NodeStatus> status = Walk(g, parallelism, [&](size_t) {
    overlap.Enter();
    overlap.Leave();
    return true;
  });
  EXPECT_EQ(CountStatus(status, NodeStatus::kSucceeded), g.size());
  EXPECT_EQ(overlap.max(), bound) << "never more than the parallelism at once, and that many";
}

TEST_P(WalkTest, LongChainDoesNotOverflowTheStack) {
  constexpr size_t kN = 100000;
  Graph g(kN);
  for (size_t i = 0; i + 1 < kN; ++i) g.AddEdge(i, i + 1);
  std::vector<size_t> order;
  order.reserve(kN);
  std::vector<NodeStatus> status = Walk(g, GetParam(), [&](size_t node) {
    order.push_back(node);  // A chain runs one node at a time.
    return true;
  });
  EXPECT_EQ(CountStatus(status, NodeStatus::kSucceeded), kN);
  ASSERT_EQ(order.size(), kN);
  for (size_t i = 0; i < kN; ++i) ASSERT_EQ(order[i], i);

  // A failure near the head skips the whole tail without recursing.
  status = Walk(g, GetParam(), [](size_t node) { return node != 3; });
  EXPECT_EQ(CountStatus(status, NodeStatus::kSucceeded), 3u);
  EXPECT_EQ(status[3], NodeStatus::kFailed);
  EXPECT_EQ(CountStatus(status, NodeStatus::kSkipped), kN - 4);
}

TEST_P(WalkTest, WideGraphRunsEveryNodeOnce) {
  constexpr size_t kN = 100000;
  Graph g(kN + 1);
  for (size_t i = 1; i <= kN; ++i) g.AddEdge(0, i);  // One root, 100,000 leaves.
  std::vector<std::atomic<uint8_t>> calls(g.size());
  std::vector<NodeStatus> status = Walk(g, GetParam(), [&](size_t node) {
    calls[node].fetch_add(1, std::memory_order_relaxed);
    return true;
  });
  EXPECT_EQ(CountStatus(status, NodeStatus::kSucceeded), g.size());
  for (size_t i = 0; i < g.size(); ++i) ASSERT_EQ(calls[i].load(), 1) << i;

  // The root failing skips every leaf.
  status = Walk(g, GetParam(), [](size_t node) { return node != 0; });
  EXPECT_EQ(status[0], NodeStatus::kFailed);
  EXPECT_EQ(CountStatus(status, NodeStatus::kSkipped), kN);
}

INSTANTIATE_TEST_SUITE_P(Parallelism, WalkTest, ::testing::Values(0, 1, 2, 8),
                         [](const ::testing::TestParamInfo<int>& info) {
                           return "P" + std::to_string(info.param);
                         });

TEST(Walk, SequentialRunsSmallestReadyIndexFirst) {
  Graph g(6);
  g.AddEdge(5, 0);
  g.AddEdge(4, 0);
  g.AddEdge(4, 1);
  g.AddEdge(2, 3);
  g.AddEdge(3, 1);
  std::vector<size_t> order;
  Walk(g, 1, [&](size_t node) {
    order.push_back(node);
    return true;
  });
  EXPECT_EQ(order, g.TopologicalOrder());
  EXPECT_EQ(order, (std::vector<size_t>{2, 3, 4, 1, 5, 0}));
}

TEST(Walk, RunsVisitOnWorkerThreadsWhenParallel) {
  Graph g(32);
  std::mutex mu;
  std::vector<std::thread::id> ids;
  Overlap overlap(4);  // four at once can only be on four threads
  Walk(g, 4, [&](size_t) {
    {
      std::lock_guard<std::mutex> lock(mu);
      ids.push_back(std::this_thread::get_id());
    }
    overlap.Enter();
    overlap.Leave();
    return true;
  });
  EXPECT_EQ(overlap.max(), 4);
  std::sort(ids.begin(), ids.end());
  size_t distinct = static_cast<size_t>(std::unique(ids.begin(), ids.end()) - ids.begin());
  EXPECT_EQ(distinct, 4u);
}

TEST(Walk, EmptyGraph) {
  EXPECT_TRUE(Walk(Graph(0), 8, [](size_t) { return true; }).empty());
  EXPECT_TRUE(Walk(Graph(0), 1, [](size_t) { return true; }).empty());
}

}  // namespace
}  // namespace driftless::graph
