#include "apply/import.h"

#include "apply/resource_state.h"
#include "base/identity.h"
#include "base/strings.h"
#include "plan/planner.h"
#include "plan/stored.h"
#include "value/diff.h"
#include "value/render.h"

namespace driftless::apply {

using value::Value;

namespace {

// Why `address` cannot be imported into `env` for want of a declaration.
std::string NotDeclared(const config::Environment& env, const std::string& address) {
  const size_t slash = address.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 == address.size()) {
    return "\"" + address + "\" is not a resource address: write KIND/NAME (file.file/motd)";
  }
  const std::string kind = address.substr(0, slash);
  std::vector<std::string> same_kind;
  for (const auto& r : env.decls().resources) {
    if (r.kind == kind) same_kind.push_back(r.address);
  }
  std::string out = address + " is not declared in environment " + env.name() +
                    ": import takes an object under management for a resource the declarations "
                    "already have; declare it first (kind, name, target, spec)";
  if (!same_kind.empty()) {
    if (same_kind.size() > 10) same_kind.resize(10), same_kind.push_back("...");
    out += "; declared " + kind + " resources: " + Join(same_kind, ", ");
  }
  return out;
}

// The resource already in state under `address` (or its moved_from), as an error.
Status CheckNotInState(state::StateStore& store, const config::Environment& env,
                       const config::Resource& r) {
  std::vector<std::string> addresses = {r.address};
  if (!r.moved_from.empty()) addresses.push_back(r.kind + "/" + r.moved_from);
  for (const auto& address : addresses) {
    Result<std::optional<state::ResourceState>> row = store.GetResource(env.name(), address);
    if (!row.ok()) return row.error();
    if (!*row) continue;
    std::string since = FormatTime((*row)->updated_at);
    return MakeError(r.address + " is already managed: " + address +
                     " is in the state of environment " + env.name() + " (recorded " + since +
                     ((*row)->commit.empty() ? "" : " from commit " + (*row)->commit.substr(0, 7)) +
                     "); to import another object for it, run `driftless state rm " + address +
                     "` first (that forgets the one it manages, without touching it)");
  }
  return Status::Ok();
}

// The declared fields of `live` equal the declaration's, as the planner compares them.
bool Matches(const config::Environment& env, const config::EvaluatedResource& er,
             const Value& live) {
  if (er.spec_hash.empty()) return false;  // holds unknowns: known only after an apply
  const config::Resource& r = *er.decl;
  const std::vector<std::string> keys = plan::ComparedKeys(er.spec, *env.SchemaOf(r));
  const Value planned = plan::Project(value::Protect(er.spec, env.salt()), keys, r.policy.ignore);
  const Value seen =
      plan::Project(plan::ProtectLike(live, er.spec, env.salt()), keys, r.policy.ignore);
  for (const auto& [k, v] : planned.as_object()) {
    const Value* l = seen.Find(k);
    if (l == nullptr || *l != v) return false;
  }
  return true;
}

// The next plan of the resource alone, against `row` as its state.
Result<plan::Plan> PlanAgainst(config::Environment& env, state::StateStore& store,
                               const state::ResourceState& row) {
  Result<std::optional<state::Environment>> env_row = store.GetEnvironment(env.name());
  if (!env_row.ok()) return env_row.error();
  if (!*env_row) return MakeError("environment " + env.name() + " is not in state");
  plan::PriorState prior;
  prior.environment = **env_row;
  prior.digests = {{row.address, row.spec_hash, row.live_digest}};
  prior.read = [&row](const std::vector<std::string>&) {
    return Result<std::vector<state::ResourceState>>(std::vector<state::ResourceState>{row});
  };
  Result<std::vector<state::ChangeRecord>> pending = store.PendingChanges(env.name());
  if (!pending.ok()) return pending.error();
  prior.pending = std::move(*pending);
  const std::set<std::string, std::less<>> only = {row.address};
  plan::PlanOptions options;
  options.parallelism = 1;
  options.only = &only;
  return plan::MakePlan(env, prior, options);
}

}  // namespace

Result<ImportResult> Import(config::Environment& env, state::StateStore& store, state::Lock& lock,
                            const ImportRequest& request) {
  const int index = env.IndexOf(request.address);
  if (index < 0) return MakeError(NotDeclared(env, request.address));
  const config::EvaluatedResource& er = env.resources()[static_cast<size_t>(index)];
  const config::Resource& r = *er.decl;
  if (Status s = CheckNotInState(store, env, r); !s.ok()) return s.error();

  provider::Target* target = env.TargetOf(r);
  ImportResult result;
  result.target = r.target;
  result.where = target->Describe();
  const std::string place = r.address + " (" + result.where + ")";
  Result<std::optional<Value>> live = target->ReadById(request.id, {r.kind, r.name, er.spec});
  if (!live.ok()) return MakeError(place + ": " + live.error().message);
  if (!*live) {
    return MakeError(place + ": ID \"" + request.id + "\" names no " + r.kind +
                     " there: nothing to import (`driftless apply` creates it)");
  }

  // What is recorded: the live object, as applied from the declaration when the two are equal.
  result.matches = Matches(env, er, **live);
  std::vector<std::string> depends_on;
  for (size_t d : env.graph().Predecessors(static_cast<size_t>(index)))
    depends_on.push_back(env.resources()[d].decl->address);
  state::ResourceState row =
      MakeResourceState(env, r, &**live, er.spec, **live,
                        result.matches ? er.spec_hash : std::string(plan::kImportedSpecHash),
                        std::move(depends_on), &result.attributes);

  Result<plan::Plan> next = PlanAgainst(env, store, row);
  if (!next.ok())
    return MakeError(place + ": planning it after the import: " + next.error().message);
  for (plan::Change& c : next->changes) {
    if (c.address == r.address) result.next = std::move(c);
  }
  result.problems = std::move(next->problems);

  // One apply of kind "import" in history; every write checks the lock's fencing token.
  const Identity me = CurrentIdentity();
  state::ApplyRecord record;
  record.environment = env.name();
  record.kind = "import";
  record.user = me.user;
  record.host = me.host;
  record.pid = me.pid;
  record.commit = env.decls().revision;
  record.commit_subject = request.commit_subject;
  record.commit_author = request.commit_author;
  record.decl_hash = env.hash();
  record.started_at = NowUnix();
  record.status = "running";
  Value what = Value::MakeObject();
  what.Set("address", Value::String(r.address));
  what.Set("id", Value::String(request.id));
  what.Set("target", Value::String(r.target));
  Value doc = Value::MakeObject();
  doc.Set("environment", Value::String(env.name()));
  doc.Set("import", std::move(what));
  record.plan_json = value::ToJson(doc);
  const std::string diff = value::UnifiedDiff("", value::RenderText(result.attributes));
  Result<int64_t> apply_id =
      store.BeginApply(lock, record, {{r.address, "import", "pending", "", diff}});
  if (!apply_id.ok()) return apply_id.error();
  result.apply_id = *apply_id;
  state::ChangeResult done;
  done.address = r.address;
  done.status = "done";
  done.new_state = std::move(row);
  if (Status s = store.RecordResults(lock, *apply_id, {std::move(done)}); !s.ok()) {
    return MakeError("state: " + s.error().message + "; nothing was imported");
  }
  if (Status s = store.FinishApply(lock, *apply_id, "succeeded", "1 imported"); !s.ok()) {
    return MakeError("state: " + s.error().message + "; " + r.address +
                     " was recorded, but its import #" + std::to_string(*apply_id) +
                     " could not be marked finished in history");
  }
  return result;
}

}  // namespace driftless::apply
