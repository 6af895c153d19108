#include "engine/steps.h"

#include <cstdlib>
#include <map>

#include "base/strings.h"
#include "plan/stored.h"

namespace driftless::engine {

using value::Value;

namespace {

// "v1.27.3" -> {1, 27, 3} with prefix "v"; false when not a dotted version of 1 to 3 numbers.
bool ParseVersion(const std::string& text, std::string* prefix, std::vector<int64_t>* parts) {
  size_t i = 0;
  if (i < text.size() && (text[i] == 'v' || text[i] == 'V')) ++i;
  *prefix = text.substr(0, i);
  parts->clear();
  for (const std::string& p : Split(text.substr(i), '.')) {
    if (p.empty() || p.size() > 9 || p.find_first_not_of("0123456789") != std::string::npos)
      return false;
    parts->push_back(std::atoll(p.c_str()));
  }
  return !parts->empty() && parts->size() <= 3;
}

std::string FormatVersion(const std::string& prefix, const std::vector<int64_t>& parts) {
  std::string out = prefix;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i) out += ".";
    out += std::to_string(parts[i]);
  }
  return out;
}

// The field's value in a spec or attributes object ("version" or "a.b"), or nullptr.
const Value* FieldOf(const Value& object, const std::string& field) {
  return object.is_object() ? object.FindPath(field) : nullptr;
}

Status SetField(Value& object, const std::string& field, Value v) {
  std::vector<std::string> path = Split(field, '.');
  Value* at = &object;
  for (size_t i = 0; i + 1 < path.size(); ++i) {
    at = at->is_object() ? at->Find(path[i]) : nullptr;
    if (at == nullptr) return MakeError("spec." + field + " is not set");
  }
  if (!at->is_object()) return MakeError("spec." + field + " is not inside a mapping");
  at->Set(path.back(), std::move(v));
  return Status::Ok();
}

// A value of the same type as `like` holding `text`.
Value LikeTyped(const Value& like, const std::string& text) {
  if (like.is_int() && text.find_first_not_of("0123456789") == std::string::npos)
    return Value::Int(std::atoll(text.c_str()));
  return Value::String(text);
}

// What the environment holds of a stepwise resource as the steps advance.
struct Current {
  std::string spec_hash;
  std::optional<Value> step_value;  // the policy.step field's value, when known
};

std::string StepField(const config::Policy& p) {
  return StartsWith(p.step_field, "spec.") ? p.step_field.substr(5) : p.step_field;
}

// Adds the version steps of every stepwise resource of `env` whose step field jumps, then (when
// `commit_step`) the commit's own step for the resources that change at it. Updates `current`.
void AddSteps(const config::Environment& env, const source::CommitInfo& commit, bool commit_step,
              std::map<std::string, Current, std::less<>>& current, std::vector<Step>& out) {
  Step own;
  own.commit = commit;
  // Version steps: index by position so that the n-th intermediate versions of several
  // resources go together.
  std::vector<Step> versions;
  for (const auto& er : env.resources()) {
    const config::Resource& r = *er.decl;
    if (r.policy.upgrade != config::Policy::Upgrade::kStepwise) continue;
    auto it = current.find(r.address);
    if (it == current.end()) continue;  // not applied yet: nothing to step from
    if (it->second.spec_hash == er.spec_hash) continue;
    std::string field = StepField(r.policy);
    const Value* to = field.empty() ? nullptr : FieldOf(er.spec, field);
    const std::optional<Value>& from = it->second.step_value;
    std::string transition = r.address;
    if (to != nullptr && from && from->is_scalar() && to->is_scalar()) {
      std::vector<std::string> vs =
          VersionSteps(from->ScalarText(), to->ScalarText(), r.policy.step_by);
      std::string prev = from->ScalarText();
      for (size_t i = 0; i + 1 < vs.size(); ++i) {
        if (versions.size() <= i) {
          versions.emplace_back();
          versions[i].commit = commit;
          versions[i].note = "intermediate version";
        }
        versions[i].addresses.insert(r.address);
        versions[i].overrides.push_back({r.address, field, LikeTyped(*to, vs[i])});
        versions[i].transitions.push_back(r.address + " " + r.policy.step_field + ": " + prev +
                                          " -> " + vs[i]);
        prev = vs[i];
      }
      transition += " " + r.policy.step_field + ": " + prev + " -> " + to->ScalarText();
    } else {
      transition += ": changes";
    }
    own.addresses.insert(r.address);
    own.transitions.push_back(transition);
    it->second.spec_hash = er.spec_hash;
    if (to != nullptr) it->second.step_value = *to;
  }
  for (auto& v : versions) out.push_back(std::move(v));
  if (commit_step && !own.addresses.empty()) out.push_back(std::move(own));
}

}  // namespace

