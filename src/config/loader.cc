#include "config/loader.h"

#include <algorithm>
#include <condition_variable>
#include <iterator>
#include <mutex>
#include <thread>

#include "base/hash.h"
#include "base/memory.h"
#include "base/strings.h"
#include "base/trace.h"
#include "config/environments.h"
#include "config/interpolate.h"
#include "yaml/yaml.h"

namespace driftless::config {

using value::Value;

std::string_view DriftName(Policy::Drift d) {
  switch (d) {
    case Policy::Drift::kEnforce:
      return "enforce";
    case Policy::Drift::kIgnore:
      return "ignore";
    case Policy::Drift::kReport:
      return "report";
  }
  return "report";
}

Policy MergePolicy(const Policy& base, const Policy& over) {
  Policy out = base;
  auto has = [&](int bit) { return (over.set & (1u << bit)) != 0; };
  if (has(0)) out.drift = over.drift;
  if (has(1)) out.ignore = over.ignore;
  if (has(2)) out.create_only = over.create_only;
  if (has(3)) out.prevent_destroy = over.prevent_destroy;
  if (has(4)) out.adopt = over.adopt;
  if (has(5)) out.paused = over.paused;
  if (has(6)) out.upgrade = over.upgrade;
  if (has(7)) {
    out.step_field = over.step_field;
    out.step_by = over.step_by;
  }
  out.set = over.set;
  return out;
}

const TargetDecl* Project::FindTarget(std::string_view name) const {
  for (const auto& t : targets)
    if (t.name == name) return &t;
  return nullptr;
}

const Resource* Declarations::Find(std::string_view address) const {
  auto it = std::lower_bound(resources.begin(), resources.end(), address,
                             [](const Resource& r, std::string_view a) { return r.address < a; });
  if (it == resources.end() || it->address != address) return nullptr;
  return &*it;
}

namespace {

SourcePos Pos(const std::string& file, const Value& v) { return {file, v.line(), v.column()}; }

size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1])});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

// Checks that `v` is an object whose keys are all in `allowed`; reports the others.
bool CheckKeys(const Value& v, const std::string& file, std::string_view what,
               const std::vector<std::string>& allowed, Diagnostics& diags) {
  if (!v.is_object()) {
    diags.Error(Pos(file, v), std::string(what) + " must be a mapping, not a " +
                                  std::string(value::TypeName(v.type())));
    return false;
  }
  bool ok = true;
  for (const auto& [k, child] : v.as_object()) {
    if (std::find(allowed.begin(), allowed.end(), k) != allowed.end()) continue;
    std::string hint = DidYouMean(k, allowed);
    if (hint.empty()) hint = "known keys: " + Join(allowed, ", ");
    diags.Error(Pos(file, child), "unknown key \"" + k + "\" in " + std::string(what), hint);
    ok = false;
  }
  return ok;
}

bool ExpectString(const Value* v, const std::string& file, std::string_view what,
                  Diagnostics& diags, std::string& out) {
  if (v == nullptr) return false;
  if (!v->is_string()) {
    diags.Error(Pos(file, *v), std::string(what) + " must be a string, not a " +
                                   std::string(value::TypeName(v->type())));
    return false;
  }
  out = v->as_string();
  return true;
}

bool ExpectBool(const Value* v, const std::string& file, std::string_view what, Diagnostics& diags,
                bool& out) {
  if (v == nullptr) return false;
  if (!v->is_bool()) {
    diags.Error(Pos(file, *v), std::string(what) + " must be true or false");
    return false;
  }
  out = v->as_bool();
  return true;
}

std::vector<std::string> StringList(const Value* v, const std::string& file, std::string_view what,
                                    Diagnostics& diags) {
  std::vector<std::string> out;
  if (v == nullptr) return out;
  if (!v->is_list()) {
    diags.Error(Pos(file, *v), std::string(what) + " must be a list of strings");
    return out;
  }
  for (const auto& item : v->as_list()) {
    std::string s;
    if (ExpectString(&item, file, what, diags, s)) out.push_back(std::move(s));
  }
  return out;
}

