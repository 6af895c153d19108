#include "config/evaluate.h"

#include <algorithm>
#include <unordered_map>

#include "base/hash.h"
#include "base/strings.h"
#include "config/loader.h"
#include "value/render.h"
#include "yaml/yaml.h"

namespace driftless::config {

using value::Value;

namespace {

SourcePos Pos(const std::string& file, const Value& v) { return {file, v.line(), v.column()}; }

// Converts interpolated values to the field's type where the conversion is lossless
// (Terraform-like): 644 -> "644" for a string field, "3" -> 3 for an integer field.
bool Coerce(const provider::FieldSchema& f, Value& v) {
  if (v.is_unknown()) return true;
  bool sensitive = v.sensitive();
  uint32_t line = v.line(), col = v.column();
  switch (f.type) {
    case provider::FieldType::kString:
      if (v.is_string()) return true;
      if (!v.is_scalar() || v.is_null()) return false;
      v = Value::String(v.ScalarText());
      break;
    case provider::FieldType::kBool:
      if (v.is_bool()) return true;
      if (v.is_string() && (v.as_string() == "true" || v.as_string() == "false")) {
        v = Value::Bool(v.as_string() == "true");
        break;
      }
      return false;
    case provider::FieldType::kInt: {
      if (v.is_int()) return true;
      if (!v.is_string() || v.as_string().empty()) return false;
      char* end = nullptr;
      long long i = std::strtoll(v.as_string().c_str(), &end, 10);
      if (*end != '\0') return false;
      v = Value::Int(i);
      break;
    }
    case provider::FieldType::kList:
      return v.is_list();
    case provider::FieldType::kMap:
      return v.is_object();
    case provider::FieldType::kAny:
      return true;
  }
  v.set_sensitive(sensitive);
  v.set_mark(line, col);
  return true;
}

// True when a value holds a `${...}` expression anywhere.
bool HoldsExpression(const Value& v) {
  if (v.is_string())
    return HasInterpolation(v.as_string()) || v.as_string().find("$${") != std::string::npos;
  if (v.is_list()) {
    for (const auto& c : v.as_list())
      if (HoldsExpression(c)) return true;
  } else if (v.is_object()) {
    for (const auto& [k, c] : v.as_object())
      if (HoldsExpression(c)) return true;
  }
  return false;
}

}  // namespace

std::optional<Value> ResourceAttribute(const Resource& r, const provider::ResourceSchema& schema,
                                       const Value& spec, const Value* attrs,
                                       const std::string& attr) {
  std::string head = attr.substr(0, attr.find('.'));
  if (head == "name" && attr == "name") {
    if (const Value* n = spec.Find("name")) return *n;
    return Value::String(r.name);
  }
  const provider::FieldSchema* f = schema.Find(head);
  if (f == nullptr) return std::nullopt;
  if (!f->computed) {
    const Value* v = spec.FindPath(attr);
    if (v != nullptr) return *v;
    if (spec.ContainsUnknown()) return Value::Unknown();
    if (attrs != nullptr) {
      if (const Value* a = attrs->FindPath(attr)) return *a;
    }
    return Value::Null();
  }
  if (attrs == nullptr) return Value::Unknown();
  if (const Value* v = attrs->FindPath(attr)) return *v;
  return Value::Unknown();
}

Environment::Environment(Declarations& decls, const provider::Registry& registry,
                         const source::Source& source, EvalOptions options)
    : decls_(decls), registry_(registry), source_(source), options_(std::move(options)) {}

provider::Target* Environment::TargetOf(const Resource& r) const { return TargetNamed(r.target); }

provider::Target* Environment::TargetNamed(std::string_view name) const {
  auto it = targets_.find(name);
  return it == targets_.end() ? nullptr : it->second.get();
}

const provider::ResourceSchema* Environment::SchemaOf(const Resource& r) const {
  return registry_.FindKind(r.kind);
}

int Environment::IndexOf(std::string_view address) const {
  auto it = std::lower_bound(decls_.resources.begin(), decls_.resources.end(), address,
                             [](const Resource& r, std::string_view a) { return r.address < a; });
  if (it == decls_.resources.end() || it->address != address) return -1;
  return static_cast<int>(it - decls_.resources.begin());
}

std::string Environment::SpecHash(const Value& spec) const {
  if (spec.ContainsUnknown()) return "";
  // Protect copies the whole spec; without a secret in it, the copy would equal the spec.
  if (!spec.ContainsSensitive()) return Sha256Hex(value::ToJson(spec)).substr(0, 32);
  return Sha256Hex(value::ToJson(value::Protect(spec, options_.salt))).substr(0, 32);
}

const Value& Environment::CacheableSpec(size_t index) const {
  auto it = before_hierarchy_.find(index);
  return it != before_hierarchy_.end() ? it->second.first : resources_[index].spec;
}

const std::string& Environment::CacheableSpecHash(size_t index) const {
  auto it = before_hierarchy_.find(index);
  return it != before_hierarchy_.end() ? it->second.second : resources_[index].spec_hash;
}

void Environment::KeepOnlyTargets() {
  before_hierarchy_.clear();
  std::vector<EvaluatedResource>().swap(resources_);
  graph_ = graph::Graph();
  vars_ = Value();
}

void Environment::SetSalt(std::string salt) {
  options_.salt = std::move(salt);
  for (auto& er : resources_) er.spec_hash = SpecHash(er.spec);
}

const Value* Environment::AppliedAttrs(const std::string& address) const {
  int i = IndexOf(address);
  if (i < 0 || !options_.applied_attrs) return nullptr;
  const EvaluatedResource& er = resources_[static_cast<size_t>(i)];
  if (er.spec_hash.empty()) return nullptr;
  return options_.applied_attrs(address, er.spec_hash);
}

Scope Environment::MakeScope(
    const std::function<std::optional<Value>(const std::string&, const std::string&)>& res) const {
  Scope scope;
  scope.env = options_.env;
  scope.branch = options_.branch;
  scope.commit = options_.commit;
  scope.project = decls_.project.name;
  scope.vars = &vars_;
  scope.secret = options_.secret;
  scope.secrets_required = options_.secrets_required;
  scope.resource = res;
  return scope;
}

bool Environment::EvaluateOne(size_t index, const Scope& scope, Diagnostics& diags) {
  EvaluatedResource& er = resources_[index];
  const Resource& r = *er.decl;
  if (r.spec_released) {
    diags.Error(r.pos, r.address + ": internal error: evaluated twice after its spec was released");
    return false;
  }
  if (r.spec_evaluated && index < decls_.resources.size() && &decls_.resources[index] == &r) {
    // From the evaluation cache: evaluated in this very context from the same bytes.
    Resource& cached = decls_.resources[index];
    er.spec = std::move(cached.spec);
    cached.spec = Value();
    er.spec_hash = std::move(cached.cached_spec_hash);
    return true;
  }
  const std::string& file = r.pos.file;
  const provider::ResourceSchema* schema = registry_.FindKind(r.kind);
  size_t before = diags.ErrorCount();
  // A spec without `${...}` that is released after this evaluation is taken rather than copied
  // (Interpolate would copy it unchanged); positions then come from the taken spec.
  const bool take = options_.release_raw_specs && index < decls_.resources.size() &&
                    &decls_.resources[index] == &r && !HoldsExpression(r.spec);
  Value spec =
      take ? std::move(decls_.resources[index].spec) : Interpolate(r.spec, scope, file, diags);
  const Value& raw = take ? spec : r.spec;
  for (auto& [key, v] : spec.as_object()) {
    const provider::FieldSchema* f = schema->Find(key);
    if (f == nullptr) continue;  // `name`, or already reported by the loader
    if (!Coerce(*f, v)) {
      diags.Error(Pos(file, v), "spec." + key + " of " + r.address + " must be a " +
                                    std::string(provider::FieldTypeName(f->type)) + ", not a " +
                                    std::string(value::TypeName(v.type())));
    }
    if (f->sensitive) v.set_sensitive(true);
  }
  if (diags.ErrorCount() > before) return false;
  provider::Target* target = TargetOf(r);
  if (target == nullptr) return false;  // reported when targets were configured
  if (!spec.ContainsUnknown()) {
    std::vector<provider::FieldError> errors;
    Resource* own = index < decls_.resources.size() && &decls_.resources[index] == &r
                        ? &decls_.resources[index]
                        : nullptr;
    auto read_file = [this, own](const std::string& path) {
      if (own != nullptr) own->reads_source = true;  // never cached (EvalCache)
      return source_.ReadFile(path);
    };
    Result<Value> normalized = target->Normalize(r.kind, spec, read_file, errors);
    for (const auto& e : errors) {
      const Value* at = raw.FindPath(e.field);
      SourcePos pos = at ? Pos(file, *at) : r.pos;
      diags.Error(pos, r.address + ": spec." + e.field + ": " + e.message);
    }
    if (!normalized.ok()) {
      if (errors.empty()) diags.Error(r.pos, r.address + ": " + normalized.error().message);
      return false;
    }
    if (!errors.empty()) return false;
    Value out = std::move(*normalized);
    if (out.is_object()) out.as_object().shrink_to_fit();  // kept for the whole run
    // Keep secrets flagged through normalisation; computed values derived from a secret are
    // secret too.
    bool any_sensitive = spec.ContainsSensitive();
    if (out.is_object()) {
      for (auto& [key, v] : out.as_object()) {
        const Value* in = spec.Find(key);
        const provider::FieldSchema* f = schema->Find(key);
        if ((in != nullptr && in->ContainsSensitive()) || (f && f->sensitive) ||
            (any_sensitive && f && f->computed)) {
          v.set_sensitive(true);
        }
      }
      // Derived fields (a `source:` file's content) are secret when their origin is.
    }
    er.spec = std::move(out);
  } else {
    er.spec = std::move(spec);
  }
  er.spec_hash = SpecHash(er.spec);
  return true;
}

std::unique_ptr<Environment> Environment::Evaluate(Declarations& decls,
                                                   const provider::Registry& registry,
                                                   const source::Source& source,
                                                   EvalOptions options, Diagnostics& diags) {
  std::unique_ptr<Environment> env(new Environment(decls, registry, source, std::move(options)));
  const std::string& name = env->options_.env;

  // The environment's rules: the one its branch (or name) matched, then its bases.
  Result<EnvironmentMatch> match = MatchName(decls.project, name);
  if (!env->options_.branch.empty()) {
    Result<std::optional<EnvironmentMatch>> by_branch =
        MatchBranch(decls.project, env->options_.branch);
    if (!by_branch.ok()) {
      match = by_branch.error();
    } else if (*by_branch && (*by_branch)->name == name) {
      match = std::move(**by_branch);
    }
  }
  if (!match.ok()) {
    diags.Error({decls.project.file, 0, 0}, match.error().message);
    return nullptr;
  }
  env->match_ = std::move(*match);
  const auto& rules = env->match_.rules;  // most specific first

  // Variables: the project's, then each environment of the chain from the farthest base to this
  // one, with its rule's vars and then its vars/<name>.yaml; --var last.
  env->vars_ = decls.project.vars.is_object() ? decls.project.vars : Value::MakeObject();
  Sha256 hash;
  hash.Update(decls.hash);
  auto add_vars_file = [&](const std::string& env_name) {
    std::string vars_file = "vars/" + env_name + ".yaml";
    Result<std::string> bytes = source.ReadFile(vars_file);
    if (!bytes.ok()) return;
    hash.Update(vars_file);
    hash.Update(std::string_view("\0", 1));
    hash.Update(*bytes);
    std::vector<yaml::YamlDocument> docs = yaml::ParseYaml(*bytes, vars_file, diags);
    if (docs.empty()) return;
    if (!docs[0].root.is_object()) {
      diags.Error(Pos(vars_file, docs[0].root), vars_file + " must be a mapping of variables");
      return;
    }
    for (const auto& [k, v] : docs[0].root.as_object()) env->vars_.Set(k, v);
  };
  for (size_t i = rules.size(); i-- > 0;) {
    if (rules[i]->vars.is_object()) {
      for (const auto& [k, v] : rules[i]->vars.as_object()) env->vars_.Set(k, v);
    }
    if (i > 0) add_vars_file(env->match_.bases[i - 1]);
  }
  add_vars_file(name);
  // Policy defaults: the project's, then the rules' (bases first), under each resource's own.
  Policy env_policy = decls.project.defaults;
  for (auto it = rules.rbegin(); it != rules.rend(); ++it) {
    Diagnostics ignored;  // reported when the project file was loaded
    env_policy =
        MergePolicy(env_policy, ParsePolicy((*it)->policy, decls.project.file, Policy(), ignored));
  }
  for (Resource& r : decls.resources) r.policy = MergePolicy(env_policy, r.policy);
  for (const auto& [k, v] : env->options_.cli_vars) {
    env->vars_.Set(k, Value::String(v));
    hash.Update(k + "=" + v + "\n");
  }
  env->hash_ = hash.HexDigest();

  // Targets.
  Sha256 context;  // CacheContext: what a cached file's evaluation depended on besides its bytes
  context.Update("context 1\n" + name + "\n" + env->options_.salt + "\n");
  Scope target_scope = env->MakeScope(nullptr);
  for (const TargetDecl& t : decls.project.targets) {
    const provider::Provider* p = registry.FindProvider(t.provider);
    if (p == nullptr) {
      diags.Error(t.pos, "target " + t.name + ": unknown provider \"" + t.provider + "\"");
      continue;
    }
    size_t before = diags.ErrorCount();
    Value merged = t.settings;
    for (auto it = rules.rbegin(); it != rules.rend(); ++it) {
      const Value* over = (*it)->targets.is_object() ? (*it)->targets.Find(t.name) : nullptr;
      if (over == nullptr) continue;
      if (!over->is_object()) {
        diags.Error(Pos(decls.project.file, *over),
                    "targets." + t.name + " of an environment rule must be a mapping of settings");
        continue;
      }
      for (const auto& [k, v] : over->as_object()) merged.Set(k, v);
    }
    Value settings = Interpolate(merged, target_scope, decls.project.file, diags);
    if (diags.ErrorCount() > before) continue;
    std::vector<std::string> known;
    for (const auto& f : p->TargetSchema()) known.push_back(f.name);
    bool ok = true;
    for (const auto& [k, v] : settings.as_object()) {
      if (std::find(known.begin(), known.end(), k) == known.end()) {
        diags.Error(Pos(decls.project.file, v),
                    "unknown setting \"" + k + "\" for " + t.provider + " target " + t.name,
                    "settings: " + Join(known, ", "));
        ok = false;
      }
    }
    for (const auto& f : p->TargetSchema()) {
      if (f.required && settings.Find(f.name) == nullptr) {
        diags.Error(t.pos, t.provider + " target " + t.name + " needs `" + f.name + ":`");
        ok = false;
      }
    }
    if (!ok) continue;
    if (settings.ContainsUnknown()) {
      diags.Error(t.pos, "target " + t.name + " uses a value that is not known",
                  "targets may use ${env}, ${var.X} and ${secret.X}");
      continue;
    }
    Result<std::unique_ptr<provider::Target>> configured = p->Configure(t.name, settings);
    if (!configured.ok()) {
      diags.Error(t.pos, "target " + t.name + ": " + configured.error().message);
      continue;
    }
    (*configured)->SetContext({decls.project.name, name});
    env->targets_.emplace(t.name, std::move(*configured));
    context.Update(t.name + "\n" + t.provider + "\n" + value::ToJson(settings) + "\n");
  }
  env->cache_context_ = context.HexDigest();
  for (const Resource& r : decls.resources) {
    if (r.spec_evaluated && env->options_.cache_context != env->cache_context_) {
      env->cache_mismatch_ = true;
      return env;
    }
  }

  // The graph: explicit depends_on and references.
  const size_t n = decls.resources.size();
  env->resources_.resize(n);
  env->graph_ = graph::Graph(n);
  std::vector<char> missing_reference(n, 0);
  for (size_t i = 0; i < n; ++i) {
    const Resource& r = decls.resources[i];
    EvaluatedResource& er = env->resources_[i];
    er.decl = &r;
    std::vector<size_t> deps;
    if (r.depends_on_released) {
      diags.Error(r.pos, r.address +
                             ": internal error: evaluated twice after its depends_on was "
                             "released");
    }
    for (const std::string& d : r.depends_on) {
      int j = env->IndexOf(d);
      if (j >= 0) deps.push_back(static_cast<size_t>(j));
    }
    std::vector<Reference> refs;
    if (!r.spec_evaluated) CollectResourceReferences(r.spec, r.pos.file, refs, diags);
    for (const Reference& ref : refs) {
      int j = env->IndexOf(ref.address);
      if (j < 0) {
        diags.Error(
            ref.pos,
            r.address + " refers to ${" + ref.text + "}, but " + ref.address + " is not declared",
            "declare " + ref.address + " or correct the reference (KIND.NAME.ATTR)");
        missing_reference[i] = 1;
        continue;
      }
      deps.push_back(static_cast<size_t>(j));
    }
    std::sort(deps.begin(), deps.end());
    deps.erase(std::unique(deps.begin(), deps.end()), deps.end());
    for (size_t j : deps) env->graph_.AddEdge(j, i);
  }
  if (auto cycle = env->graph_.FindCycle()) {
    std::vector<std::string> names;
    for (size_t node : *cycle) names.push_back(decls.resources[node].address);
    diags.Error(decls.resources[cycle->front()].pos, graph::FormatCycle(names),
                "break the cycle by removing a reference or a depends_on");
    // The nodes on and after the cycle are left out of the order below; everything else is
    // still evaluated so that all problems are reported together.
  }

  // Interpolate in dependency order so references see their targets' final specs.
  Environment* self = env.get();
  auto resolve = [self](const std::string& address,
                        const std::string& attr) -> std::optional<Value> {
    int j = self->IndexOf(address);
    if (j < 0) return std::nullopt;
    const EvaluatedResource& dep = self->resources_[static_cast<size_t>(j)];
    const Value* attrs = nullptr;
    if (self->options_.applied_attrs && !dep.spec_hash.empty())
      attrs = self->options_.applied_attrs(address, dep.spec_hash);
    return ResourceAttribute(*dep.decl, *self->registry_.FindKind(dep.decl->kind), dep.spec, attrs,
                             attr);
  };
  Scope scope = env->MakeScope(resolve);
  std::vector<char> failed(n, 0);
  for (size_t i = 0; i < n; ++i) failed[i] = missing_reference[i] || decls.resources[i].invalid;
  for (size_t i : env->graph_.TopologicalOrder()) {
    if (failed[i]) continue;
    bool dep_failed = false;
    for (size_t j : env->graph_.Predecessors(i)) dep_failed |= failed[j] != 0;
    if (dep_failed || !env->EvaluateOne(i, scope, diags)) {
      failed[i] = 1;
    } else if (env->options_.release_raw_specs && !HoldsExpression(decls.resources[i].spec)) {
      decls.resources[i].spec = Value();
      decls.resources[i].spec_released = true;
    }
  }
  if (env->options_.release_raw_specs && !env->options_.keep_for_cache) {
    // The graph holds them now (as EvaluatedResource::deps).
    for (Resource& r : decls.resources) {
      if (r.depends_on.empty()) continue;
      std::vector<std::string>().swap(r.depends_on);
      r.depends_on_released = true;
    }
  }
  if (!diags.HasErrors()) env->AddHierarchy(diags);
  return env;
}

void Environment::AddHierarchy(Diagnostics& diags) {
  // The path of each resource whose provider reports nesting, and per target path -> resource
  // (looked up only, never walked in order), the keys viewing `paths`, which is not resized.
  std::vector<std::string> paths(resources_.size());
  std::unordered_map<std::string_view, size_t> per_target;  // target -> resources with a path
  for (size_t i = 0; i < resources_.size(); ++i) {
    const EvaluatedResource& er = resources_[i];
    provider::Target* t = TargetOf(*er.decl);
    if (t == nullptr || er.spec.ContainsUnknown()) continue;
    paths[i] = t->HierarchyPath(er.decl->kind, er.spec);
    if (!paths[i].empty()) ++per_target[er.decl->target];
  }
  if (per_target.empty()) return;
  using PathMap = std::unordered_map<std::string_view, size_t>;
  std::unordered_map<std::string_view, PathMap> by_path;
  for (const auto& [target, count] : per_target) by_path[target].reserve(count);
  for (size_t i = 0; i < resources_.size(); ++i) {
    if (!paths[i].empty()) by_path[resources_[i].decl->target].emplace(paths[i], i);
  }
  std::vector<std::vector<std::string>> descendants(resources_.size());
  std::vector<std::pair<size_t, size_t>> added;  // (parent, child)
  for (size_t i = 0; i < resources_.size(); ++i) {
    const std::string& path = paths[i];
    if (path.empty()) continue;
    const PathMap& in_target = by_path.find(resources_[i].decl->target)->second;
    bool nearest = true;
    for (size_t slash = path.rfind('/'); slash != std::string::npos && slash > 0;
         slash = path.rfind('/', slash - 1)) {
      auto it = in_target.find(std::string_view(path).substr(0, slash));
      if (it == in_target.end()) continue;
      descendants[it->second].push_back(path.substr(slash + 1));
      if (nearest) {
        added.emplace_back(it->second, i);
        nearest = false;
      }
    }
  }
  if (added.empty()) return;  // no resource is inside another: nothing to order or to add
  graph::Graph with_hierarchy = graph_;
  for (auto [parent, child] : added) with_hierarchy.AddEdge(parent, child);
  if (auto cycle = with_hierarchy.FindCycle()) {
    std::vector<std::string> names;
    for (size_t node : *cycle) names.push_back(resources_[node].decl->address);
    diags.Warning(
        resources_[cycle->front()].decl->pos,
        "folder nesting is not used to order resources: with it, " + graph::FormatCycle(names));
  } else {
    graph_ = std::move(with_hierarchy);
  }
  for (size_t i = 0; i < resources_.size(); ++i) {
    if (descendants[i].empty()) continue;
    EvaluatedResource& er = resources_[i];
    std::sort(descendants[i].begin(), descendants[i].end());
    Value spec = TargetOf(*er.decl)->WithDescendants(er.decl->kind, er.spec, descendants[i]);
    if (spec != er.spec) {
      if (options_.keep_for_cache)
        before_hierarchy_.emplace(i, std::make_pair(er.spec, er.spec_hash));
      er.spec = std::move(spec);
      er.spec_hash = SpecHash(er.spec);
    }
  }
}

Result<Value> Environment::Reevaluate(
    size_t index, const std::function<const Value*(const std::string&)>& attrs) {
  auto resolve = [this, &attrs](const std::string& address,
                                const std::string& attr) -> std::optional<Value> {
    int j = IndexOf(address);
    if (j < 0) return std::nullopt;
    const EvaluatedResource& dep = resources_[static_cast<size_t>(j)];
    return ResourceAttribute(*dep.decl, *registry_.FindKind(dep.decl->kind), dep.spec,
                             attrs(address), attr);
  };
  Diagnostics diags;
  Scope scope = MakeScope(resolve);
  if (!EvaluateOne(index, scope, diags) || diags.HasErrors()) {
    return MakeError(diags.ToString());
  }
  if (resources_[index].spec.ContainsUnknown()) {
    return MakeError(resources_[index].decl->address +
                     ": a referenced value is still unknown after its dependencies were applied");
  }
  return resources_[index].spec;
}

}  // namespace driftless::config
