#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "config/declarations.h"

namespace driftless::config {

class Environment;

/// What the evaluation of the resource files of one environment gave, kept between runs so that
/// a file whose bytes did not change is neither parsed nor evaluated again (docs/state.md, "The
/// evaluation cache"). An entry holds, for one file, its resources as the loader made them and
/// their evaluated specs and spec hashes. It is used only when every input of that evaluation is
/// the same:
///
/// - the engine (`engine`: its version and the executable's identity) and the cache format;
/// - driftless.yaml's bytes (targets, defaults, include) and the file's path and bytes (SHA-256);
/// - the evaluation context (`Environment::CacheContext`): the environment's name and salt and
///   the settings of every configured target after interpolation (variables, secrets, the
///   environment and branch as far as targets use them).
///
/// Only files none of whose documents hold a `${...}` expression (so: no variables, secrets or
/// references to other resources), read a `source:` file, hold a secret, or gave a diagnostic get
/// an entry. A reference from another file to a cached resource reads the cached (evaluated)
/// spec, which equals a fresh one. Everything else is evaluated every time.
class EvalCache {
 public:
  /// The cache written at `path`; an empty one (no entries) when there is none, it cannot be
  /// read, it is damaged, or another engine or cache format wrote it.
  static std::unique_ptr<EvalCache> Open(const std::string& path, const std::string& engine);
  ~EvalCache();

  const std::string& project_hash() const { return project_hash_; }
  const std::string& context() const { return context_; }
  size_t size() const { return entries_.size(); }

  /// The entry of `path` when it was written for bytes with SHA-256 `bytes_hash` and is intact,
  /// into `section`; false otherwise. Thread-safe.
  bool Lookup(const std::string& path, const std::string& bytes_hash, std::string* section) const;

  /// The resources of an entry Lookup gave, appended to `out` (their specs evaluated: Resource::
  /// spec_evaluated); false when the entry cannot be decoded (nothing appended then).
  static bool Materialize(std::string_view section, const std::string& path,
                          std::vector<Resource>& out);

  /// An identity of this engine: version, cache format and the running executable's inode,
  /// size and modification time (a rebuilt or upgraded binary never reads an older cache).
  static std::string EngineIdentity(std::string_view version);

  struct WriteStats {
    size_t files = 0;      ///< entries written
    bool written = false;  ///< false: nothing differed from what was read
  };
  /// Writes, atomically, the entries of `env` (evaluated from `decls` without errors) for every
  /// clean file whose resources may be cached; `previous` is the cache the loader read (nullptr:
  /// none). Nothing is written when the entries would be the ones read.
  static Result<WriteStats> Write(const std::string& path, const std::string& engine,
                                  const Declarations& decls, const Environment& env,
                                  const EvalCache* previous);

 private:
  struct Entry {
    std::string path;
    std::string bytes_hash;
    uint64_t offset = 0;
    uint64_t size = 0;
    std::string section_hash;
  };
  EvalCache() = default;

  int fd_ = -1;
  std::string project_hash_;
  std::string context_;
  std::vector<Entry> entries_;  ///< sorted by path
};

}  // namespace driftless::config
