#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "base/diagnostics.h"
#include "config/evaluate.h"
#include "config/loader.h"
#include "plan/planner.h"
#include "plan/stored.h"
#include "provider/provider.h"
#include "source/source.h"
#include "state/state_store.h"

namespace driftless::cli {

/// Flags shared by the commands.
struct GlobalFlags {
  std::string dir = ".";     ///< the repository folder
  std::string state;         ///< --state; default DRIFTLESS_STATE or <dir>/.driftless/state.db
  std::string secrets_file;  ///< NAME=VALUE lines
  bool json = false;
  bool no_color = false;
  int parallelism = 8;
  double lock_timeout = 0;                  ///< seconds
  std::map<std::string, std::string> vars;  ///< --var NAME=VALUE
};

/// Everything a command works with, loaded in pipeline order.
class Workspace {
 public:
  explicit Workspace(GlobalFlags flags);

  /// The state store (opened on first use).
  Result<state::StateStore*> State();
  /// Declarations from the source; problems go to diags.
  config::Declarations& LoadDeclarations(Diagnostics& diags);
  /// Evaluates `env` (state's salt and applied attributes included when `with_state`).
  Result<config::Environment*> Evaluate(const std::string& env, bool secrets_required,
                                        bool with_state, Diagnostics& diags);
  /// Reads the environment's state for planning (MakePlan reads more of it).
  Result<plan::PriorState*> Prior(const std::string& env);
  /// The environment's row in state (created when missing).
  Result<const state::Environment*> EnvironmentRow(const std::string& env);
  /// Plans `env`; diags gets declaration errors.
  Result<plan::Plan> Plan(const std::string& env, bool destroy, Diagnostics& diags,
                          bool list_unchanged = false);

  /// True when the state exists and knows `env` (without creating either).
  bool StateHasEnvironment(const std::string& env);
  /// The environment evaluated last (by Evaluate or Plan), or nullptr.
  config::Environment* environment() const { return env_.get(); }
  const GlobalFlags& flags() const { return flags_; }
  const provider::Registry& registry() const { return registry_; }
  const source::Source& source() const { return *source_; }
  std::string StatePath() const;

 private:
  std::optional<std::string> Secret(const std::string& name);
  /// Evaluation options without state.
  config::EvalOptions Options(const std::string& env, bool secrets_required);

  GlobalFlags flags_;
  provider::Registry registry_;
  std::unique_ptr<source::Source> source_;
  std::unique_ptr<state::StateStore> store_;
  std::unique_ptr<config::Declarations> decls_;
  bool decls_consumed_ = false;  ///< decls_ were evaluated (and partly freed: release_raw_specs)
  std::unique_ptr<config::Environment> env_;
  std::string stateless_env_;  ///< env_ was evaluated without state for this environment
  std::optional<state::Environment> env_row_;
  std::optional<plan::PriorState> prior_;
  std::map<std::string, std::string> secrets_file_values_;
  bool secrets_loaded_ = false;
  std::map<std::string, plan::StoredAttrs, std::less<>> applied_;
};

}  // namespace driftless::cli
