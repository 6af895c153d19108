#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/diagnostics.h"
#include "value/value.h"

namespace driftless::config {

/// A resource's policy: what driftless may do to it and how it treats drift.
struct Policy {
  enum class Drift { kReport, kEnforce, kIgnore };
  enum class Upgrade { kDirect, kStepwise };
  Drift drift = Drift::kReport;
  std::vector<std::string> ignore;  ///< field paths ("spec.env.DEBUG"), never compared
  bool create_only = false;
  bool prevent_destroy = false;
  bool adopt = false;
  bool paused = false;
  Upgrade upgrade = Upgrade::kDirect;
  std::string step_field;  ///< with stepwise: "spec.version"
  std::string step_by;     ///< "major", "minor", "patch"
  /// Bit i set: key kPolicyKeys[i] was written in the `policy:` this was parsed from (a
  /// resource's own keys win over the environment's and the project's defaults).
  uint16_t set = 0;
};

/// The keys of a `policy:` mapping, in the order of Policy::set's bits.
inline constexpr std::array<const char*, 8> kPolicyKeys = {
    "drift", "ignore", "create_only", "prevent_destroy", "adopt", "paused", "upgrade", "step"};

/// `over`'s explicitly set keys (Policy::set) on top of `base`; the result's `set` is `over`'s.
Policy MergePolicy(const Policy& base, const Policy& over);

std::string_view DriftName(Policy::Drift d);

/// One declared resource, before interpolation.
struct Resource {
  std::string kind;                       ///< "file.file"
  std::string name;                       ///< "motd"
  std::string address;                    ///< "file.file/motd": identity, unique in an environment
  std::string target;                     ///< a key of `targets:`
  value::Value spec;                      ///< raw spec (an object), strings may hold ${...}
  std::vector<std::string> depends_on;    ///< addresses declared explicitly
  std::vector<SourcePos> depends_on_pos;  ///< where each entry is written (freed after loading)
  bool invalid = false;                   ///< the loader reported errors for it: not evaluated
  bool spec_released = false;             ///< `spec` was freed after evaluation (EvalOptions)
  bool depends_on_released = false;       ///< `depends_on` was freed after evaluation (same)
  /// `spec` is already evaluated (normalised): it comes from the evaluation cache (EvalCache),
  /// with its hash in `cached_spec_hash`.
  bool spec_evaluated = false;
  bool reads_source = false;  ///< its normalisation read a file of the source (`source:`)
  std::string cached_spec_hash;
  Policy policy;           ///< merged: defaults, then the environment rule, then the resource
  std::string moved_from;  ///< previous name (same kind), or ""
  SourcePos pos;           ///< where the document starts (its `kind:` line)
};

/// A `targets:` entry.
struct TargetDecl {
  std::string name;
  std::string provider;
  value::Value settings;  ///< raw (strings may hold ${...}); without `provider`
  SourcePos pos;
};

/// An `environments:` rule of driftless.yaml.
struct EnvironmentRule {
  std::string branch;  ///< pattern, `*` captures
  std::string name;    ///< template ("{1}-{2}"); "" means the branch name
  std::string base;    ///< template of the environment it inherits from
  bool is_protected = false;
  int approvals = 0;
  std::string sync = "manual";
  /// What a drift under `drift: enforce` does where approvals are required: "approve" (a
  /// remediation run that waits for them, the default) or "auto" (reverted at once).
  std::string remediation = "approve";
  std::string ttl;       ///< "72h", "" for none
  value::Value vars;     ///< object
  value::Value policy;   ///< raw policy defaults, object or null
  value::Value targets;  ///< raw: target name -> settings that override the project's, or null
  SourcePos pos;
};

/// driftless.yaml.
struct Project {
  std::string name;
  std::string file = "driftless.yaml";
  std::vector<std::string> include;  ///< globs; default ["**/*.yaml", "**/*.yml"] minus vars/
  value::Value vars;                 ///< object
  std::vector<EnvironmentRule> environments;
  std::vector<TargetDecl> targets;  ///< sorted by name
  value::Value default_policy;      ///< raw `defaults.policy`, object or null
  Policy defaults;                  ///< `defaults.policy` parsed
  value::Value notify;              ///< raw `notify:` (used by the notification issue)
  /// `retention.notifications`: delivered notifications are removed from state after this long
  /// (seconds; default 7 days).
  int64_t notification_retention = 7 * 24 * 3600;
  const TargetDecl* FindTarget(std::string_view name) const;
};

/// A resource file the loader read.
struct DeclaredFile {
  std::string path;
  std::string bytes_hash;   ///< SHA-256 of its bytes (hex)
  bool clean = false;       ///< read, parsed and checked without any diagnostic
  bool from_cache = false;  ///< its resources came from the evaluation cache (EvalCache)
};

/// Everything declared at one revision, after parsing and structural validation but before
/// interpolation.
struct Declarations {
  Project project;
  std::vector<Resource> resources;  ///< sorted by address
  std::string hash;                 ///< SHA-256 over every file read (paths and bytes)
  std::string revision;             ///< source revision ("" for a folder)
  std::string project_hash;         ///< SHA-256 of driftless.yaml's bytes (hex)
  std::vector<DeclaredFile> files;  ///< the resource files, sorted by path
  const Resource* Find(std::string_view address) const;
};

}  // namespace driftless::config