bool ValidName(std::string_view name) {
  if (name.empty() || name.size() > 200) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

Value EmptyObject() { return Value::MakeObject(); }

void ParseProject(const Value& root, const std::string& file, Project& p, Diagnostics& diags) {
  static const std::vector<std::string> kKeys = {"project", "include",  "vars",   "environments",
                                                 "targets", "defaults", "notify", "retention"};
  if (!CheckKeys(root, file, "driftless.yaml", kKeys, diags)) {
    if (!root.is_object()) return;
  }
  if (!ExpectString(root.Find("project"), file, "project", diags, p.name)) {
    if (root.Find("project") == nullptr)
      diags.Error({file, root.line(), root.column()}, "driftless.yaml has no `project:` name",
                  "add `project: <name>` at the top");
  }
  p.include = StringList(root.Find("include"), file, "include", diags);
  p.vars = EmptyObject();
  if (const Value* vars = root.Find("vars")) {
    if (vars->is_object())
      p.vars = *vars;
    else
      diags.Error(Pos(file, *vars), "vars must be a mapping of names to values");
  }
  if (const Value* envs = root.Find("environments")) {
    if (!envs->is_list()) {
      diags.Error(Pos(file, *envs), "environments must be a list of rules");
    } else {
      static const std::vector<std::string> kRuleKeys = {
          "branch", "name", "base", "protected", "approvals", "remediation",
          "sync",   "ttl",  "vars", "policy",    "targets"};
      for (const auto& r : envs->as_list()) {
        if (!CheckKeys(r, file, "an environment rule", kRuleKeys, diags) && !r.is_object())
          continue;
        EnvironmentRule rule;
        rule.pos = Pos(file, r);
        if (!ExpectString(r.Find("branch"), file, "branch", diags, rule.branch) &&
            r.Find("branch") == nullptr)
          diags.Error(rule.pos, "an environment rule needs `branch:`");
        ExpectString(r.Find("name"), file, "name", diags, rule.name);
        ExpectString(r.Find("base"), file, "base", diags, rule.base);
        ExpectBool(r.Find("protected"), file, "protected", diags, rule.is_protected);
        if (const Value* a = r.Find("approvals")) {
          if (a->is_int() && a->as_int() >= 0 && a->as_int() <= 100)
            rule.approvals = static_cast<int>(a->as_int());
          else
            diags.Error(Pos(file, *a), "approvals must be a whole number from 0 to 100");
        }
        if (ExpectString(r.Find("sync"), file, "sync", diags, rule.sync) && rule.sync != "manual" &&
            rule.sync != "auto")
          diags.Error(Pos(file, *r.Find("sync")), "sync must be `manual` or `auto`");
        if (ExpectString(r.Find("remediation"), file, "remediation", diags, rule.remediation) &&
            rule.remediation != "approve" && rule.remediation != "auto")
          diags.Error(Pos(file, *r.Find("remediation")), "remediation must be `approve` or `auto`");
        if (ExpectString(r.Find("ttl"), file, "ttl", diags, rule.ttl) && !ParseTtl(rule.ttl))
          diags.Error(Pos(file, *r.Find("ttl")), "ttl must be a duration like 72h, 30m or 7d");
        if (const Value* t = r.Find("targets")) {
          if (t->is_object())
            rule.targets = *t;
          else
            diags.Error(Pos(file, *t),
                        "targets of an environment rule must be a mapping of "
                        "target names to the settings they override");
        }
        rule.vars = EmptyObject();
        if (const Value* v = r.Find("vars")) {
          if (v->is_object())
            rule.vars = *v;
          else
            diags.Error(Pos(file, *v), "vars must be a mapping");
        }
        if (const Value* pol = r.Find("policy")) {
          rule.policy = *pol;
          ParsePolicy(*pol, file, Policy(), diags);  // reports mistakes once, at load
        }
        p.environments.push_back(std::move(rule));
      }
    }
  }
  if (const Value* targets = root.Find("targets")) {
    if (!targets->is_object()) {
      diags.Error(Pos(file, *targets), "targets must be a mapping of names to settings");
    } else {
      for (const auto& [name, t] : targets->as_object()) {
        TargetDecl decl;
        decl.name = name;
        decl.pos = Pos(file, t);
        if (!ValidName(name)) {
          diags.Error(decl.pos,
                      "target name \"" + name + "\" may only use letters, digits, _ and -");
        }
        if (!t.is_object()) {
          diags.Error(decl.pos, "target " + name + " must be a mapping with `provider:`");
          continue;
        }
        if (!ExpectString(t.Find("provider"), file, "provider", diags, decl.provider) &&
            t.Find("provider") == nullptr) {
          diags.Error(decl.pos, "target " + name + " has no `provider:`",
                      "for example `provider: file`");
        }
        decl.settings = t;
        decl.settings.Erase("provider");
        p.targets.push_back(std::move(decl));
      }
    }
  }
  if (const Value* defaults = root.Find("defaults")) {
    if (CheckKeys(*defaults, file, "defaults", {"policy"}, diags)) {
      if (const Value* pol = defaults->Find("policy")) p.default_policy = *pol;
    }
  }
  if (const Value* notify = root.Find("notify")) p.notify = *notify;
  if (const Value* retention = root.Find("retention")) {
    if (CheckKeys(*retention, file, "retention", {"notifications"}, diags) ||
        retention->is_object()) {
      std::string text;
      if (ExpectString(retention->Find("notifications"), file, "notifications", diags, text)) {
        std::optional<int64_t> seconds = ParseTtl(text);
        if (seconds && *seconds > 0) {
          p.notification_retention = *seconds;
        } else {
          diags.Error(Pos(file, *retention->Find("notifications")),
                      "retention.notifications must be a duration like 7d, 72h or 30m");
        }
      }
    }
  }
  if (p.include.empty()) p.include = {"**/*.yaml", "**/*.yml"};
}

// Type-checks a declared spec value that holds no interpolation.
void CheckFieldType(const provider::FieldSchema& f, const Value& v, const std::string& file,
                    const std::string& where, Diagnostics& diags) {
  if (v.is_string() && HasInterpolation(v.as_string())) return;  // checked after interpolation
  bool ok = true;
  switch (f.type) {
    case provider::FieldType::kString:
      ok = v.is_scalar() && !v.is_null();
      break;
    case provider::FieldType::kBool:
      ok = v.is_bool();
      break;
    case provider::FieldType::kInt:
      ok = v.is_int();
      break;
    case provider::FieldType::kList:
      ok = v.is_list();
      break;
    case provider::FieldType::kMap:
      ok = v.is_object();
      break;
    case provider::FieldType::kAny:
      ok = true;
      break;
  }
  if (!ok) {
    diags.Error(Pos(file, v), "spec." + f.name + " of " + where + " must be a " +
                                  std::string(provider::FieldTypeName(f.type)) + ", not a " +
                                  std::string(value::TypeName(v.type())));
  }
}

void ParseResource(Value& doc, const std::string& file, const Project& project,
                   const provider::Registry& registry, const Policy& defaults,
                   std::vector<Resource>& out, Diagnostics& diags) {
  static const std::vector<std::string> kKeys = {"kind",   "name",       "target",    "spec",
                                                 "policy", "depends_on", "moved_from"};
  if (!CheckKeys(doc, file, "a resource document", kKeys, diags) && !doc.is_object()) return;
  const size_t errors_before = diags.ErrorCount();
  Resource r;
  r.pos = Pos(file, doc);
  const Value* kind = doc.Find("kind");
  const Value* name = doc.Find("name");
  if (kind == nullptr) {
    diags.Error(r.pos, "resource document has no `kind:`", "for example `kind: file.file`");
    return;
  }
  if (!ExpectString(kind, file, "kind", diags, r.kind)) return;
  r.pos = Pos(file, *kind);
  if (name == nullptr) {
    diags.Error(r.pos, "resource of kind " + r.kind + " has no `name:`");
    return;
  }
  if (!ExpectString(name, file, "name", diags, r.name)) return;
  if (!ValidName(r.name)) {
    diags.Error(Pos(file, *name),
                "resource name \"" + r.name + "\" may only use letters, digits, _ and -",
                "use spec.name for the object's real name");
    return;
  }
  r.address = r.kind + "/" + r.name;
  const provider::ResourceSchema* schema = registry.FindKind(r.kind);
  if (schema == nullptr) {
    std::vector<std::string> kinds = registry.Kinds();
    std::string hint = DidYouMean(r.kind, kinds);
    if (hint.empty()) hint = "known kinds: " + Join(kinds, ", ");
    diags.Error(Pos(file, *kind), "unknown kind \"" + r.kind + "\"", hint);
    r.invalid = true;  // kept, so that references to it are not reported as undeclared
    out.push_back(std::move(r));
    return;
  }
  std::string provider_name = r.kind.substr(0, r.kind.find('.'));
  if (const Value* t = doc.Find("target")) {
    ExpectString(t, file, "target", diags, r.target);
    const TargetDecl* decl = project.FindTarget(r.target);
    if (decl == nullptr) {
      std::vector<std::string> names;
      for (const auto& td : project.targets) names.push_back(td.name);
      std::string hint = DidYouMean(r.target, names);
      if (hint.empty()) hint = "declare it under `targets:` in driftless.yaml";
      diags.Error(Pos(file, *t), "unknown target \"" + r.target + "\" for " + r.address, hint);
    } else if (decl->provider != provider_name) {
      diags.Error(Pos(file, *t), "target \"" + r.target + "\" is a " + decl->provider +
                                     " target; " + r.address + " needs a " + provider_name +
                                     " target");
    }
  } else {
    const TargetDecl* only = nullptr;
    int count = 0;
    for (const auto& td : project.targets) {
      if (td.provider == provider_name) {
        only = &td;
        ++count;
      }
    }
    if (count == 1) {
      r.target = only->name;
    } else {
      diags.Error(r.pos, r.address + " has no `target:`",
                  count == 0 ? "declare a " + provider_name + " target in driftless.yaml"
                             : "several " + provider_name + " targets exist; name one");
    }
  }
  r.spec = EmptyObject();
  if (Value* spec = doc.Find("spec")) {
    if (!spec->is_object()) {
      diags.Error(Pos(file, *spec), "spec of " + r.address + " must be a mapping");
    } else {
      auto field_names = [&] {
        std::vector<std::string> names;
        for (const auto& f : schema->fields)
          if (!f.computed) names.push_back(f.name);
        names.push_back("name");
        return names;
      };
      for (const auto& [key, v] : spec->as_object()) {
        const provider::FieldSchema* f = schema->Find(key);
        if (key == "name") {
          if (!v.is_string())
            diags.Error(Pos(file, v), "spec.name of " + r.address + " must be a string");
          continue;
        }
        if (f == nullptr) {
          std::string hint = DidYouMean(key, field_names());
          if (hint.empty()) hint = "fields of " + r.kind + ": " + Join(field_names(), ", ");
          diags.Error(Pos(file, v), "unknown field \"" + key + "\" in spec of " + r.address, hint);
          continue;
        }
        if (f->computed) {
          diags.Error(Pos(file, v), "spec." + key + " of " + r.address +
                                        " is computed by the provider and cannot be declared");
          continue;
        }
        CheckFieldType(*f, v, file, r.address, diags);
      }
      for (const auto& f : schema->fields) {
        if (f.required && spec->Find(f.name) == nullptr) {
          diags.Error(Pos(file, *spec), r.address + " is missing required field spec." + f.name);
        }
      }
      // Copied, not moved: the document may come from a parse thread, and nothing such a
      // thread allocates should outlive the documents (see LoadDeclarations).
      r.spec = *spec;
    }
  } else {
    for (const auto& f : schema->fields) {
      if (f.required) diags.Error(r.pos, r.address + " is missing required field spec." + f.name);
    }
  }
  if (const Value* deps = doc.Find("depends_on")) {
    if (!deps->is_list()) {
      diags.Error(Pos(file, *deps), "depends_on must be a list of addresses (kind/name)");
    } else {
      for (const Value& d : deps->as_list()) {
        std::string address;
        if (!ExpectString(&d, file, "depends_on", diags, address)) continue;
        r.depends_on.push_back(std::move(address));
        r.depends_on_pos.push_back(Pos(file, d));
      }
    }
  }
  r.policy = defaults;
  r.policy.set = 0;  // only what the document itself says counts as set
  if (const Value* pol = doc.Find("policy")) r.policy = ParsePolicy(*pol, file, r.policy, diags);
  if (const Value* mv = doc.Find("moved_from")) {
    if (ExpectString(mv, file, "moved_from", diags, r.moved_from) && !ValidName(r.moved_from)) {
      diags.Error(Pos(file, *mv),
                  "moved_from must be the previous name of this resource (same kind)");
    }
  }
  r.invalid = diags.ErrorCount() > errors_before;
  out.push_back(std::move(r));
}

struct ParsedFile {
  std::string path;
  std::string bytes;
  std::vector<yaml::YamlDocument> docs;
  Diagnostics diags;
  Status read_status;
  std::string bytes_hash;  // SHA-256 of bytes
  std::string section;     // its EvalCache entry, when `cached`
  bool cached = false;
  bool parsed = false;              // guarded by the loader's mutex
  std::vector<Resource> resources;  // made from docs, until they join the declarations
};

}  // namespace

