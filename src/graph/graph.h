#pragma once

#include <atomic>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace driftless::graph {

/// A directed graph over nodes 0..n-1. An edge `before -> after` means `before` must finish
/// before `after` starts (after depends on before).
class Graph {
 public:
  explicit Graph(size_t n = 0);

  size_t size() const { return succ_.size(); }
  /// Adds an edge; duplicate edges are ignored; self-edges are kept (they are cycles).
  void AddEdge(size_t before, size_t after);
  const std::vector<size_t>& Successors(size_t node) const { return succ_[node]; }
  const std::vector<size_t>& Predecessors(size_t node) const { return pred_[node]; }

  /// A cycle as [a, b, ..., a] when the graph has one. Deterministic: the cycle found first when
  /// nodes are visited in index order.
  std::optional<std::vector<size_t>> FindCycle() const;
  /// A topological order (Kahn), ties broken by the smallest index. The graph must be acyclic.
  std::vector<size_t> TopologicalOrder() const;
  /// The same nodes with every edge reversed (for deleting in reverse dependency order).
  Graph Reversed() const;

 private:
  std::vector<std::vector<size_t>> succ_;
  std::vector<std::vector<size_t>> pred_;
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
