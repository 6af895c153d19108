#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "provider/provider.h"

namespace driftless::test {

/// Objects of one in-memory target, shared with the test so it can inspect and tamper.
struct MemoryWorld {
  std::mutex mu;
  std::map<std::string, value::Value> objects;  ///< by key
  std::set<std::string> fail_keys;              ///< Create/Update of these keys fails
  int writes = 0;
  bool batches = false;  ///< the target reads in batches (Target::ReadsInBatches)
  int reads = 0;         ///< calls of Read
  int batch_reads = 0;   ///< calls of ReadMany
  size_t batched = 0;    ///< objects read by ReadMany
};

/// A provider "mem" with one kind, mem.object: `key` (required, forces replacement),
/// `value` (string), `tags` (map), `secret` (string, always sensitive), computed `length`.
/// Its targets keep objects in a MemoryWorld: planner and applier tests run without I/O.
std::unique_ptr<provider::Provider> NewMemoryProvider(std::shared_ptr<MemoryWorld> world);

}  // namespace driftless::test