std::string DidYouMean(std::string_view word, const std::vector<std::string>& candidates) {
  size_t best = std::string::npos;
  std::string best_word;
  for (const auto& c : candidates) {
    size_t d = EditDistance(word, c);
    if (d < best) {
      best = d;
      best_word = c;
    }
  }
  if (best == std::string::npos || best > std::max<size_t>(2, word.size() / 3)) return "";
  return "did you mean \"" + best_word + "\"?";
}

Policy ParsePolicy(const Value& v, const std::string& file, Policy base, Diagnostics& diags) {
  static const std::vector<std::string> kKeys(kPolicyKeys.begin(), kPolicyKeys.end());
  if (v.is_null()) return base;
  if (!CheckKeys(v, file, "policy", kKeys, diags)) {
    if (!v.is_object()) return base;
  }
  for (size_t i = 0; i < kPolicyKeys.size(); ++i) {
    if (v.Find(kPolicyKeys[i]) != nullptr) base.set |= static_cast<uint16_t>(1u << i);
  }
  std::string s;
  if (ExpectString(v.Find("drift"), file, "policy.drift", diags, s)) {
    if (s == "enforce")
      base.drift = Policy::Drift::kEnforce;
    else if (s == "report")
      base.drift = Policy::Drift::kReport;
    else if (s == "ignore")
      base.drift = Policy::Drift::kIgnore;
    else
      diags.Error(Pos(file, *v.Find("drift")), "policy.drift must be enforce, report or ignore");
  }
  if (v.Find("ignore")) base.ignore = StringList(v.Find("ignore"), file, "policy.ignore", diags);
  ExpectBool(v.Find("create_only"), file, "policy.create_only", diags, base.create_only);
  ExpectBool(v.Find("prevent_destroy"), file, "policy.prevent_destroy", diags,
             base.prevent_destroy);
  ExpectBool(v.Find("adopt"), file, "policy.adopt", diags, base.adopt);
  ExpectBool(v.Find("paused"), file, "policy.paused", diags, base.paused);
  if (ExpectString(v.Find("upgrade"), file, "policy.upgrade", diags, s)) {
    if (s == "direct")
      base.upgrade = Policy::Upgrade::kDirect;
    else if (s == "stepwise")
      base.upgrade = Policy::Upgrade::kStepwise;
    else
      diags.Error(Pos(file, *v.Find("upgrade")), "policy.upgrade must be direct or stepwise");
  }
  if (const Value* step = v.Find("step")) {
    if (CheckKeys(*step, file, "policy.step", {"field", "by"}, diags)) {
      ExpectString(step->Find("field"), file, "policy.step.field", diags, base.step_field);
      if (ExpectString(step->Find("by"), file, "policy.step.by", diags, base.step_by) &&
          base.step_by != "major" && base.step_by != "minor" && base.step_by != "patch")
        diags.Error(Pos(file, *step->Find("by")), "policy.step.by must be major, minor or patch");
    }
  }
  return base;
}

