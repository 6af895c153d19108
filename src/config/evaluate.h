#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/diagnostics.h"
#include "config/declarations.h"
#include "config/environments.h"
#include "config/interpolate.h"
#include "graph/graph.h"
#include "provider/provider.h"
#include "source/source.h"

namespace driftless::config {

/// What an environment is evaluated with.
struct EvalOptions {
  std::string env = "default";
  /// The branch the environment comes from ("" for a folder or a bare commit): picks the
  /// environment rule (with its captures) when the branch maps to `env`; `${branch}`.
  std::string branch;
  std::string commit;  ///< `${commit}`: the short commit id ("" for a folder)
  std::string salt;    ///< the environment's salt (state), for hashing secrets
  /// Secret values; std::nullopt when missing.
  std::function<std::optional<std::string>(const std::string& name)> secret;
  bool secrets_required = true;
  /// Frees the raw spec of every resource that holds no `${...}` once it is evaluated: it can
  /// never be needed again, and at 100,000 resources it is a third of the memory; depends_on
  /// lists too, once the graph holds them. The declarations can then be evaluated only once.
  bool release_raw_specs = false;
  /// Keeps what EvalCache::Write needs: explicit depends_on lists (not released) and the specs of
  /// folders before the folder nesting added their descendants.
  bool keep_for_cache = false;
  /// The EvalCache context the declarations' cached resources (Resource::spec_evaluated) were
  /// evaluated in. When it is not this evaluation's (CacheContext), Evaluate stops at once with
  /// cache_mismatch() set: the caller loads the declarations again without the cache.
  std::string cache_context;
  /// Variables from the command line (`--var NAME=VALUE`): they override every other source.
  std::map<std::string, std::string> cli_vars;
  /// The applied attributes of `address` when its state was applied from a spec with
  /// `spec_hash`; nullptr otherwise. Lets `${KIND.NAME.COMPUTED}` resolve at plan time for
  /// resources that do not change.
  std::function<const value::Value*(const std::string& address, const std::string& spec_hash)>
      applied_attrs;
};

/// One resource of the evaluated environment.
struct EvaluatedResource {
  const Resource* decl = nullptr;
  value::Value spec;      ///< interpolated and normalised; may hold unknowns; secrets flagged
  std::string spec_hash;  ///< hash of the protected canonical spec; "" while it holds unknowns
  // The resources it depends on: Environment::graph().Predecessors(its index).
};

/// Declarations evaluated for one environment: variables merged, targets configured, the
/// dependency graph built and every spec interpolated and normalised in dependency order.
class Environment {
 public:
  /// Evaluates; every problem goes to diags. Returns nullptr only when nothing useful could be
  /// built (for example a dependency cycle); check diags in every case.
  static std::unique_ptr<Environment> Evaluate(Declarations& decls,
                                               const provider::Registry& registry,
                                               const source::Source& source, EvalOptions options,
                                               Diagnostics& diags);

  const std::string& name() const { return options_.env; }
  const Declarations& decls() const { return decls_; }
  /// Same order as decls().resources (sorted by address).
  std::vector<EvaluatedResource>& resources() { return resources_; }
  const std::vector<EvaluatedResource>& resources() const { return resources_; }
  /// Edges point from a dependency to its dependent.
  const graph::Graph& graph() const { return graph_; }
  /// The configured target of a resource.
  provider::Target* TargetOf(const Resource& r) const;
  /// A configured target by name, or nullptr.
  provider::Target* TargetNamed(std::string_view name) const;
  /// The schema of a resource's kind.
  const provider::ResourceSchema* SchemaOf(const Resource& r) const;
  /// Index of an address in resources(), or -1.
  int IndexOf(std::string_view address) const;
  /// Hash of the declarations plus this environment's variables file.
  const std::string& hash() const { return hash_; }
  const value::Value& vars() const { return vars_; }
  /// The environment rules it was evaluated with (protected, ttl, sync, approvals).
  const EnvironmentMatch& match() const { return match_; }
  const std::string& salt() const { return options_.salt; }

  /// Interpolates and normalises one resource again, resolving references to other resources
  /// through `attrs` (address -> their attributes after apply). Used by apply for resources
  /// whose spec held unknowns at plan time.
  Result<value::Value> Reevaluate(
      size_t index, const std::function<const value::Value*(const std::string&)>& attrs);

  /// The attributes last applied for `address` when they were applied from its current spec
  /// (through EvalOptions::applied_attrs), else nullptr.
  const value::Value* AppliedAttrs(const std::string& address) const;

  /// Uses `salt` for secrets from now on and recomputes the spec hashes. For an environment
  /// evaluated before its state existed (nothing applied, so nothing else depends on state).
  void SetSalt(std::string salt);

  /// Hash of a normalised spec, as stored in state ("" when it holds unknowns).
  std::string SpecHash(const value::Value& spec) const;

  /// What a cached evaluation of a resource file depends on beyond its own bytes and
  /// driftless.yaml: the environment's name and salt and every target's settings as configured.
  const std::string& CacheContext() const { return cache_context_; }
  /// Evaluate stopped: the declarations hold cached resources of another context.
  bool cache_mismatch() const { return cache_mismatch_; }
  /// The spec of resource `index` as its evaluation gave it, before the folder nesting added
  /// descendants (EvalOptions::keep_for_cache), and its hash.
  const value::Value& CacheableSpec(size_t index) const;
  const std::string& CacheableSpecHash(size_t index) const;

  /// Frees the evaluated resources and the graph and keeps only the configured targets, for a
  /// caller whose watchers still use them after the declarations went (Workspace::
  /// ReleaseEvaluation). Afterwards only TargetNamed may be called; decls() may be gone.
  void KeepOnlyTargets();

 private:
  Environment(Declarations& decls, const provider::Registry& registry, const source::Source& source,
              EvalOptions options);
  bool EvaluateOne(size_t index, const Scope& scope, Diagnostics& diags);
  /// Orders nested objects (a file after its folder) and tells folders what lies inside them.
  void AddHierarchy(Diagnostics& diags);
  Scope MakeScope(const std::function<std::optional<value::Value>(const std::string&,
                                                                  const std::string&)>& res) const;

  Declarations& decls_;
  const provider::Registry& registry_;
  const source::Source& source_;
  EvalOptions options_;
  value::Value vars_;
  EnvironmentMatch match_;
  std::string hash_;
  std::vector<EvaluatedResource> resources_;
  graph::Graph graph_;
  std::map<std::string, std::unique_ptr<provider::Target>, std::less<>> targets_;
  std::string cache_context_;
  bool cache_mismatch_ = false;
  /// index -> (spec, spec hash) before AddHierarchy changed them (keep_for_cache only).
  std::map<size_t, std::pair<value::Value, std::string>> before_hierarchy_;
};

/// The computed-or-declared attribute `attr` of a resource: spec fields, `name` (spec.name or
/// the resource name), then computed attributes from `attrs`. std::nullopt when the kind has
/// no such attribute; Value::Unknown() when it is computed and `attrs` is null.
std::optional<value::Value> ResourceAttribute(const Resource& r,
                                              const provider::ResourceSchema& schema,
                                              const value::Value& spec, const value::Value* attrs,
                                              const std::string& attr);

}  // namespace driftless::config
