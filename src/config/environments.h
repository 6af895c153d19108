#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "config/declarations.h"

namespace driftless::config {

/// What a branch (or an environment name) resolves to through the `environments:` rules of
/// driftless.yaml.
struct EnvironmentMatch {
  std::string name;    ///< the environment's name ("staging-login-fix")
  std::string branch;  ///< the branch it came from ("" when matched by name only)
  /// The rule that matched, then its `base`, then the base's base...: most specific first.
  /// Empty when no rule matched (the folder default, or a name no rule knows).
  std::vector<const EnvironmentRule*> rules;
  /// The names of the bases, nearest first: bases[i] is the environment of rules[i + 1].
  std::vector<std::string> bases;
  std::vector<std::string> captures;  ///< what the rule's `*`s matched, {1} first

  const EnvironmentRule* rule() const { return rules.empty() ? nullptr : rules.front(); }
  bool is_protected() const { return rule() != nullptr && rule()->is_protected; }
  /// The rule's ttl in seconds (0: none). Inherited from a base when the rule has none.
  int64_t ttl_seconds() const;
  /// `sync` of the rule ("manual" when no rule matched).
  std::string sync() const;
  /// How many approvals a run needs before it applies: the rule's `approvals`, at least one on
  /// a protected environment (0 when no rule matched).
  int required_approvals() const;
  /// True when an enforced drift is reverted without approval: no approval is required, or the
  /// rule says `remediation: auto`.
  bool remediates_unapproved() const;
};

/// Matches a branch against a pattern: `*` matches one or more characters other than `/`,
/// `**` matches one or more of any character; every `*`/`**` is a capture. Other characters
/// match themselves. On success, the captures are appended to *captures (when not null).
bool MatchBranchPattern(std::string_view pattern, std::string_view branch,
                        std::vector<std::string>* captures);

/// Replaces {1}, {2}, ... in `tmpl` by the captures. Error for a {N} without a capture.
Result<std::string> ExpandTemplate(std::string_view tmpl, const std::vector<std::string>& captures);

/// The environment name a branch gets without a `name:` template: the branch with every
/// character that is not a letter, digit, `_` or `-` replaced by `-` ("feature/x" -> "feature-x").
std::string EnvironmentNameOfBranch(std::string_view branch);

/// True for a valid environment name (letters, digits, `_`, `-`; 1 to 100 characters).
bool ValidEnvironmentName(std::string_view name);

/// The first rule (in file order) whose `branch` pattern matches; std::nullopt when none does
/// (the branch has no environment). Errors: a template naming a missing capture, an invalid
/// resulting name, a `base` that names no environment, a cycle of bases.
Result<std::optional<EnvironmentMatch>> MatchBranch(const Project& project,
                                                    const std::string& branch);

/// The rules of an environment known by name only (no branch: a folder, `--ref` of a commit, or
/// an environment whose branch is gone): the first rule whose name (a `name:` without
/// placeholders, or a literal `branch:` pattern's environment name) is `name`; else the first
/// rule with captures that gives a branch this name, read back from the name through the rule's
/// name template ("staging-login-fix" through `name: "{1}-{2}"` is {staging, login-fix}), with
/// every capture shown in the name, the branch those captures make mapping to that rule, and
/// its bases existing (the shortest first capture wins, as in MatchBranchPattern); `captures`
/// are then filled and `branch` stays "". A name no rule gives has a match without rules
/// (project defaults only).
Result<EnvironmentMatch> MatchName(const Project& project, const std::string& name);

/// "72h", "30m", "7d", "90s" -> seconds; std::nullopt when malformed.
std::optional<int64_t> ParseTtl(std::string_view text);

}  // namespace driftless::config