std::vector<std::string> VersionSteps(const std::string& from, const std::string& to,
                                      const std::string& by) {
  std::string pf, pt;
  std::vector<int64_t> a, b;
  size_t k = by == "major" ? 0 : by == "minor" ? 1 : by == "patch" ? 2 : 9;
  if (!ParseVersion(from, &pf, &a) || !ParseVersion(to, &pt, &b) || k >= b.size() ||
      k >= a.size()) {
    return {to};
  }
  for (size_t i = 0; i < k; ++i) {
    if (a[i] != b[i]) return {to};  // a jump above the stepping component: nothing to synthesise
  }
  int64_t dir = b[k] > a[k] ? 1 : -1;
  std::vector<std::string> out;
  std::vector<int64_t> v(b.size(), 0);
  for (size_t i = 0; i < k; ++i) v[i] = b[i];
  for (int64_t x = a[k] + dir; x != b[k] && out.size() < 1000; x += dir) {
    v[k] = x;
    out.push_back(FormatVersion(pt, v));
  }
  out.push_back(to);
  return out;
}

Result<std::vector<Step>> PlanSteps(Workspace& ws, Diagnostics& diags) {
  std::vector<Step> steps;
  const Selection target = ws.selection();
  if (!target.commit || target.worktree) return steps;
  Result<source::GitRepository*> repo = ws.Repo();
  if (!repo.ok()) return repo.error();
  if (*repo == nullptr) return steps;
  Result<std::string> applied = ws.AppliedCommit(target.env);
  if (!applied.ok()) return applied.error();
  if (applied->empty()) return steps;  // a first apply goes straight to the commit

  // What is applied now, for the stepwise resources of the target commit and of every step.
  Result<state::StateStore*> store = ws.State();
  if (!store.ok()) return store.error();
  Result<std::vector<state::ResourceState>> rows = (*store)->ListResources(target.env);
  if (!rows.ok()) return rows.error();
  std::map<std::string, Current, std::less<>> current;
  for (const auto& row : *rows) current[row.address].spec_hash = row.spec_hash;

  std::vector<source::CommitInfo> between;
  if (*applied != target.commit->id) {
    Result<bool> ahead = (*repo)->IsAncestor(*applied, target.commit->id);
    if (!ahead.ok()) return ahead.error();
    if (*ahead) {
      Result<std::vector<source::CommitInfo>> range =
          (*repo)->FirstParentRange(*applied, target.commit->id);
      // Not on the first-parent chain (the applied commit came in through a merge): a jump.
      if (range.ok()) between = std::move(*range);
    }
  }
  if (!between.empty()) between.pop_back();  // the target itself is the final step

  auto load_step_values = [&](const config::Environment& env) {
    for (const auto& er : env.resources()) {
      const config::Resource& r = *er.decl;
      if (r.policy.upgrade != config::Policy::Upgrade::kStepwise) continue;
      auto it = current.find(r.address);
      if (it == current.end() || it->second.step_value || r.policy.step_field.empty()) continue;
      for (const auto& row : *rows) {
        if (row.address != r.address) continue;
        Result<plan::StoredAttrs> attrs = plan::DecodeStored(row.attrs_json);
        if (!attrs.ok()) break;
        if (const Value* v = FieldOf(attrs->attrs, StepField(r.policy))) it->second.step_value = *v;
        break;
      }
    }
  };

  for (const source::CommitInfo& c : between) {
    Status used = ws.UseCommit(c);
    if (!used.ok()) return used.error();
    Diagnostics step_diags;
    Result<config::Environment*> env = ws.Evaluate(target.env, true, true, step_diags);
    if (!env.ok()) {
      for (auto d : step_diags.items()) {
        d.message = "commit " + c.short_id + ": " + d.message;
        diags.Add(d);
      }
      return MakeError("commit " + c.short_id + " (" + c.subject +
                       "), a step on the way, has invalid declarations");
    }
    load_step_values(**env);
    AddSteps(**env, c, /*commit_step=*/true, current, steps);
  }
  // Back to the selected commit; its intermediate versions come before its own plan.
  Status back = ws.UseCommit(*target.commit);
  if (!back.ok()) return back.error();
  Diagnostics final_diags;
  Result<config::Environment*> env = ws.Evaluate(target.env, true, true, final_diags);
  if (env.ok()) {
    load_step_values(**env);
    AddSteps(**env, *target.commit, /*commit_step=*/false, current, steps);
  }
  // The final plan evaluates again, from a fresh load (a workspace evaluates its declarations
  // once).
  back = ws.UseCommit(*target.commit);
  if (!back.ok()) return back.error();
  return steps;
}

std::vector<plan::PlannedStep> DescribeSteps(const std::vector<Step>& steps) {
  std::vector<plan::PlannedStep> out;
  for (const Step& s : steps) {
    plan::PlannedStep p;
    p.commit = s.commit.id;
    p.subject =
        s.commit.short_id + " " + s.commit.subject + (s.note.empty() ? "" : " (" + s.note + ")");
    p.addresses.assign(s.addresses.begin(), s.addresses.end());
    p.transitions = s.transitions;
    out.push_back(std::move(p));
  }
  return out;
}

/// Applies a step's overrides to an evaluated environment.
Status ApplyOverrides(config::Environment& env, const std::vector<StepOverride>& overrides) {
  for (const auto& o : overrides) {
    int i = env.IndexOf(o.address);
    if (i < 0) return MakeError(o.address + " is not declared at this step");
    config::EvaluatedResource& er = env.resources()[static_cast<size_t>(i)];
    Status s = SetField(er.spec, o.field, o.value);
    if (!s.ok()) return MakeError(o.address + ": " + s.error().message);
    er.spec_hash = env.SpecHash(er.spec);
  }
  return Status::Ok();
}

}  // namespace driftless::engine
