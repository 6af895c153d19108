#include "engine/workspace.h"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <span>

#include "base/file_util.h"
#include "base/strings.h"
#include "base/trace.h"
#include "plan/stored.h"
#include "providers/builtin.h"
#include "state/open.h"

namespace driftless::engine {

Workspace::Workspace(WorkspaceOptions options) : options_(std::move(options)) {
  providers::RegisterBuiltinProviders(registry_);
  source_ = std::make_unique<source::DirectorySource>(options_.dir);
  selection_.env = "default";
}

Result<source::GitRepository*> Workspace::Repo() {
  if (repo_opened_) return repo_.get();
  repo_opened_ = true;
  std::string location = options_.repo;
  if (location.empty()) {
    if (!source::GitRepository::IsRepository(options_.dir)) return nullptr;  // a plain folder
    location = options_.dir;
  }
  source::GitRepository::Options options;
  options.fetch = options_.fetch;
  Result<std::unique_ptr<source::GitRepository>> opened =
      source::GitRepository::Open(location, options);
  if (!opened.ok()) return opened.error();
  repo_ = std::move(*opened);
  std::string tree = repo_->WorkTree();
  if (options_.repo.empty() && !tree.empty()) {
    // The project may live in a subfolder of the repository (a monorepo).
    char* dir_real = realpath(options_.dir.c_str(), nullptr);
    char* tree_real = realpath(tree.c_str(), nullptr);
    if (dir_real != nullptr && tree_real != nullptr) {
      std::string d = dir_real, t = tree_real;
      while (t.size() > 1 && t.back() == '/') t.pop_back();
      if (d.size() > t.size() && d.compare(0, t.size(), t) == 0 && d[t.size()] == '/')
        prefix_ = d.substr(t.size() + 1);
    }
    std::free(dir_real);
    std::free(tree_real);
  }
  return repo_.get();
}

Result<std::unique_ptr<source::Source>> Workspace::CommitSource(const std::string& commit) {
  Result<std::unique_ptr<source::Source>> snap = repo_->Snapshot(commit);
  if (!snap.ok() || prefix_.empty()) return snap;
  return std::unique_ptr<source::Source>(new source::SubfolderSource(std::move(*snap), prefix_));
}

Result<std::optional<config::EnvironmentMatch>> Workspace::MapBranch(
    const std::string& branch, const source::CommitInfo& head) {
  auto it = projects_.find(head.id);
  if (it == projects_.end()) {
    Result<std::unique_ptr<source::Source>> src = CommitSource(head.id);
    if (!src.ok()) return src.error();
    Diagnostics diags;
    auto project = std::make_unique<config::Project>(config::LoadProject(**src, diags));
    if (diags.HasErrors()) {
      return MakeError("branch " + branch + " (commit " + head.short_id +
                       "): driftless.yaml is not valid:\n" + diags.ToString());
    }
    it = projects_.emplace(head.id, std::move(project)).first;
  }
  return config::MatchBranch(*it->second, branch);
}

Result<const std::vector<BranchEnvironment>*> Workspace::BranchEnvironments() {
  if (branch_envs_) return &*branch_envs_;
  Result<source::GitRepository*> repo = Repo();
  if (!repo.ok()) return repo.error();
  std::vector<BranchEnvironment> out;
  if (*repo != nullptr) {
    Result<std::vector<source::BranchInfo>> branches = (*repo)->Branches();
    if (!branches.ok()) return branches.error();
    for (auto& b : *branches) {
      Result<std::optional<config::EnvironmentMatch>> m = MapBranch(b.name, b.head);
      if (!m.ok()) {
        // One broken branch must not hide the others: reported when that branch is used.
        branch_errors_[b.name] = m.error().message;
        continue;
      }
      if (*m) out.push_back(BranchEnvironment{std::move(b), std::move(**m)});
    }
  }
  branch_envs_ = std::move(out);
  return &*branch_envs_;
}

Result<std::string> Workspace::AppliedCommit(const std::string& env) {
  Result<state::StateStore*> store = State();
  if (!store.ok()) return store.error();
  Result<std::vector<state::ApplyRecord>> applies = (*store)->ListApplies(env, 1000);
  if (!applies.ok()) return applies.error();
  for (const auto& a : *applies) {
    if (a.kind == "apply" && a.status == "succeeded" && !a.commit.empty()) return a.commit;
  }
  return std::string();
}

Status Workspace::UseCommit(const source::CommitInfo& commit) {
  Result<std::unique_ptr<source::Source>> src = CommitSource(commit.id);
  if (!src.ok()) return src.error();
  source_ = std::move(*src);
  selection_.commit = commit;
  selection_.worktree = false;
  decls_.reset();
  cache_.reset();
  env_.reset();
  stateless_env_.clear();
  env_row_.reset();
  prior_.reset();
  applied_.clear();
  return Status::Ok();
}

Status Workspace::Select(const std::string& env_arg, bool prefer_worktree) {
  // Every branch was read to find this one: a workspace kept for one environment (a served
  // watch, a run) does not keep the whole repository's branches (a server watching hundreds
  // of environments would hold each list once per watch).
  struct Forget {
    Workspace& ws;
    ~Forget() {
      ws.branch_envs_.reset();
      ws.branch_errors_.clear();
      ws.projects_.clear();
    }
  } forget{*this};
  Result<source::GitRepository*> repo_or = Repo();
  if (!repo_or.ok()) return repo_or.error();
  source::GitRepository* repo = *repo_or;
  if (repo == nullptr) {
    if (!options_.ref.empty() || options_.worktree) {
      return MakeError(std::string(options_.worktree ? "--worktree" : "--ref") + " needs a Git " +
                       "repository, and " + options_.dir + " is not inside one");
    }
    selection_.env = env_arg.empty() ? "default" : env_arg;
    return Status::Ok();
  }
  Selection sel;
  std::optional<source::CommitInfo> ref_commit;
  bool ref_is_branch = false;
  if (!options_.ref.empty()) {
    Result<source::CommitInfo> c = repo->Resolve(options_.ref);
    if (!c.ok()) return c.error();
    ref_commit = *c;
    Result<std::vector<source::BranchInfo>> branches = repo->Branches();
    if (!branches.ok()) return branches.error();
    for (const auto& b : *branches) ref_is_branch |= b.name == options_.ref;
  }
  Result<const std::vector<BranchEnvironment>*> envs = BranchEnvironments();
  if (!envs.ok()) return envs.error();
  if (env_arg.empty()) {
    std::string branch = ref_is_branch ? options_.ref : "";
    if (options_.ref.empty()) branch = repo->CurrentBranch().value_or("");
    if (branch.empty()) {
      return MakeError(options_.ref.empty()
                           ? "HEAD of " + repo->location() +
                                 " is not on a branch: name the environment (or --ref BRANCH)"
                           : "--ref " + options_.ref +
                                 " is not a branch: name the environment too");
    }
    const BranchEnvironment* found = nullptr;
    for (const auto& be : **envs) {
      if (be.branch.name == branch) found = &be;
    }
    if (found == nullptr && branch_errors_.count(branch)) {
      return MakeError("branch " + branch + ": " + branch_errors_[branch]);
    }
    if (found == nullptr) {
      return MakeError("branch " + branch +
                       " matches no environment rule of driftless.yaml (`environments:`): "
                       "add a rule for it, or name the environment");
    }
    sel.env = found->match.name;
    sel.branch = branch;
    sel.commit = found->branch.head;
    sel.why = "head of branch " + branch;
  } else {
    sel.env = env_arg;
    for (const auto& be : **envs) {
      if (be.match.name != env_arg) continue;
      // With --ref naming a branch, that branch wins over others mapping to the same name.
      if (sel.branch.empty() || be.branch.name == options_.ref) {
        sel.branch = be.branch.name;
        sel.commit = be.branch.head;
        sel.why = "head of branch " + be.branch.name;
      }
    }
    if (!sel.commit) {
      Result<std::string> applied = AppliedCommit(env_arg);
      if (!applied.ok()) return applied.error();
      if (!applied->empty()) {
        Result<source::CommitInfo> c = repo->Resolve(*applied);
        if (!c.ok()) return c.error();
        sel.commit = *c;
        sel.why = "last applied commit (no branch maps to " + env_arg + " any more)";
      } else if (!ref_commit) {
        std::vector<std::string> known;
        for (const auto& be : **envs) known.push_back(be.match.name + " (" + be.branch.name + ")");
        return MakeError("no branch of " + repo->location() + " maps to environment " + env_arg +
                         (known.empty() ? std::string(", and no branch maps to any environment")
                                        : "; environments: " + Join(known, ", ")));
      }
    }
  }
  if (ref_commit) {
    sel.commit = ref_commit;
    sel.why = "--ref " + options_.ref;
  }
  const bool worktree =
      options_.worktree || (prefer_worktree && options_.ref.empty() && !repo->WorkTree().empty());
  if (worktree) {
    std::string tree = repo->WorkTree();
    if (tree.empty()) return MakeError("--worktree: " + repo->location() + " has no working tree");
    if (!options_.ref.empty()) return MakeError("--worktree and --ref exclude each other");
    Result<source::CommitInfo> head = repo->Resolve("HEAD");
    sel.worktree = true;
    sel.why = "working tree (uncommitted changes included)";
    if (head.ok()) sel.commit = *head;
    std::string root = prefix_.empty() ? tree : tree + "/" + prefix_;
    source_ = std::make_unique<source::DirectorySource>(root, head.ok() ? head->id : "");
  } else {
    Result<std::unique_ptr<source::Source>> src = CommitSource(sel.commit->id);
    if (!src.ok()) return src.error();
    source_ = std::move(*src);
  }
  selection_ = std::move(sel);
  return Status::Ok();
}

std::string Workspace::StateDisplay() const { return state::DisplayLocation(StatePath()); }

std::string Workspace::StatePath() const {
  if (!options_.state.empty()) return options_.state;
  if (const char* env = std::getenv("DRIFTLESS_STATE"); env != nullptr && *env) return env;
  return options_.dir + "/.driftless/state.db";
}

Result<state::StateStore*> Workspace::State() {
  if (state_ != nullptr) return state_;
  auto opened = state::OpenStateStore(StatePath());
  if (!opened.ok()) return opened.error();
  store_ = std::move(*opened);
  state_ = store_.get();
  return state_;
}

config::Declarations& Workspace::LoadDeclarations(Diagnostics& diags) {
  if (!decls_) {
    TraceSpan span("load declarations");
    decls_ = std::make_unique<config::Declarations>(
        config::LoadDeclarations(*source_, registry_, diags, cache_.get()));
  }
  return *decls_;
}

std::string Workspace::EvalCachePath(const std::string& env) const {
  if (!options_.eval_cache) return "";
  if (const char* off = std::getenv("DRIFTLESS_EVAL_CACHE");
      off != nullptr && (std::string_view(off) == "off" || std::string_view(off) == "0"))
    return "";
  std::string state = StatePath();
  if (state::IsPostgresLocation(state)) return "";
  // The environment's name as a file name: letters, digits, '-', '_' and '.' as they are.
  std::string name;
  for (unsigned char c : env) {
    if (std::isalnum(c) || c == '-' || c == '_' || (c == '.' && !name.empty())) {
      name.push_back(static_cast<char>(c));
    } else {
      static const char* kHex = "0123456789abcdef";
      name += '%';
      name += kHex[c >> 4];
      name += kHex[c & 15];
    }
  }
  return state + ".eval-cache/" + name;
}

std::optional<std::string> Workspace::Secret(const std::string& name) {
  if (const char* v = std::getenv(config::SecretEnvName(name).c_str())) return std::string(v);
  if (!secrets_loaded_ && !options_.secrets_file.empty()) {
    secrets_loaded_ = true;
    if (Result<std::string> text = ReadFileToString(options_.secrets_file); text.ok()) {
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

Result<plan::PriorState*> Workspace::Prior(const std::string& env,
                                           const std::vector<std::string>* addresses) {
  if (addresses == nullptr && prior_ && !prior_partial_ && prior_->environment.name == env) {
    return &*prior_;
  }
  Result<const state::Environment*> env_row = EnvironmentRow(env);
  if (!env_row.ok()) return env_row.error();
  TraceSpan span("read state");
  Result<plan::PriorState> prior = plan::ReadPriorState(*state_, **env_row, addresses);
  if (!prior.ok()) return prior.error();
  prior_ = std::move(*prior);
  prior_partial_ = addresses != nullptr;
  return &*prior_;
}

config::EvalOptions Workspace::Options(const std::string& env, bool secrets_required) {
  config::EvalOptions options;
  options.env = env;
  options.branch = repo_ ? "" : env;  // a plain folder: ${branch} is the environment's name
  if (repo_ && env == selection_.env) {
    options.branch = selection_.branch;
    if (selection_.commit) options.commit = selection_.commit->short_id;
  }
  options.secrets_required = secrets_required;
  options.cli_vars = options_.vars;
  options.secret = [this](const std::string& name) { return Secret(name); };
  options.salt = "validate";         // replaced by the environment's salt when state is used
  options.release_raw_specs = true;  // a workspace evaluates its declarations once
  return options;
}

std::unique_ptr<config::Environment> Workspace::ReleaseEvaluation() {
  std::unique_ptr<config::Environment> targets = std::move(env_);
  if (targets) targets->KeepOnlyTargets();
  decls_.reset();
  cache_.reset();
  decls_consumed_ = false;
  stateless_env_.clear();
  env_row_.reset();
  prior_.reset();
  prior_partial_ = false;
  applied_.clear();
  if (state_ != nullptr) state_->ReleaseMemory();
  return targets;
}

bool Workspace::StateHasEnvironment(const std::string& env) {
  struct stat st {};
  // A SQLite file that does not exist yet knows nothing (and is not created here).
  if (state_ == nullptr && !state::IsPostgresLocation(StatePath()) &&
      stat(StatePath().c_str(), &st) != 0)
    return false;
  Result<state::StateStore*> store = State();
  if (!store.ok()) return false;
  Result<std::optional<state::Environment>> row = (*store)->GetEnvironment(env);
  return row.ok() && row->has_value();
}

Status Workspace::LoadDeclarationsAgain(Diagnostics& diags) {
  Diagnostics again;
  decls_ =
      std::make_unique<config::Declarations>(config::LoadDeclarations(*source_, registry_, again));
  if (!again.HasErrors()) return Status::Ok();
  diags.Append(again);
  return MakeError("invalid declarations");
}

Result<config::Environment*> Workspace::Evaluate(const std::string& env, bool secrets_required,
                                                 bool with_state, Diagnostics& diags) {
  const std::string cache_path = with_state ? EvalCachePath(env) : std::string();
  const std::string engine = cache_path.empty() ? std::string()
                             : options_.eval_cache_engine.empty()
                                 ? config::EvalCache::EngineIdentity("")
                                 : options_.eval_cache_engine;
  if (!decls_ && !cache_path.empty() && StateHasEnvironment(env)) {
    TraceSpan span("read the evaluation cache");
    cache_ = config::EvalCache::Open(cache_path, engine);
  }
  cache_stats_ = EvalCacheStats();
  config::Declarations* loaded = &LoadDeclarations(diags);
  if (diags.HasErrors() && cache_) {
    // Every problem of the run is reported below: evaluate declarations loaded without the
    // cache (a cached file has none, but others may refer to it). Their loading problems are
    // those already reported.
    cache_.reset();
    decls_.reset();
    Diagnostics again;
    loaded = &LoadDeclarations(again);
  }
  config::Declarations& decls = *loaded;
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
        } else if (auto got = state_->GetResource(env, address); got.ok() && *got) {
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
    if (Status loaded = LoadDeclarationsAgain(diags); !loaded.ok()) return loaded.error();
    to_evaluate = decls_.get();
  }
  decls_consumed_ = true;
  const bool cached = cache_ != nullptr;
  std::optional<config::EvalOptions> retry;
  if (!cache_path.empty()) {
    options.keep_for_cache = true;
    if (cached) {
      options.cache_context = cache_->context();
      retry = options;
    }
  }
  // With a cache, what the evaluation reports is kept apart until it is known not to stop for
  // another context (it would report the same again).
  Diagnostics cached_diags;
  env_ = config::Environment::Evaluate(*to_evaluate, registry_, *source_, std::move(options),
                                       cached ? cached_diags : diags);
  if (cached && !(env_ && env_->cache_mismatch())) diags.Append(cached_diags);
  if (env_ && env_->cache_mismatch()) {
    // The cached files were evaluated for another context (a target's settings, the salt):
    // load and evaluate everything afresh.
    cache_stats_.mismatch = true;
    env_.reset();
    if (Status loaded = LoadDeclarationsAgain(diags); !loaded.ok()) return loaded.error();
    to_evaluate = decls_.get();
    env_ =
        config::Environment::Evaluate(*to_evaluate, registry_, *source_, std::move(*retry), diags);
  }
  if (diags.HasErrors() || !env_) return MakeError("invalid declarations");
  if (!with_state) stateless_env_ = env;
  if (!cache_path.empty()) {
    cache_stats_.used = cached;
    cache_stats_.files = to_evaluate->files.size();
    for (const auto& f : to_evaluate->files) cache_stats_.reused += f.from_cache ? 1 : 0;
    TraceSpan span("evaluation cache: " + std::to_string(cache_stats_.reused) + " of " +
                   std::to_string(cache_stats_.files) + " files reused" +
                   (cache_stats_.mismatch ? " (another context)" : "") + "; write");
    // Best effort, as the stamps: a cache that is not written only means work next time.
    Result<config::EvalCache::WriteStats> written = config::EvalCache::Write(
        cache_path, engine, *to_evaluate, *env_, cache_stats_.mismatch ? nullptr : cache_.get());
    if (written.ok()) {
      cache_stats_.written = written->written;
      cache_stats_.written_files = written->files;
    }
  }
  cache_.reset();
  return env_.get();
}

Result<plan::Plan> Workspace::Plan(const std::string& env, const PlanRequest& request,
                                   Diagnostics& diags) {
  Result<config::Environment*> evaluated = MakeError("not evaluated");
  if (request.again && env_ && env_->name() == env) {
    prior_.reset();
    env_row_.reset();
    evaluated = env_.get();
  } else {
    evaluated = Evaluate(env, true, true, diags);
  }
  if (!evaluated.ok()) return evaluated.error();
  if (request.adjust) {
    Status adjusted = request.adjust(**evaluated);
    if (!adjusted.ok()) return adjusted.error();
  }
  // A plan of a few resources reads the state rows it can need, not all: theirs, those of the
  // names they moved from and those of their dependencies (for references to computed values).
  std::vector<std::string> rows;
  if (request.only != nullptr && !request.destroy) {
    const config::Environment& e = **evaluated;
    for (const std::string& address : *request.only) {
      rows.push_back(address);
      int i = e.IndexOf(address);
      if (i < 0) continue;
      const config::Resource& r = *e.resources()[static_cast<size_t>(i)].decl;
      if (!r.moved_from.empty()) rows.push_back(r.kind + "/" + r.moved_from);
      for (size_t d : e.graph().Predecessors(static_cast<size_t>(i))) {
        rows.push_back(e.resources()[d].decl->address);
      }
    }
  }
  Result<plan::PriorState*> prior = Prior(env, request.only != nullptr ? &rows : nullptr);
  if (!prior.ok()) return prior.error();
  plan::PlanOptions options;
  options.parallelism = options_.parallelism;
  options.destroy = request.destroy;
  options.list_unchanged = request.list_unchanged;
  options.only = request.only;
  options.use_stamps = !request.full;
  options.lean_creates = request.lean_creates;
  TraceSpan span("plan (live reads, comparison)");
  Result<plan::Plan> plan = plan::MakePlan(**evaluated, **prior, options);
  if (!plan.ok()) return plan;
  plan->source = source_->Describe();
  // Best effort: a stamp that is not recorded (the state is read-only, or busy with another
  // writer) only means that the object is read again next time.
  // In pieces, each its own transaction: the stamps of 100,000 files, with their addresses and
  // digests, would be a large block at the plan's peak.
  if (!plan->stamps.empty()) {
    TraceSpan record("record " + std::to_string(plan->stamps.size()) + " live stamps");
    constexpr size_t kPiece = 4096;
    std::span<plan::Plan::NewStamp> all(plan->stamps);
    for (size_t at = 0; at < all.size(); at += kPiece) {
      std::span<plan::Plan::NewStamp> piece = all.subspan(at, std::min(kPiece, all.size() - at));
      if (!state_->RecordLiveStamps(env, plan::LiveStamps(**prior, piece)).ok()) break;
    }
    std::vector<plan::Plan::NewStamp>().swap(plan->stamps);
  }
  return plan;
}

}  // namespace driftless::engine
