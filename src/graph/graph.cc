#include "graph/graph.h"

#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <utility>

namespace driftless::graph {
namespace {

// Ready nodes are kept in a min-heap so that the smallest index starts first.
void PushReady(std::vector<size_t>& heap, size_t node) {
  heap.push_back(node);
  std::push_heap(heap.begin(), heap.end(), std::greater<size_t>());
}

size_t PopReady(std::vector<size_t>& heap) {
  std::pop_heap(heap.begin(), heap.end(), std::greater<size_t>());
  size_t node = heap.back();
  heap.pop_back();
  return node;
}

bool Cancelled(const std::atomic<bool>* cancel) {
  return cancel != nullptr && cancel->load(std::memory_order_acquire);
}

// The bookkeeping of a Walk, shared by the sequential and the parallel driver. Not thread-safe
// by itself: the parallel driver calls it under its mutex.
class WalkCore {
 public:
  explicit WalkCore(const Graph& g)
      : g_(g), status_(g.size(), NodeStatus::kNotRun), pending_(g.size()) {
    for (size_t node = 0; node < g.size(); ++node) {
      pending_[node] = g.Predecessors(node).size();
      // Ascending pushes keep a sorted vector, which is already a valid min-heap.
      if (pending_[node] == 0) ready_.push_back(node);
    }
  }

  bool HasReady() const { return !ready_.empty(); }
  size_t TakeReady() { return PopReady(ready_); }

  // Records the outcome of `node`. On success, successors whose predecessors have all succeeded
  // become ready; on failure, every transitive successor is skipped.
  void Complete(size_t node, bool ok) {
    if (!ok) {
      status_[node] = NodeStatus::kFailed;
      SkipDependents(node);
      return;
    }
    status_[node] = NodeStatus::kSucceeded;
    for (size_t next : g_.Successors(node)) {
      if (--pending_[next] == 0 && status_[next] == NodeStatus::kNotRun) PushReady(ready_, next);
    }
  }

  std::vector<NodeStatus> TakeStatus() { return std::move(status_); }

 private:
  // Marks every node reachable from `failed` as skipped. A dependent of a failed node can never
  // have started, so only kNotRun nodes are touched; a node already skipped was expanded before.
  void SkipDependents(size_t failed) {
    std::vector<size_t> stack(g_.Successors(failed).begin(), g_.Successors(failed).end());
    while (!stack.empty()) {
      size_t node = stack.back();
      stack.pop_back();
      if (status_[node] != NodeStatus::kNotRun) continue;
      status_[node] = NodeStatus::kSkipped;
      for (size_t next : g_.Successors(node)) {
        if (status_[next] == NodeStatus::kNotRun) stack.push_back(next);
      }
    }
  }

  const Graph& g_;
  std::vector<NodeStatus> status_;
  std::vector<size_t> pending_;  // Predecessors not yet succeeded.
  std::vector<size_t> ready_;    // Min-heap of nodes whose predecessors all succeeded.
};

std::vector<NodeStatus> WalkSequential(const Graph& g, const std::function<bool(size_t)>& visit,
                                       const std::atomic<bool>* cancel) {
  WalkCore core(g);
  while (core.HasReady() && !Cancelled(cancel)) {
    size_t node = core.TakeReady();
    core.Complete(node, visit(node));
  }
  return core.TakeStatus();
}

// A pool of workers sharing one ready queue. Each worker records the outcome of the node it ran
// and takes its next node in the same critical section, so a node costs one lock acquisition.
class ParallelWalk {
 public:
  ParallelWalk(const Graph& g, const std::function<bool(size_t)>& visit,
               const std::atomic<bool>* cancel)
      : core_(g), visit_(visit), cancel_(cancel) {}

  std::vector<NodeStatus> Run(int parallelism) {
    // The calling thread is one of the workers.
    std::vector<std::thread> threads;
    threads.reserve(static_cast<size_t>(parallelism - 1));
    for (int i = 1; i < parallelism; ++i) threads.emplace_back([this] { Work(); });
    Work();
    for (std::thread& t : threads) t.join();
    return core_.TakeStatus();
  }

 private:
  void Work() {
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      // Wait while nothing is ready but running nodes may still release some.
      while (!core_.HasReady() && running_ > 0 && !Cancelled(cancel_)) {
        ++idle_;
        cv_.wait(lock);
        --idle_;
      }
      // Nothing ready and nothing running: no node can become ready any more.
      if (!core_.HasReady() || Cancelled(cancel_)) break;
      size_t node = core_.TakeReady();
      ++running_;
      // More ready work and a sleeping worker: pass the wake-up along. Each woken worker does the
      // same, so a burst of released nodes reaches as many workers as it needs.
      if (idle_ > 0 && core_.HasReady()) cv_.notify_one();
      lock.unlock();
      bool ok = visit_(node);
      lock.lock();
      --running_;
      core_.Complete(node, ok);
      if (idle_ > 0 && running_ == 0 && (!core_.HasReady() || Cancelled(cancel_))) {
        // The walk is over: let every waiting worker see it and leave.
        cv_.notify_all();
      }
    }
    // A worker leaving on cancel may leave others waiting for running nodes; the last running
    // node wakes them (running_ == 0 above), so nothing more is needed here.
  }

