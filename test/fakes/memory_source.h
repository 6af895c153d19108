#pragma once

#include <map>
#include <string>

#include "source/source.h"

namespace driftless::test {

/// A repository snapshot held in memory: path -> bytes.
class MemorySource : public source::Source {
 public:
  std::map<std::string, std::string> files;

  Result<std::vector<std::string>> ListFiles() const override {
    std::vector<std::string> out;
    for (const auto& [p, c] : files) out.push_back(p);
    return out;
  }
  Result<std::string> ReadFile(const std::string& path) const override {
    auto it = files.find(path);
    if (it == files.end()) return MakeError("no file " + path);
    return it->second;
  }
  std::string Describe() const override { return "memory"; }
};

}  // namespace driftless::test
