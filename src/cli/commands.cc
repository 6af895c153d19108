#include "cli/commands.h"

#include <csignal>
#include <cstdio>
#include <iostream>

#include "apply/applier.h"
#include "base/file_util.h"
#include "base/strings.h"
#include "cli/terminal.h"
#include "plan/render.h"
#include "plan/stored.h"
#include "value/render.h"

namespace driftless::cli {

using value::Value;

namespace {

std::atomic<bool> g_cancel{false};

extern "C" void OnInterrupt(int) {
  if (g_cancel.exchange(true)) std::_Exit(130);  // second Ctrl-C: stop now
}

void PrintJson(const Value& v) { std::printf("%s\n", value::ToPrettyJson(v).c_str()); }

void PrintDiagnostics(const Diagnostics& diags, bool json) {
  Diagnostics sorted = diags;
  sorted.Sort();
  if (json) {
    Value::List errors;
    for (const auto& d : sorted.items()) {
      Value e = Value::MakeObject();
      e.Set("file", Value::String(d.pos.file));
      e.Set("line", Value::Int(d.pos.line));
      e.Set("column", Value::Int(d.pos.column));
      e.Set("severity",
            Value::String(d.severity == Diagnostic::Severity::kError ? "error" : "warning"));
      e.Set("message", Value::String(d.message));
      if (!d.hint.empty()) e.Set("hint", Value::String(d.hint));
      errors.push_back(std::move(e));
    }
    Value root = Value::MakeObject();
    root.Set("valid", Value::Bool(!sorted.HasErrors()));
    root.Set("errors", Value::MakeList(std::move(errors)));
    PrintJson(root);
    return;
  }
  std::fputs(sorted.ToString().c_str(), stderr);
  if (sorted.HasErrors()) {
    std::fprintf(stderr, "%zu error%s; nothing was changed.\n", sorted.ErrorCount(),
                 sorted.ErrorCount() == 1 ? "" : "s");
  }
}

int Fail(const std::string& message) {
  std::fprintf(stderr, "error: %s\n", message.c_str());
  return 1;
}

Result<state::Lock> TakeLock(Workspace& ws, const std::string& env, const std::string& op) {
  Result<state::StateStore*> store = ws.State();
  if (!store.ok()) return store.error();
  return (*store)->AcquireLock(env, CurrentIdentity(), op, ws.flags().lock_timeout);
}

// Checks a saved plan against a fresh one made under the lock.
Status CheckPlanFile(const std::string& path, const plan::Plan& fresh) {
  Result<std::string> text = ReadFileToString(path);
  if (!text.ok()) return text.error();
  Result<Value> json = value::ParseJson(*text);
  if (!json.ok()) return MakeError(path + " is not a plan file: " + json.error().message);
  Result<plan::Plan> saved = plan::PlanFromJson(*json);
  if (!saved.ok()) return MakeError(path + ": " + saved.error().message);
  const Value* hash = json->Find("plan_hash");
  std::string again = "; run `driftless plan --out " + path + "` again";
  if (saved->environment != fresh.environment) {
    return MakeError("plan file " + path + " is for environment " + saved->environment + ", not " +
                     fresh.environment);
  }
  if (saved->destroy != fresh.destroy) {
    return MakeError("plan file " + path +
                     (saved->destroy ? " is a destroy plan" : " is not a destroy plan"));
  }
  if (saved->decl_hash != fresh.decl_hash) {
    return MakeError("plan file " + path + " is stale: the declarations changed since it was made" +
                     again);
  }
  if (saved->state_serial != fresh.state_serial) {
    return MakeError("plan file " + path + " is stale: state changed since it was made (serial " +
                     std::to_string(saved->state_serial) + ", now " +
                     std::to_string(fresh.state_serial) + ")" + again);
  }
  if (hash == nullptr || !hash->is_string() || hash->as_string() != fresh.Hash()) {
    return MakeError("plan file " + path + " is stale: live objects changed since it was made" +
                     again);
  }
  return Status::Ok();
}

}  // namespace

int RunValidate(Workspace& ws, const std::string& env) {
  Diagnostics diags;
  Result<config::Environment*> evaluated = ws.Evaluate(env, false, false, diags);
  if (!evaluated.ok() || diags.HasErrors()) {
    PrintDiagnostics(diags, ws.flags().json);
    return 1;
  }
  size_t n = (*evaluated)->resources().size();
  if (ws.flags().json) {
    PrintDiagnostics(diags, true);
  } else {
    PrintDiagnostics(diags, false);
    std::printf("Valid: %zu resource%s, environment %s.\n", n, n == 1 ? "" : "s", env.c_str());
  }
  return 0;
}

int RunPlan(Workspace& ws, const ApplyFlags& flags) {
  Diagnostics diags;
  Result<plan::Plan> plan =
      ws.Plan(flags.env, false, diags, /*list_unchanged=*/ws.flags().json || !flags.out.empty());
  if (!plan.ok()) {
    if (diags.empty()) return Fail(plan.error().message);
    PrintDiagnostics(diags, ws.flags().json);
    return 1;
  }
  if (!flags.out.empty()) {
    Status s =
        WriteFileAtomic(flags.out, value::ToPrettyJson(plan::PlanToJson(*plan)) + "\n", 0600);
    if (!s.ok()) return Fail(s.error().message);
  }
  if (ws.flags().json) {
    PrintJson(plan::PlanToJson(*plan));
  } else {
    plan::RenderOptions ro;
    ro.color = UseColor(stdout, ws.flags().no_color);
    std::printf("Environment %s (%s)\n\n", plan->environment.c_str(), plan->source.c_str());
    std::fputs(plan::RenderPlan(*plan, ro).c_str(), stdout);
    if (!flags.out.empty()) std::printf("Saved the plan to %s.\n", flags.out.c_str());
  }
  if (plan->problems.HasErrors()) {
    PrintDiagnostics(plan->problems, false);
    return 1;
  }
  return flags.detailed_exitcode && (plan->HasChanges() || plan->DriftCount() > 0) ? 2 : 0;
}

int RunApply(Workspace& ws, const ApplyFlags& flags, bool destroy) {
  const bool interactive = IsTerminal(stdin) && IsTerminal(stderr);
  if (!flags.auto_approve && flags.plan_file.empty() && !interactive) {
    return Fail(std::string(destroy ? "destroy" : "apply") +
                " needs --auto-approve when not run on a terminal");
  }
  if (!ws.StateHasEnvironment(flags.env)) {
    // Nothing is written (not even a lock) for declarations that are not valid.
    Diagnostics diags;
    Result<config::Environment*> checked = ws.Evaluate(flags.env, true, false, diags);
    if (!checked.ok()) {
      if (diags.empty()) return Fail(checked.error().message);
      PrintDiagnostics(diags, false);
      return 1;
    }
  }
  Result<state::Lock> lock = TakeLock(ws, flags.env, destroy ? "destroy" : "apply");
  if (!lock.ok()) return Fail(lock.error().message);
  state::StateStore* store = *ws.State();
  struct Unlock {
    state::StateStore* s;
    state::Lock* l;
    ~Unlock() { (void)s->ReleaseLock(*l); }
  } unlock{store, &*lock};

  Diagnostics diags;
  Result<plan::Plan> plan = ws.Plan(flags.env, destroy, diags);
  if (!plan.ok()) {
    if (diags.empty()) return Fail(plan.error().message);
    PrintDiagnostics(diags, false);
    return 1;
  }
  if (!flags.plan_file.empty()) {
    Status s = CheckPlanFile(flags.plan_file, *plan);
    if (!s.ok()) return Fail(s.error().message);
  }
  plan::RenderOptions ro;
  ro.color = UseColor(stdout, ws.flags().no_color);
  if (plan->problems.HasErrors()) {
    std::fputs(plan::RenderPlan(*plan, ro).c_str(), stdout);
    PrintDiagnostics(plan->problems, false);
    return 1;
  }
  if (!plan->HasChanges()) {
    std::printf("No changes. Environment %s matches its declarations.\n",
                plan->environment.c_str());
    return 0;
  }
  std::printf("Environment %s (%s)\n\n", plan->environment.c_str(), plan->source.c_str());
  std::fputs(plan::RenderPlan(*plan, ro).c_str(), stdout);
  std::fflush(stdout);
  if (!flags.auto_approve && flags.plan_file.empty()) {
    if (!Confirm(std::string("\nDo you want to ") + (destroy ? "destroy" : "apply") +
                 " these changes to environment " + plan->environment + "?")) {
      std::fprintf(stderr, "Cancelled; nothing was changed.\n");
      return 1;
    }
  }
  std::signal(SIGINT, OnInterrupt);
  std::signal(SIGTERM, OnInterrupt);
  ProgressLine progress(destroy ? "destroying" : "applying");
  apply::ApplyOptions options;
  options.parallelism = ws.flags().parallelism;
  options.kind = destroy ? "destroy" : "apply";
  options.cancel = &g_cancel;
  options.on_progress = [&](const apply::Progress& p) {
    progress.Update(p.done, p.total, p.address);
  };
  Result<apply::ApplyResult> result =
      apply::Apply(*ws.environment(), std::move(*plan), *store, *lock, options);
  progress.Done();
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  if (!result.ok()) return Fail(result.error().message);
  for (const auto& e : result->errors) std::fprintf(stderr, "error: %s\n", e.c_str());
  std::printf("\nApply #%lld %s: %s.\n", static_cast<long long>(result->apply_id),
              result->status.c_str(), result->summary.c_str());
  return result->status == "succeeded" ? 0 : 1;
}

int RunStateList(Workspace& ws, const std::string& env) {
  Result<state::StateStore*> store = ws.State();
  if (!store.ok()) return Fail(store.error().message);
  auto rows = (*store)->ListResources(env);
  if (!rows.ok()) return Fail(rows.error().message);
  if (ws.flags().json) {
    Value::List items;
    for (const auto& r : *rows) {
      Value o = Value::MakeObject();
      o.Set("address", Value::String(r.address));
      o.Set("target", Value::String(r.target));
      o.Set("commit", Value::String(r.commit));
      o.Set("updated_at", Value::String(FormatTime(r.updated_at)));
      items.push_back(std::move(o));
    }
    PrintJson(Value::MakeList(std::move(items)));
    return 0;
  }
  for (const auto& r : *rows) std::printf("%s\n", r.address.c_str());
  return 0;
}

int RunStateShow(Workspace& ws, const std::string& env, const std::string& address) {
  Result<state::StateStore*> store = ws.State();
  if (!store.ok()) return Fail(store.error().message);
  auto row = (*store)->GetResource(env, address);
  if (!row.ok()) return Fail(row.error().message);
  if (!*row) return Fail("no resource " + address + " in the state of environment " + env);
  Result<plan::StoredAttrs> stored = plan::DecodeStored((*row)->attrs_json);
  if (!stored.ok()) return Fail(stored.error().message);
  if (ws.flags().json) {
    Value o = Value::MakeObject();
    o.Set("address", Value::String((*row)->address));
    o.Set("target", Value::String((*row)->target));
    o.Set("attributes", value::Redact(stored->attrs));
    o.Set("commit", Value::String((*row)->commit));
    o.Set("serial", Value::Int((*row)->serial));
    o.Set("updated_at", Value::String(FormatTime((*row)->updated_at)));
    Value::List deps;
    for (const auto& d : (*row)->depends_on) deps.push_back(Value::String(d));
    o.Set("depends_on", Value::MakeList(std::move(deps)));
    PrintJson(o);
    return 0;
  }
  std::printf("# %s (target %s, applied %s%s)\n", (*row)->address.c_str(), (*row)->target.c_str(),
              FormatTime((*row)->updated_at).c_str(),
              (*row)->commit.empty() ? "" : (" from " + (*row)->commit).c_str());
  std::fputs(value::RenderText(stored->attrs).c_str(), stdout);
  if (!(*row)->depends_on.empty())
    std::printf("# depends on: %s\n", Join((*row)->depends_on, ", ").c_str());
  return 0;
}

int RunStateRm(Workspace& ws, const std::string& env, const std::string& address) {
  Result<state::Lock> lock = TakeLock(ws, env, "state rm");
  if (!lock.ok()) return Fail(lock.error().message);
  state::StateStore* store = *ws.State();
  auto row = store->GetResource(env, address);
  Status s =
      !row.ok() ? Status(row.error())
      : !*row ? Status(MakeError("no resource " + address + " in the state of environment " + env))
              : store->RemoveResource(*lock, address);
  (void)store->ReleaseLock(*lock);
  if (!s.ok()) return Fail(s.error().message);
  std::printf("Removed %s from the state of environment %s; the object itself was not touched.\n",
              address.c_str(), env.c_str());
  return 0;
}

namespace {

Value ApplyJson(const state::ApplyRecord& a) {
  Value o = Value::MakeObject();
  o.Set("id", Value::Int(a.id));
  o.Set("environment", Value::String(a.environment));
  o.Set("kind", Value::String(a.kind));
  o.Set("actor", Value::String(a.user + "@" + a.host));
  o.Set("pid", Value::Int(a.pid));
  o.Set("commit", Value::String(a.commit));
  o.Set("started_at", Value::String(FormatTime(a.started_at)));
  o.Set("finished_at", a.finished_at ? Value::String(FormatTime(a.finished_at)) : Value::Null());
  o.Set("status", Value::String(a.status));
  o.Set("summary", Value::String(a.summary));
  return o;
}

}  // namespace

int RunHistory(Workspace& ws, const std::string& env, int limit) {
  Result<state::StateStore*> store = ws.State();
  if (!store.ok()) return Fail(store.error().message);
  auto applies = (*store)->ListApplies(env, limit);
  if (!applies.ok()) return Fail(applies.error().message);
  if (ws.flags().json) {
    Value::List items;
    for (const auto& a : *applies) items.push_back(ApplyJson(a));
    PrintJson(Value::MakeList(std::move(items)));
    return 0;
  }
  if (applies->empty()) {
    std::printf("No applies yet%s.\n", env.empty() ? "" : (" in environment " + env).c_str());
    return 0;
  }
  std::printf("%-5s %-20s %-12s %-24s %-9s %-12s %s\n", "ID", "WHEN", "ENVIRONMENT", "WHO", "KIND",
              "STATUS", "SUMMARY");
  for (const auto& a : *applies) {
    std::printf("%-5lld %-20s %-12s %-24s %-9s %-12s %s\n", static_cast<long long>(a.id),
                FormatTime(a.started_at).c_str(), a.environment.c_str(),
                (a.user + "@" + a.host).c_str(), a.kind.c_str(), a.status.c_str(),
                a.summary.c_str());
  }
  return 0;
}

int RunHistoryShow(Workspace& ws, int64_t id) {
  Result<state::StateStore*> store = ws.State();
  if (!store.ok()) return Fail(store.error().message);
  auto apply = (*store)->GetApply(id);
  if (!apply.ok()) return Fail(apply.error().message);
  if (!*apply) return Fail("no apply #" + std::to_string(id));
  const state::ApplyRecord& a = **apply;
  if (ws.flags().json) {
    Value o = ApplyJson(a);
    Value::List changes;
    for (const auto& c : a.changes) {
      Value ch = Value::MakeObject();
      ch.Set("address", Value::String(c.address));
      ch.Set("action", Value::String(c.action));
      ch.Set("status", Value::String(c.status));
      if (!c.error.empty()) ch.Set("error", Value::String(c.error));
      ch.Set("diff", Value::String(c.diff));
      changes.push_back(std::move(ch));
    }
    o.Set("changes", Value::MakeList(std::move(changes)));
    PrintJson(o);
    return 0;
  }
  bool color = UseColor(stdout, ws.flags().no_color);
  std::printf("Apply #%lld — %s of environment %s\n", static_cast<long long>(a.id), a.kind.c_str(),
              a.environment.c_str());
  std::printf("  who:      %s@%s (pid %lld)\n", a.user.c_str(), a.host.c_str(),
              static_cast<long long>(a.pid));
  std::printf("  started:  %s\n", FormatTime(a.started_at).c_str());
  if (a.finished_at) std::printf("  finished: %s\n", FormatTime(a.finished_at).c_str());
  if (!a.commit.empty())
    std::printf("  commit:   %s %s\n", a.commit.c_str(), a.commit_subject.c_str());
  std::printf("  status:   %s (%s)\n\n", a.status.c_str(), a.summary.c_str());
  for (const auto& c : a.changes) {
    std::printf("  %-8s %-8s %s%s\n", c.status.c_str(), c.action.c_str(), c.address.c_str(),
                c.error.empty() ? "" : ("  — " + c.error).c_str());
    if (!c.diff.empty()) std::fputs(plan::ColorDiff(c.diff, color, 6).c_str(), stdout);
  }
  return 0;
}

int RunEnvList(Workspace& ws) {
  Result<state::StateStore*> store = ws.State();
  if (!store.ok()) return Fail(store.error().message);
  auto envs = (*store)->ListEnvironments();
  if (!envs.ok()) return Fail(envs.error().message);
  Value::List items;
  if (!ws.flags().json) {
    std::printf("%-20s %-8s %-10s %-22s %s\n", "ENVIRONMENT", "SERIAL", "RESOURCES", "LAST APPLY",
                "STATUS");
  }
  for (const auto& e : *envs) {
    auto resources = (*store)->ListResources(e.name);
    auto last = (*store)->ListApplies(e.name, 1);
    auto lock = (*store)->GetLock(e.name);
    size_t n = resources.ok() ? resources->size() : 0;
    std::string when = last.ok() && !last->empty() ? FormatTime((*last)[0].started_at) : "never";
    std::string status = last.ok() && !last->empty() ? (*last)[0].status : "-";
    if (lock.ok() && *lock) status += " (locked by " + (*lock)->holder.UserAtHost() + ")";
    if (ws.flags().json) {
      Value o = Value::MakeObject();
      o.Set("name", Value::String(e.name));
      o.Set("serial", Value::Int(e.serial));
      o.Set("resources", Value::Int(static_cast<int64_t>(n)));
      o.Set("last_apply", Value::String(when));
      o.Set("status", Value::String(status));
      items.push_back(std::move(o));
    } else {
      std::printf("%-20s %-8lld %-10zu %-22s %s\n", e.name.c_str(),
                  static_cast<long long>(e.serial), n, when.c_str(), status.c_str());
    }
  }
  if (ws.flags().json) PrintJson(Value::MakeList(std::move(items)));
  return 0;
}

int RunEnvShow(Workspace& ws, const std::string& env) {
  Result<state::StateStore*> store = ws.State();
  if (!store.ok()) return Fail(store.error().message);
  auto row = (*store)->GetEnvironment(env);
  if (!row.ok()) return Fail(row.error().message);
  if (!*row) return Fail("no environment " + env + " in state " + ws.StatePath());
  auto resources = (*store)->ListResources(env);
  auto applies = (*store)->ListApplies(env, 5);
  auto lock = (*store)->GetLock(env);
  if (!resources.ok()) return Fail(resources.error().message);
  if (ws.flags().json) {
    Value o = Value::MakeObject();
    o.Set("name", Value::String(env));
    o.Set("serial", Value::Int((*row)->serial));
    o.Set("created_at", Value::String(FormatTime((*row)->created_at)));
    Value::List rs;
    for (const auto& r : *resources) rs.push_back(Value::String(r.address));
    o.Set("resources", Value::MakeList(std::move(rs)));
    if (lock.ok() && *lock) o.Set("locked_by", Value::String((*lock)->holder.UserAtHost()));
    Value::List as;
    if (applies.ok())
      for (const auto& a : *applies) as.push_back(ApplyJson(a));
    o.Set("recent_applies", Value::MakeList(std::move(as)));
    PrintJson(o);
    return 0;
  }
  std::printf("Environment %s\n  created:   %s\n  serial:    %lld\n  resources: %zu\n", env.c_str(),
              FormatTime((*row)->created_at).c_str(), static_cast<long long>((*row)->serial),
              resources->size());
  if (lock.ok() && *lock) {
    std::printf("  locked:    by %s (pid %lld) for %s since %s\n",
                (*lock)->holder.UserAtHost().c_str(), static_cast<long long>((*lock)->holder.pid),
                (*lock)->operation.c_str(), FormatTime((*lock)->acquired_at).c_str());
  }
  if (applies.ok() && !applies->empty()) {
    std::printf("  recent applies:\n");
    for (const auto& a : *applies)
      std::printf("    #%lld %s %s %s\n", static_cast<long long>(a.id),
                  FormatTime(a.started_at).c_str(), a.status.c_str(), a.summary.c_str());
  }
  return 0;
}

}  // namespace driftless::cli