  WalkCore core_;
  const std::function<bool(size_t)>& visit_;
  const std::atomic<bool>* cancel_;
  std::mutex mu_;
  std::condition_variable cv_;
  size_t running_ = 0;  // Nodes whose visit is in progress.
  size_t idle_ = 0;     // Workers waiting on cv_.
};

}  // namespace

EdgeList::EdgeList(const EdgeList& other) : size_(other.size_) {
  if (other.size_ > 1) {
    cap_ = other.size_;
    u_.many = new size_t[cap_];
  }
  std::copy(other.begin(), other.end(), data());
}

EdgeList::EdgeList(EdgeList&& other) noexcept : size_(other.size_), cap_(other.cap_), u_(other.u_) {
  other.size_ = 0;
  other.cap_ = 1;
}

EdgeList& EdgeList::operator=(EdgeList other) noexcept {
  std::swap(size_, other.size_);
  std::swap(cap_, other.cap_);
  std::swap(u_, other.u_);
  return *this;
}

EdgeList::~EdgeList() {
  if (cap_ != 1) delete[] u_.many;
}

bool EdgeList::InsertSorted(size_t value) {
  // Callers mostly add edges in ascending order, and a node has one to three: a binary search
  // and a shift of the (short) tail.
  size_t* first = data();
  size_t* at = std::lower_bound(first, first + size_, value);
  if (at != first + size_ && *at == value) return false;
  const size_t offset = static_cast<size_t>(at - first);
  if (size_ == cap_) {
    const uint32_t cap = cap_ * 2;
    size_t* grown = new size_t[cap];
    std::copy(first, first + size_, grown);
    if (cap_ != 1) delete[] u_.many;
    u_.many = grown;
    cap_ = cap;
    first = grown;
  }
  std::copy_backward(first + offset, first + size_, first + size_ + 1);
  first[offset] = value;
  ++size_;
  return true;
}

Graph::Graph(size_t n) : succ_(n), pred_(n) {}

void Graph::AddEdge(size_t before, size_t after) {
  // The two lists always hold the same edges, so one check decides for both.
  if (succ_[before].InsertSorted(after)) pred_[after].InsertSorted(before);
}

std::optional<std::vector<size_t>> Graph::FindCycle() const {
  enum : uint8_t { kWhite, kGray, kBlack };
  const size_t n = size();
  std::vector<uint8_t> color(n, kWhite);
  // The DFS path: each entry is a node and the index of the next successor to explore.
  std::vector<std::pair<size_t, size_t>> path;
  for (size_t start = 0; start < n; ++start) {
    if (color[start] != kWhite) continue;
    color[start] = kGray;
    path.emplace_back(start, 0);
    while (!path.empty()) {
      const size_t node = path.back().first;
      const EdgeList& next = succ_[node];
      if (path.back().second == next.size()) {
        color[node] = kBlack;
        path.pop_back();
        continue;
      }
      const size_t succ = next.begin()[path.back().second++];
      if (color[succ] == kGray) {
        // `succ` is on the path: the cycle runs from it to `node` and back to it.
        size_t from = path.size() - 1;
        while (path[from].first != succ) --from;
        std::vector<size_t> cycle;
        cycle.reserve(path.size() - from + 1);
        for (size_t i = from; i < path.size(); ++i) cycle.push_back(path[i].first);
        cycle.push_back(succ);
        return cycle;
      }
      if (color[succ] == kWhite) {
        color[succ] = kGray;
        path.emplace_back(succ, 0);
      }
    }
  }
  return std::nullopt;
}

std::vector<size_t> Graph::TopologicalOrder() const {
  const size_t n = size();
  std::vector<size_t> pending(n);
  std::vector<size_t> ready;
  for (size_t node = 0; node < n; ++node) {
    pending[node] = pred_[node].size();
    if (pending[node] == 0) ready.push_back(node);  // Sorted, hence a valid min-heap.
  }
  std::vector<size_t> order;
  order.reserve(n);
  while (!ready.empty()) {
    size_t node = PopReady(ready);
    order.push_back(node);
    for (size_t next : succ_[node]) {
      if (--pending[next] == 0) PushReady(ready, next);
    }
  }
  return order;
}

Graph Graph::Reversed() const {
  Graph reversed;
  reversed.succ_ = pred_;
  reversed.pred_ = succ_;
  return reversed;
}

std::string FormatCycle(const std::vector<std::string>& names) {
  std::string out = "dependency cycle: ";
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += " -> ";
    out += names[i];
  }
  return out;
}

std::vector<NodeStatus> Walk(const Graph& g, int parallelism,
                             const std::function<bool(size_t)>& visit,
                             const std::atomic<bool>* cancel) {
  // More workers than nodes would only wait.
  const size_t workers = std::min<size_t>(parallelism > 1 ? parallelism : 1, g.size());
  if (workers <= 1) return WalkSequential(g, visit, cancel);
  return ParallelWalk(g, visit, cancel).Run(static_cast<int>(workers));
}

}  // namespace driftless::graph
