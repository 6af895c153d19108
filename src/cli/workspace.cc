#include "cli/workspace.h"

#include <sys/stat.h>

#include <cstdlib>

#include "base/file_util.h"
#include "base/strings.h"
#include "base/trace.h"
#include "plan/stored.h"
#include "providers/builtin.h"
#include "state/sqlite/sqlite_state_store.h"

namespace driftless::cli {

Workspace::Workspace(GlobalFlags flags) : flags_(std::move(flags)) {
  providers::RegisterBuiltinProviders(registry_);
  source_ = std::make_unique<source::DirectorySource>(flags_.dir);
}

std::string Workspace::StatePath() const {
  if (!flags_.state.empty()) return flags_.state;
  if (const char* env = std::getenv("DRIFTLESS_STATE"); env != nullptr && *env) return env;
  return flags_.dir + "/.driftless/state.db";
}

Result<state::StateStore*> Workspace::State() {
  if (store_) return store_.get();
  std::string path = StatePath();
  if (StartsWith(path, "postgres://") || StartsWith(path, "postgresql://")) {
    return MakeError("state " + path +
                     ": the PostgreSQL state backend is not part of this build "
                     "yet; use a SQLite path");
  }
  auto opened = state::SqliteStateStore::Open(path);
  if (!opened.ok()) return opened.error();
  store_ = std::move(*opened);
  return store_.get();
}

config::Declarations& Workspace::LoadDeclarations(Diagnostics& diags) {
  if (!decls_) {
    TraceSpan span("load declarations");
    decls_ = std::make_unique<config::Declarations>(
        config::LoadDeclarations(*source_, registry_, diags));
  }
  return *decls_;
}

std::optional<std::string> Workspace::Secret(const std::string& name) {
  if (const char* v = std::getenv(config::SecretEnvName(name).c_str())) return std::string(v);
  if (!secrets_loaded_ && !flags_.secrets_file.empty()) {
    secrets_loaded_ = true;
    if (Result<std::string> text = ReadFileToString(flags_.secrets_file); text.ok()) {
      for (const auto& line : Split(*text, '\n')) {
        std::string_view l = Trim(line);
        if (l.empty() || l[0] == '#') continue;
        size_t eq = l.find('=');
        if (eq == std::string_view::npos) continue;
        secrets_file_values_[std::string(Trim(l.substr(0, eq)))] = std::string(l.substr(eq + 1));
      }
    }
  }
  auto it = secrets_file_values_.find(name);
  if (it != secrets_file_values_.end()) return it->second;
  return std::nullopt;
}

Result<const state::Environment*> Workspace::EnvironmentRow(const std::string& env) {
  if (env_row_ && env_row_->name == env) return &*env_row_;
  Result<state::StateStore*> store = State();
  if (!store.ok()) return store.error();
  Result<state::Environment> row = (*store)->GetOrCreateEnvironment(env);
  if (!row.ok()) return row.error();
  env_row_ = std::move(*row);
  return &*env_row_;
}

Result<plan::PriorState*> Workspace::Prior(const std::string& env) {
  if (prior_ && prior_->environment.name == env) return &*prior_;
  Result<const state::Environment*> env_row = EnvironmentRow(env);
  if (!env_row.ok()) return env_row.error();
  TraceSpan span("read state");
  Result<plan::PriorState> prior = plan::ReadPriorState(*store_, **env_row);
  if (!prior.ok()) return prior.error();
  prior_ = std::move(*prior);
  return &*prior_;
}

config::EvalOptions Workspace::Options(const std::string& env, bool secrets_required) {
  config::EvalOptions options;
  options.env = env;
  options.branch = env;
  options.secrets_required = secrets_required;
  options.cli_vars = flags_.vars;
  options.secret = [this](const std::string& name) { return Secret(name); };
  options.salt = "validate";         // replaced by the environment's salt when state is used
  options.release_raw_specs = true;  // a workspace evaluates its declarations once
  return options;
}

bool Workspace::StateHasEnvironment(const std::string& env) {
  struct stat st {};
  if (!store_ && stat(StatePath().c_str(), &st) != 0) return false;
  Result<state::StateStore*> store = State();
  if (!store.ok()) return false;
  Result<std::optional<state::Environment>> row = (*store)->GetEnvironment(env);
  return row.ok() && row->has_value();
}

Result<config::Environment*> Workspace::Evaluate(const std::string& env, bool secrets_required,
                                                 bool with_state, Diagnostics& diags) {
  config::Declarations& decls = LoadDeclarations(diags);
  if (diags.HasErrors()) {
    // Evaluate what loaded, without state, so that every problem of the run is reported.
    if (!decls.project.name.empty() && !decls_consumed_) {
      decls_consumed_ = true;
      config::Environment::Evaluate(decls, registry_, *source_, Options(env, secrets_required),
                                    diags);
    }
    return MakeError("invalid declarations");
  }
  if (with_state && !StateHasEnvironment(env)) {
    // Nothing may be written for declarations that are not valid: evaluate them before the
    // state (file and environment) is created. Nothing was applied yet, so the result is the
    // same as with state but for the salt of the secrets' hashes.
    if (stateless_env_ != env || !env_) {
      Result<config::Environment*> checked = Evaluate(env, secrets_required, false, diags);
      if (!checked.ok()) return checked;
    }
    Result<const state::Environment*> row = EnvironmentRow(env);
    if (!row.ok()) return row.error();
    env_->SetSalt((*row)->salt);
    return env_.get();
  }
  config::EvalOptions options = Options(env, secrets_required);
  if (with_state) {
    // Only the environment's row (its salt) is read before evaluation: the resources' rows
    // come after it, so that the two never take memory at the same time. References to
    // computed attributes read single rows while evaluating (one thread); later (apply, under
    // the applier's lock) they are found among the rows the plan read (it reads those of the
    // dependencies of every spec that holds unknowns).
    Result<const state::Environment*> row = EnvironmentRow(env);
    if (!row.ok()) return row.error();
    options.salt = (*row)->salt;
    options.applied_attrs = [this, env](const std::string& address,
                                        const std::string& spec_hash) -> const value::Value* {
      auto it = applied_.find(address);
      if (it == applied_.end()) {
        std::optional<state::ResourceState> single;
        const state::ResourceState* found = nullptr;
        if (prior_ && prior_->environment.name == env) {
          const auto& rs = prior_->resources;
          auto at = std::lower_bound(
              rs.begin(), rs.end(), address,
              [](const state::ResourceState& r, const std::string& a) { return r.address < a; });
          if (at != rs.end() && at->address == address) found = &*at;
        } else if (auto got = store_->GetResource(env, address); got.ok() && *got) {
          single = std::move(**got);
          found = &*single;
        }
        if (found == nullptr || found->spec_hash != spec_hash) return nullptr;
        Result<plan::StoredAttrs> decoded = plan::DecodeStored(found->attrs_json);
        if (!decoded.ok()) return nullptr;
        it = applied_.emplace(address, std::move(*decoded)).first;
      }
      return &it->second.attrs;
    };
  }
  TraceSpan span("evaluate");
  stateless_env_.clear();
  config::Declarations* to_evaluate = &decls;
  if (decls_consumed_) {
    // An evaluation frees what it no longer needs of the declarations (release_raw_specs). To
    // evaluate again (the environment was created in state meanwhile, by another process), load
    // them again; their problems, if any, were reported the first time.
    env_.reset();
    Diagnostics again;
    decls_ = std::make_unique<config::Declarations>(
        config::LoadDeclarations(*source_, registry_, again));
    if (again.HasErrors()) {
      diags.Append(again);
      return MakeError("invalid declarations");
    }
    to_evaluate = decls_.get();
  }
  decls_consumed_ = true;
  env_ =
      config::Environment::Evaluate(*to_evaluate, registry_, *source_, std::move(options), diags);
  if (diags.HasErrors() || !env_) return MakeError("invalid declarations");
  if (!with_state) stateless_env_ = env;
  return env_.get();
}

Result<plan::Plan> Workspace::Plan(const std::string& env, bool destroy, Diagnostics& diags,
                                   bool list_unchanged) {
  Result<config::Environment*> evaluated = Evaluate(env, true, true, diags);
  if (!evaluated.ok()) return evaluated.error();
  Result<plan::PriorState*> prior = Prior(env);
  if (!prior.ok()) return prior.error();
  plan::PlanOptions options;
  options.parallelism = flags_.parallelism;
  options.destroy = destroy;
  options.list_unchanged = list_unchanged;
  TraceSpan span("plan (live reads, comparison)");
  Result<plan::Plan> plan = plan::MakePlan(**evaluated, **prior, options);
  if (plan.ok()) plan->source = source_->Describe();
  return plan;
}

}  // namespace driftless::cli
