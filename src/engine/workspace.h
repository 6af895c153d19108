#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "base/diagnostics.h"
#include "config/evaluate.h"
#include "config/loader.h"
#include "plan/planner.h"
#include "plan/stored.h"
#include "provider/provider.h"
#include "source/git.h"
#include "source/source.h"
#include "state/state_store.h"

namespace driftless::engine {

/// Where a workspace reads declarations and state, and how it works (the CLI's global flags).
struct WorkspaceOptions {
  std::string dir = ".";     ///< the repository folder (or a folder without Git)
  std::string repo;          ///< --repo: a repository path or URL (default: the one around dir)
  std::string ref;           ///< --ref: branch, tag or commit to read (default: ENV's branch)
  bool worktree = false;     ///< --worktree: read the working tree's files, uncommitted ones too
  std::string state;         ///< --state; default DRIFTLESS_STATE or <dir>/.driftless/state.db; a
                             ///< postgres:// or postgresql:// URI selects the PostgreSQL backend
  std::string secrets_file;  ///< NAME=VALUE lines
  int parallelism = 8;
  double lock_timeout = 0;                  ///< seconds
  int64_t lease_seconds = 60;               ///< --lease / DRIFTLESS_LEASE: the lock's lease
  std::map<std::string, std::string> vars;  ///< --var NAME=VALUE
  /// Fetch a repository given by URL when it is opened. false reads the mirror as last fetched
  /// (the server: its fetch loop fetches, its runs and watches read what it fetched).
  bool fetch = true;
  /// How long the event log keeps events (the Dispatcher's pruning); 0: its default, 7 days.
  int64_t event_retention_seconds = 0;
  /// Keep and use the evaluation cache (config::EvalCache) of a SQLite state: files whose bytes
  /// did not change are not parsed or evaluated again. DRIFTLESS_EVAL_CACHE=off turns it off.
  bool eval_cache = true;
  /// The engine identity the cache is keyed on; "" for config::EvalCache::EngineIdentity (tests
  /// stand for an upgrade with another one).
  std::string eval_cache_engine;
};

/// What the evaluation cache did in the last evaluation (Workspace::eval_cache_stats).
struct EvalCacheStats {
  bool used = false;         ///< a cache was looked at
  size_t files = 0;          ///< resource files declared
  size_t reused = 0;         ///< of them, taken from the cache (neither parsed nor evaluated)
  bool mismatch = false;     ///< the cache was of another context: everything evaluated again
  bool written = false;      ///< the cache was written afterwards
  size_t written_files = 0;  ///< entries written
};

/// Which environment a command works on and where its declarations come from.
struct Selection {
  std::string env;
  std::string branch;                        ///< the environment's branch; "" when none
  std::optional<source::CommitInfo> commit;  ///< the commit read; none in a plain folder
  bool worktree = false;                     ///< files come from the working tree
  std::string why;  ///< how the commit was chosen ("branch head", "--ref", "last applied")
};

/// A branch and the environment it maps to (through its head commit's driftless.yaml).
struct BranchEnvironment {
  source::BranchInfo branch;
  config::EnvironmentMatch match;
};

/// Everything a command works with, loaded in pipeline order.
class Workspace {
 public:
  explicit Workspace(WorkspaceOptions options);

  /// The Git repository (--repo, or the one around --dir); nullptr for a plain folder.
  Result<source::GitRepository*> Repo();
  /// Picks the environment (ENV, else the current branch's or --ref's; "default" in a plain
  /// folder) and the declarations' commit (--ref, else the branch head, else the commit last
  /// applied when the branch is gone). Call before anything reads declarations.
  /// `prefer_worktree`: read the working tree when there is one and no --ref (validate).
  Status Select(const std::string& env_arg, bool prefer_worktree = false);
  const Selection& selection() const { return selection_; }
  /// The environment `branch` maps to at `head` (nullopt when no rule matches).
  Result<std::optional<config::EnvironmentMatch>> MapBranch(const std::string& branch,
                                                            const source::CommitInfo& head);
  /// Every branch that maps to an environment, sorted by branch name.
  Result<const std::vector<BranchEnvironment>*> BranchEnvironments();
  /// Reads declarations from `commit` from now on, forgetting everything loaded before.
  Status UseCommit(const source::CommitInfo& commit);
  /// The commit of the environment's last successful apply ("" when none).
  Result<std::string> AppliedCommit(const std::string& env);

