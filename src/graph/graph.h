#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace driftless::graph {

/// The neighbours of one node, sorted: one inline (most resources have one dependency and one
/// dependent), more on the heap. 16 bytes, where a std::vector would take 24 plus an allocation.
class EdgeList {
 public:
  EdgeList() = default;
  EdgeList(const EdgeList& other);
  EdgeList(EdgeList&& other) noexcept;
  EdgeList& operator=(EdgeList other) noexcept;
  ~EdgeList();

  const size_t* begin() const { return cap_ == 1 ? &u_.one : u_.many; }
  const size_t* end() const { return begin() + size_; }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  /// Inserts `value` in order unless it is there already; returns whether it was inserted.
  bool InsertSorted(size_t value);

 private:
  size_t* data() { return cap_ == 1 ? &u_.one : u_.many; }

  union Storage {
    size_t one;    // while cap_ == 1
    size_t* many;  // cap_ nodes on the heap
  };
  uint32_t size_ = 0;
  uint32_t cap_ = 1;
  Storage u_{0};
};

/// A directed graph over nodes 0..n-1. An edge `before -> after` means `before` must finish
/// before `after` starts (after depends on before).
class Graph {
 public:
  explicit Graph(size_t n = 0);

  size_t size() const { return succ_.size(); }
  /// Adds an edge; duplicate edges are ignored; self-edges are kept (they are cycles).
  void AddEdge(size_t before, size_t after);
  /// Sorted by index.
  std::span<const size_t> Successors(size_t node) const {
    return {succ_[node].begin(), succ_[node].size()};
  }
  /// Sorted by index.
  std::span<const size_t> Predecessors(size_t node) const {
    return {pred_[node].begin(), pred_[node].size()};
  }

  /// A cycle as [a, b, ..., a] when the graph has one. Deterministic: the cycle found first when
  /// nodes are visited in index order.
  std::optional<std::vector<size_t>> FindCycle() const;
  /// A topological order (Kahn), ties broken by the smallest index. The graph must be acyclic.
  std::vector<size_t> TopologicalOrder() const;
  /// The same nodes with every edge reversed (for deleting in reverse dependency order).
  Graph Reversed() const;

 private:
  std::vector<EdgeList> succ_;
  std::vector<EdgeList> pred_;
};

/// "dependency cycle: a -> b -> a" from the names of a cycle's nodes.
std::string FormatCycle(const std::vector<std::string>& names);

/// The outcome of one node in a Walk.
enum class NodeStatus { kNotRun, kSucceeded, kFailed, kSkipped };

/// Runs `visit` on every node in dependency order, at most `parallelism` at once (worker threads;
/// parallelism <= 1 runs on the calling thread). A node starts only after all its predecessors
/// succeeded. When `visit` returns false the node failed, and every node that depends on it,
/// directly or not, is skipped (`visit` is not called for it); independent nodes go on.
/// When `*cancel` becomes true no new node starts; nodes not started stay kNotRun.
/// Returns the status of every node. The graph must be acyclic.
std::vector<NodeStatus> Walk(const Graph& g, int parallelism,
                             const std::function<bool(size_t)>& visit,
                             const std::atomic<bool>* cancel = nullptr);

}  // namespace driftless::graph