namespace {

// Reads and parses driftless.yaml into *project; false when there is none or it is not one
// YAML document (reported). Its bytes go to *bytes.
bool ReadProject(const source::Source& src, Project* project, std::string* bytes,
                 Diagnostics& diags) {
  const std::string& project_file = project->file;
  Result<std::string> project_bytes = src.ReadFile(project_file);
  if (!project_bytes.ok()) {
    diags.Error({project_file, 0, 0}, "no driftless.yaml in " + src.Describe(),
                "run driftless in a repository with a driftless.yaml, or pass --dir");
    return false;
  }
  *bytes = std::move(*project_bytes);
  std::vector<yaml::YamlDocument> project_docs = yaml::ParseYaml(*bytes, project_file, diags);
  if (project_docs.size() != 1) {
    if (!diags.HasErrors())
      diags.Error({project_file, 1, 1}, "driftless.yaml must hold exactly one YAML document");
    return false;
  }
  ParseProject(project_docs[0].root, project_file, *project, diags);
  project->defaults = ParsePolicy(project->default_policy, project_file, Policy(), diags);
  return true;
}

}  // namespace

Project LoadProject(const source::Source& src, Diagnostics& diags) {
  Project project;
  std::string bytes;
  ReadProject(src, &project, &bytes, diags);
  return project;
}

