// The synthetic repository the benchmark runs on: N file.file resources, many documents per
// YAML file, optionally linked by depends_on in chains. Shared by driftless-gen-repo and
// driftless-bench so that the benchmark knows, for every resource, where it is declared and
// what its file must contain.
#pragma once

#include <cstddef>
#include <string>

namespace driftless::bench {

struct RepoOptions {
  size_t resources = 0;         ///< N
  size_t chain = 10;            ///< resources per depends_on chain; 0 or 1: no depends_on
  size_t docs_per_file = 1000;  ///< YAML documents per file under res/
};

/// The largest N the naming scheme (dNNN/fNNNNNN.txt) holds.
constexpr size_t kMaxResources = 1000000;

/// "f000123": the resource's name.
std::string ResourceName(size_t i);
/// "d000/f000123.txt": the file's path relative to the target root.
std::string ResourcePath(size_t i);
/// The file's bytes (about 80 bytes, holding the index).
std::string ResourceContent(size_t i);
/// "res/r0000.yaml": the YAML file (relative to the repository) that declares resource i.
std::string ResourceFile(size_t i, const RepoOptions& options);
/// The exact `content:` line of resource i in its YAML file; unique in the repository.
std::string ContentLine(size_t i);
/// The same line with a different content, for a one-resource change.
std::string ChangedContentLine(size_t i);

/// Writes the repository into `dir` (created when missing; it must be empty otherwise).
/// Returns "" on success, else what went wrong. The output depends only on the options.
std::string WriteRepo(const std::string& dir, const RepoOptions& options);

}  // namespace driftless::bench