  /// The state store (opened on first use, unless UseState gave one).
  Result<state::StateStore*> State();
  /// Reads and writes the state through `store` (not owned; it must outlive the workspace and
  /// not be used by another thread meanwhile) instead of opening a connection of its own: for
  /// a caller that opens many short-lived workspaces on one thread (the server's fetch loop).
  /// Before the first State().
  void UseState(state::StateStore* store) { state_ = store; }
  /// Declarations from the source; problems go to diags.
  config::Declarations& LoadDeclarations(Diagnostics& diags);
  /// Evaluates `env` (state's salt and applied attributes included when `with_state`).
  Result<config::Environment*> Evaluate(const std::string& env, bool secrets_required,
                                        bool with_state, Diagnostics& diags);
  /// Reads the environment's state for planning (MakePlan reads more of it); with `addresses`,
  /// the digests of just those rows (plan::ReadPriorState), read afresh.
  Result<plan::PriorState*> Prior(const std::string& env,
                                  const std::vector<std::string>* addresses = nullptr);
  /// The environment's row in state (created when missing).
  Result<const state::Environment*> EnvironmentRow(const std::string& env);
  /// What to plan beyond the defaults.
  struct PlanRequest {
    bool destroy = false;
    bool list_unchanged = false;
    const std::set<std::string, std::less<>>* only = nullptr;  ///< PlanOptions::only
    /// Called on the evaluated environment before planning (a step's intermediate versions).
    std::function<Status(config::Environment&)> adjust;
    /// Plan again with the environment evaluated before (the declarations did not change) and
    /// state read afresh: `watch` checks the same declarations many times.
    bool again = false;
    /// Read every live object, even those whose stamp says they are unchanged
    /// (PlanOptions::use_stamps off): `drift --full`, the watch's periodic scan.
    bool full = false;
    /// PlanOptions::lean_creates: for a caller that uses the plan while this workspace keeps
    /// the environment it was made from (an apply).
    bool lean_creates = false;
  };
  /// Plans `env`; diags gets declaration errors.
  Result<plan::Plan> Plan(const std::string& env, const PlanRequest& request, Diagnostics& diags);
  Result<plan::Plan> Plan(const std::string& env, bool destroy, Diagnostics& diags,
                          bool list_unchanged = false) {
    PlanRequest r;
    r.destroy = destroy;
    r.list_unchanged = list_unchanged;
    return Plan(env, r, diags);
  }

  /// Frees the declarations, their evaluation and the state read for planning (the state's
  /// connection stays open and gives back its cache), so that a caller that plans now and then
  /// (a served watch between its checks) holds little; the next Evaluate or Plan loads and
  /// evaluates again from the same commit. Returns the evaluated environment reduced to its
  /// targets (Environment::KeepOnlyTargets), or nullptr: keep it while watchers made by its
  /// targets live.
  std::unique_ptr<config::Environment> ReleaseEvaluation();

  /// What the evaluation cache did in the last Evaluate.
  const EvalCacheStats& eval_cache_stats() const { return cache_stats_; }
  /// Where the evaluation cache of `env` lives ("" when there is none: a PostgreSQL state, or
  /// turned off).
  std::string EvalCachePath(const std::string& env) const;

  /// True when the state exists and knows `env` (without creating either).
  bool StateHasEnvironment(const std::string& env);
  /// The environment evaluated last (by Evaluate or Plan), or nullptr.
  config::Environment* environment() const { return env_.get(); }
  const WorkspaceOptions& options() const { return options_; }
  const provider::Registry& registry() const { return registry_; }
  const source::Source& source() const { return *source_; }
  /// The state location (--state, else DRIFTLESS_STATE, else <dir>/.driftless/state.db).
  std::string StatePath() const;
  /// The state location as messages show it (a PostgreSQL password masked).
  std::string StateDisplay() const;

  /// A secret's value (DRIFTLESS_SECRET_NAME, else the --secrets-file), or std::nullopt.
  std::optional<std::string> Secret(const std::string& name);

 private:
  /// The source of a commit (the project's subfolder of it).
  Result<std::unique_ptr<source::Source>> CommitSource(const std::string& commit);
  /// Evaluation options without state.
  config::EvalOptions Options(const std::string& env, bool secrets_required);

  WorkspaceOptions options_;
  provider::Registry registry_;
  bool repo_opened_ = false;
  std::unique_ptr<source::GitRepository> repo_;
  std::string prefix_;  ///< the project's folder inside the repository ("" at its root)
  Selection selection_;
  std::optional<std::vector<BranchEnvironment>> branch_envs_;
  std::map<std::string, std::string> branch_errors_;  ///< branch -> why it maps to nothing
  std::map<std::string, std::unique_ptr<config::Project>> projects_;  ///< by commit id
  std::unique_ptr<source::Source> source_;
  std::unique_ptr<state::StateStore> store_;  ///< opened by State()
  state::StateStore* state_ = nullptr;        ///< store_, or UseState's
  std::unique_ptr<config::Declarations> decls_;
  /// Loads decls_ afresh (to evaluate them again); their problems go to `diags`.
  Status LoadDeclarationsAgain(Diagnostics& diags);
  bool decls_consumed_ = false;  ///< decls_ were evaluated (and partly freed: release_raw_specs)
  std::unique_ptr<config::Environment> env_;
  std::string stateless_env_;  ///< env_ was evaluated without state for this environment
  std::optional<state::Environment> env_row_;
  std::optional<plan::PriorState> prior_;
  bool prior_partial_ = false;  ///< prior_ holds the digests of some rows only
  std::map<std::string, std::string> secrets_file_values_;
  bool secrets_loaded_ = false;
  std::map<std::string, plan::StoredAttrs, std::less<>> applied_;
  std::unique_ptr<config::EvalCache> cache_;  ///< read for decls_ (nullptr: none)
  EvalCacheStats cache_stats_;
};

}  // namespace driftless::engine