Declarations LoadDeclarations(const source::Source& src, const provider::Registry& registry,
                              Diagnostics& diags, const EvalCache* cache) {
  Declarations decls;
  decls.revision = src.Revision();
  Sha256 hash;
  const std::string project_file = decls.project.file;
  std::string project_bytes;
  if (!ReadProject(src, &decls.project, &project_bytes, diags)) return decls;
  hash.Update(project_file);
  hash.Update(std::string_view("\0", 1));
  hash.Update(project_bytes);
  decls.project_hash = Sha256Hex(project_bytes);
  if (cache != nullptr && (cache->size() == 0 || cache->project_hash() != decls.project_hash))
    cache = nullptr;
  const Policy& defaults = decls.project.defaults;

  Result<std::vector<std::string>> files = src.ListFiles();
  if (!files.ok()) {
    diags.Error({}, files.error().message);
    return decls;
  }
  std::vector<ParsedFile> parsed;
  for (const std::string& path : *files) {
    if (path == project_file || StartsWith(path, "vars/")) continue;
    bool included = false;
    for (const auto& glob : decls.project.include) {
      if (GlobMatch(glob, path)) {
        included = true;
        break;
      }
    }
    if (included) parsed.push_back(ParsedFile{path, {}, {}, {}, {}, {}, {}});
  }
  // Files are read and parsed on several threads and turned into resources on this one, in
  // path order, each as soon as it is parsed; its documents are freed right away. At most
  // `window` files are parsed ahead of that, so the documents of a large repository (several
  // times the size of the resources made from them) never all exist at once, and each parse
  // thread reuses its own memory for its next file: memory freed in another thread's allocator
  // arena would not be reused by this one.
  const size_t threads =
      std::min<size_t>(parsed.size() / 8 + 1, std::max(1u, std::thread::hardware_concurrency()));
  const size_t window = threads;
  std::mutex mu;
  std::condition_variable cv;
  size_t next = 0;       // the next file to parse
  size_t converted = 0;  // files turned into resources
  auto parse_next = [&](std::unique_lock<std::mutex>& lock) {
    ParsedFile& pf = parsed[next++];
    lock.unlock();
    if (Result<std::string> bytes = src.ReadFile(pf.path); bytes.ok()) {
      pf.bytes = std::move(*bytes);
      pf.bytes_hash = Sha256Hex(pf.bytes);
      pf.cached = cache != nullptr && cache->Lookup(pf.path, pf.bytes_hash, &pf.section);
      if (!pf.cached) pf.docs = yaml::ParseYaml(pf.bytes, pf.path, pf.diags);
    } else {
      pf.read_status = bytes.error();
    }
    lock.lock();
    pf.parsed = true;
    cv.notify_all();
  };
  auto may_parse = [&] { return next < parsed.size() && next < converted + window; };
  std::vector<std::thread> pool;
  size_t documents = 0;
  {
    TraceSpan span("read and parse " + std::to_string(parsed.size()) + " files");
    for (size_t t = 1; t < threads; ++t) {
      pool.emplace_back([&] {
        std::unique_lock<std::mutex> lock(mu);
        while (true) {
          cv.wait(lock, [&] { return next >= parsed.size() || may_parse(); });
          if (next >= parsed.size()) return;
          parse_next(lock);
        }
      });
    }
    for (size_t i = 0; i < parsed.size(); ++i) {
      ParsedFile& pf = parsed[i];
      {
        std::unique_lock<std::mutex> lock(mu);
        while (!pf.parsed) {
          if (may_parse()) {
            parse_next(lock);  // rather than wait: file i is taken, a later one may not be
          } else {
            cv.wait(lock);
          }
        }
      }
      hash.Update(pf.path);
      hash.Update(std::string_view("\0", 1));
      hash.Update(pf.bytes);
      hash.Update(std::string_view("\0", 1));
      DeclaredFile file{pf.path, pf.bytes_hash, false, false};
      if (!pf.read_status.ok()) {
        diags.Error({pf.path, 0, 0}, pf.read_status.error().message);
      } else {
        if (pf.cached) {
          file.from_cache = EvalCache::Materialize(pf.section, pf.path, pf.resources);
          file.clean = file.from_cache;
          std::string().swap(pf.section);
          if (!file.from_cache) pf.docs = yaml::ParseYaml(pf.bytes, pf.path, pf.diags);
        }
        if (!file.from_cache) {
          const size_t diags_before = diags.items().size();
          diags.Append(pf.diags);
          pf.resources.reserve(pf.docs.size());
          for (auto& doc : pf.docs) {
            ParseResource(doc.root, pf.path, decls.project, registry, defaults, pf.resources,
                          diags);
          }
          file.clean = diags.items().size() == diags_before;
        }
        documents += pf.resources.size();
      }
      decls.files.push_back(std::move(file));
      std::vector<yaml::YamlDocument>().swap(pf.docs);
      std::string().swap(pf.bytes);
      {
        std::lock_guard<std::mutex> lock(mu);
        converted = i + 1;
      }
      cv.notify_all();
    }
    for (auto& t : pool) t.join();
  }
  TraceSpan span("resource documents");
  decls.hash = hash.HexDigest();
  auto by_path = [](const DeclaredFile& a, const DeclaredFile& b) { return a.path < b.path; };
  if (!std::is_sorted(decls.files.begin(), decls.files.end(), by_path))
    std::sort(decls.files.begin(), decls.files.end(), by_path);
  decls.resources.reserve(documents);  // exact: a Resource is large, growth would copy them all
  for (ParsedFile& pf : parsed) {
    std::move(pf.resources.begin(), pf.resources.end(), std::back_inserter(decls.resources));
    std::vector<Resource>().swap(pf.resources);
  }
  std::vector<ParsedFile>().swap(parsed);
  // The parsing threads' heaps now hold only freed documents and file bytes; the resources live
  // on. Give those pages back before the evaluation and the plan allocate more (10,000
  // resources: about 2 MB of the run's peak).
  ReturnFreeMemory();

  auto by_address = [](const Resource& a, const Resource& b) { return a.address < b.address; };
  if (!std::is_sorted(decls.resources.begin(), decls.resources.end(), by_address)) {
    std::stable_sort(decls.resources.begin(), decls.resources.end(), by_address);
  }
  for (size_t i = 1; i < decls.resources.size(); ++i) {
    const Resource& a = decls.resources[i - 1];
    const Resource& b = decls.resources[i];
    if (a.address == b.address) {
      diags.Error(
          b.pos,
          "duplicate resource " + b.address + " (first declared at " + a.pos.ToString() + ")",
          "kind/name must be unique in an environment");
    }
  }
  for (Resource& r : decls.resources) {
    for (size_t i = 0; i < r.depends_on.size(); ++i) {
      const std::string& d = r.depends_on[i];
      if (decls.Find(d) == nullptr) {
        diags.Error(r.depends_on_pos[i], r.address + " depends on " + d + ", which is not declared",
                    "depends_on takes addresses of the form kind/name");
        r.invalid = true;
      }
    }
    if (!r.moved_from.empty() && decls.Find(r.kind + "/" + r.moved_from) != nullptr) {
      diags.Error(r.pos, r.address + " is moved from " + r.kind + "/" + r.moved_from +
                             ", which is still declared");
    }
    std::vector<SourcePos>().swap(r.depends_on_pos);  // only needed for the message above
  }
  return decls;
}

}  // namespace driftless::config
