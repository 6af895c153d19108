#include "cli/commands.h"

#include <csignal>
#include <cstdio>
#include <iostream>
#include <map>
#include <set>

#include "apply/applier.h"
#include "apply/import.h"
#include "base/file_util.h"
#include "base/strings.h"
#include "base/trace.h"
#include "cli/drift_record.h"
#include "cli/notifications.h"
#include "cli/steps.h"
#include "cli/terminal.h"
#include "plan/render.h"
#include "plan/stored.h"
#include "state/lock_text.h"
#include "value/diff.h"
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

// Takes the environment's lock. A command that is to wait for it (--lock-timeout) and finds it
// held says so once on standard error, so that one that sits still tells why and for whom:
// "waiting up to 300s for the lock of environment X, held by USER@HOST (pid N) for OP since T".
Result<state::Lock> TakeLock(Workspace& ws, const std::string& env, const std::string& op) {
  Result<state::StateStore*> store = ws.State();
  if (!store.ok()) return store.error();
  (*store)->SetLockWaitObserver([](const state::Lock& holder, double timeout_seconds) {
    std::fprintf(stderr, "waiting up to %s for the lock of environment %s, held by %s\n",
                 HumanSeconds(timeout_seconds).c_str(), holder.environment.c_str(),
                 state::DescribeHolder(holder).c_str());
    std::fflush(stderr);
  });
  Result<state::Lock> lock = (*store)->AcquireLock(
      env, CurrentIdentity(), op, ws.flags().lock_timeout, ws.flags().lease_seconds);
  (*store)->SetLockWaitObserver({});
  return lock;
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
  if (saved->revision != fresh.revision) {
    return MakeError("plan file " + path + " is for commit " + saved->revision.substr(0, 7) +
                     ", not " +
                     (fresh.revision.empty() ? "a folder" : fresh.revision.substr(0, 7)) + again);
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
  CheckSinks((*evaluated)->decls(), diags);
  if (diags.HasErrors()) {
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
  Result<std::vector<Step>> steps = PlanSteps(ws, diags);
  if (!steps.ok()) {
    if (diags.empty()) return Fail(steps.error().message);
    PrintDiagnostics(diags, ws.flags().json);
    return Fail(steps.error().message);
  }
  Result<plan::Plan> plan =
      ws.Plan(flags.env, false, diags, /*list_unchanged=*/ws.flags().json || !flags.out.empty());
  if (plan.ok()) plan->steps = DescribeSteps(*steps);
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
  return flags.detailed_exitcode &&
                 (plan->HasChanges() || plan->DriftCount() > 0 || !plan->steps.empty())
             ? 2
             : 0;
}

namespace {

// The drifted resources of a plan and their actions (taken before the plan moves into Apply).
std::vector<std::pair<std::string, plan::Action>> DriftedOf(const plan::Plan& plan) {
  std::vector<std::pair<std::string, plan::Action>> out;
  for (const auto& c : plan.changes) {
    if (c.drift) out.emplace_back(c.address, c.action);
  }
  return out;
}

// After an apply: the drift of every resource it healed or recorded is resolved.
void ResolveAppliedDrift(state::StateStore& store, const std::string& env,
                         const std::vector<std::pair<std::string, plan::Action>>& drifted,
                         const apply::ApplyResult& result, const std::string& resolution) {
  const std::set<std::string, std::less<>> failed = FailedAddresses(result);
  std::vector<std::string> healed, recorded;
  for (const auto& [address, action] : drifted) {
    if (failed.count(address)) continue;
    (action == plan::Action::kRecord ? recorded : healed).push_back(address);
  }
  const int64_t now = NowUnix();
  if (!healed.empty()) (void)store.ObserveDrift(env, {}, healed, resolution, now);
  if (!recorded.empty()) (void)store.ObserveDrift(env, {}, recorded, "declaration", now);
}

}  // namespace

int RunDrift(Workspace& ws, const std::string& env, bool full) {
  Diagnostics diags;
  Workspace::PlanRequest request;
  request.full = full;
  Result<plan::Plan> plan = ws.Plan(env, request, diags);
  if (!plan.ok()) {
    if (diags.empty()) return Fail(plan.error().message);
    PrintDiagnostics(diags, ws.flags().json);
    return 1;
  }
  std::vector<const plan::Change*> drifted;
  for (const auto& c : plan->changes) {
    if (c.drift) drifted.push_back(&c);
  }
  // The timeline: new drift opens, drift seen again moves on, drift gone by itself resolves.
  Result<DriftCheckRecord> recorded =
      RecordDriftCheck(**ws.State(), env, *ws.environment(), *plan, nullptr);
  if (!recorded.ok()) return Fail(recorded.error().message);
  auto text = [](const Value& v) { return v.is_null() ? std::string() : value::RenderText(v); };
  // Declared and applied differ too: a change not applied yet (the next apply does both).
  auto pending_diff = [&](const plan::Change& c) {
    if (c.index < 0 || c.planned.is_null() || c.prior.is_null()) return std::string();
    return value::UnifiedDiff(text(c.prior), text(c.planned));
  };
  if (ws.flags().json) {
    Value::List items;
    for (const plan::Change* c : drifted) {
      Value o = Value::MakeObject();
      o.Set("address", Value::String(c->address));
      o.Set("target", Value::String(c->target));
      o.Set("reason", Value::String(c->reason));
      o.Set("planned_action", Value::String(std::string(plan::ActionName(c->action))));
      o.Set("applied", value::Redact(c->prior));
      o.Set("live", value::Redact(c->live));
      o.Set("declared", value::Redact(c->planned));
      o.Set("drift_diff", Value::String(c->drift_diff));
      o.Set("declared_diff", Value::String(pending_diff(*c)));
      items.push_back(std::move(o));
    }
    Value root = Value::MakeObject();
    root.Set("environment", Value::String(plan->environment));
    root.Set("revision", Value::String(plan->revision));
    root.Set("checked", Value::Int(static_cast<int64_t>(plan->changes.size() + plan->unchanged)));
    root.Set("drifted", Value::MakeList(std::move(items)));
    PrintJson(root);
    return drifted.empty() ? 0 : 2;
  }
  bool color = UseColor(stdout, ws.flags().no_color);
  std::printf("Environment %s (%s)\n\n", plan->environment.c_str(), plan->source.c_str());
  for (const plan::Change* c : drifted) {
    std::printf("  ~ %s  (%s)\n", c->address.c_str(),
                c->live.is_null() ? "deleted outside driftless" : c->reason.c_str());
    std::printf("      applied -> live:\n");
    std::fputs(plan::ColorDiff(c->drift_diff, color, 8).c_str(), stdout);
    std::string pending = pending_diff(*c);
    if (!pending.empty()) {
      std::printf("      applied -> declared (a change not applied yet):\n");
      std::fputs(plan::ColorDiff(pending, color, 8).c_str(), stdout);
    }
  }
  size_t checked = plan->changes.size() + plan->unchanged;
  if (drifted.empty()) {
    std::printf("No drift: %zu resource%s checked against what was applied.\n", checked,
                checked == 1 ? "" : "s");
    return 0;
  }
  std::printf(
      "\nDrift: %zu of %zu resource%s changed outside driftless; `driftless apply` "
      "reverts %s (fields in policy.ignore and resources with drift: ignore are not "
      "compared).\n",
      drifted.size(), checked, checked == 1 ? "" : "s", drifted.size() == 1 ? "it" : "them");
  return 2;
}

namespace {

std::string Duration(int64_t seconds) {
  if (seconds < 60) return std::to_string(seconds) + "s";
  if (seconds < 3600)
    return std::to_string(seconds / 60) + "m" + std::to_string(seconds % 60) + "s";
  if (seconds < 86400)
    return std::to_string(seconds / 3600) + "h" + std::to_string(seconds % 3600 / 60) + "m";
  return std::to_string(seconds / 86400) + "d" + std::to_string(seconds % 86400 / 3600) + "h";
}

}  // namespace

int RunDriftHistory(Workspace& ws, const std::string& env, int limit) {
  Result<state::StateStore*> store = ws.State();
  if (!store.ok()) return Fail(store.error().message);
  auto drifts = (*store)->ListDrift(env, true, limit);
  if (!drifts.ok()) return Fail(drifts.error().message);
  const int64_t now = NowUnix();
  if (ws.flags().json) {
    Value::List items;
    for (const auto& d : *drifts) {
      Value o = Value::MakeObject();
      o.Set("id", Value::Int(d.id));
      o.Set("environment", Value::String(d.environment));
      o.Set("resource", Value::String(d.address));
      o.Set("onset", Value::String(FormatTime(d.onset)));
      o.Set("last_seen", Value::String(FormatTime(d.last_seen)));
      o.Set("resolved_at",
            d.resolved_at ? Value::String(FormatTime(d.resolved_at)) : Value::Null());
      o.Set("resolution", Value::String(d.resolution));
      o.Set("duration_seconds", Value::Int((d.resolved_at ? d.resolved_at : now) - d.onset));
      o.Set("actor", Value::String(d.actor));
      o.Set("remediations", Value::Int(d.remediations));
      o.Set("diff", Value::String(d.diff));
      items.push_back(std::move(o));
    }
    PrintJson(Value::MakeList(std::move(items)));
    return 0;
  }
  if (drifts->empty()) {
    std::printf("No drift recorded%s.\n", env.empty() ? "" : (" in environment " + env).c_str());
    return 0;
  }
  std::printf("%-5s %-18s %-32s %-20s %-9s %-12s %-6s %s\n", "ID", "ENVIRONMENT", "RESOURCE",
              "ONSET", "DURATION", "RESOLVED BY", "FIXES", "ACTOR");
  for (const auto& d : *drifts) {
    std::printf("%-5lld %-18s %-32s %-20s %-9s %-12s %-6lld %s\n", static_cast<long long>(d.id),
                d.environment.c_str(), d.address.c_str(), FormatTime(d.onset).c_str(),
                Duration((d.resolved_at ? d.resolved_at : now) - d.onset).c_str(),
                d.resolved_at ? d.resolution.c_str() : "(open)",
                static_cast<long long>(d.remediations), d.actor.empty() ? "-" : d.actor.c_str());
  }
  return 0;
}

int RunApply(Workspace& ws, const ApplyFlags& flags, bool destroy) {
  const bool interactive = IsTerminal(stdin) && IsTerminal(stderr);
  if (!flags.auto_approve && flags.plan_file.empty() && !interactive) {
    return Fail(std::string(destroy ? "destroy" : "apply") +
                " needs --auto-approve when not run on a terminal");
  }
  const std::string& env = ws.selection().env;
  if (!ws.StateHasEnvironment(env) || ws.selection().worktree) {
    // Nothing is written (not even a lock) for declarations that are not valid.
    Diagnostics diags;
    Result<config::Environment*> checked = ws.Evaluate(env, true, false, diags);
    if (!checked.ok()) {
      if (diags.empty()) return Fail(checked.error().message);
      PrintDiagnostics(diags, false);
      return 1;
    }
    if (ws.selection().worktree && (*checked)->match().is_protected()) {
      return Fail("environment " + env +
                  " is protected: uncommitted changes (--worktree) are never applied to it; "
                  "commit them and apply the commit");
    }
  }
  // Notifications are delivered after the lock is released (declared before it, destroyed
  // after it); what is not delivered within a few seconds stays in the outbox for the next run.
  std::unique_ptr<notify::Dispatcher> dispatcher;
  struct Flush {
    std::unique_ptr<notify::Dispatcher>& d;
    ~Flush() {
      if (!d) return;
      Result<notify::Dispatcher::Report> sent = d->DeliverDue(5);
      if (!sent.ok()) {
        std::fprintf(stderr, "warning: notifications: %s\n", sent.error().message.c_str());
      } else if (sent->failed > 0) {
        std::fprintf(stderr,
                     "warning: %d notification(s) could not be delivered; they are retried by "
                     "the next run (see `driftless notify status`)\n",
                     sent->failed);
      }
    }
  } flush{dispatcher};
  Result<state::Lock> lock = TakeLock(ws, env, destroy ? "destroy" : "apply");
  if (!lock.ok()) return Fail(lock.error().message);
  state::StateStore* store = *ws.State();
  struct Unlock {
    state::StateStore* s;
    state::Lock* l;
    ~Unlock() { (void)s->ReleaseLock(*l); }
  } unlock{store, &*lock};

  Diagnostics diags;
  std::vector<Step> steps;
  if (!destroy) {
    Result<std::vector<Step>> planned = PlanSteps(ws, diags);
    if (!planned.ok()) {
      PrintDiagnostics(diags, false);
      return Fail(planned.error().message);
    }
    steps = std::move(*planned);
  }
  Result<plan::Plan> plan = ws.Plan(env, destroy, diags);
  if (!plan.ok()) {
    if (diags.empty()) return Fail(plan.error().message);
    PrintDiagnostics(diags, false);
    return 1;
  }
  plan->steps = DescribeSteps(steps);
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
  if (!plan->HasChanges() && steps.empty()) {
    // Nothing to change; in a repository the environment still moves to the commit, so that
    // history (and `env list`) says which commit it runs.
    bool record = false;
    if (!destroy && !ws.selection().worktree && ws.selection().commit) {
      Result<std::string> applied = ws.AppliedCommit(env);
      record = applied.ok() && *applied != ws.selection().commit->id;
    }
    if (!record) {
      std::printf("No changes. Environment %s matches its declarations.\n",
                  plan->environment.c_str());
      return 0;
    }
  }
  {
    Diagnostics sink_diags;
    Result<std::unique_ptr<notify::Dispatcher>> made = MakeDispatcher(ws, sink_diags);
    if (!made.ok()) {
      PrintDiagnostics(sink_diags, false);
      return Fail(made.error().message);
    }
    dispatcher = std::move(*made);
  }
  // Hands an event to the sinks; a state failure here never fails the apply.
  auto publish = [&](const std::string& type, std::vector<std::pair<std::string, Value>> fields) {
    if (!dispatcher) return;
    fields.emplace_back("actor", Value::String(CurrentIdentity().UserAtHost()));
    fields.emplace_back("kind", Value::String(destroy ? "destroy" : "apply"));
    Status s = dispatcher->Publish(notify::MakeEvent(type, env, "", fields));
    if (!s.ok()) std::fprintf(stderr, "warning: notifications: %s\n", s.error().message.c_str());
  };
  std::printf("Environment %s (%s)\n\n", plan->environment.c_str(), plan->source.c_str());
  {
    TraceSpan span("show the plan");
    std::fputs(plan::RenderPlan(*plan, ro).c_str(), stdout);
    std::fflush(stdout);
  }
  if (!flags.auto_approve && flags.plan_file.empty()) {
    if (!Confirm(std::string("\nDo you want to ") + (destroy ? "destroy" : "apply") +
                 " these changes to environment " + plan->environment + "?")) {
      std::fprintf(stderr, "Cancelled; nothing was changed.\n");
      return 1;
    }
  }
  std::signal(SIGINT, OnInterrupt);
  std::signal(SIGTERM, OnInterrupt);
  struct RestoreSignals {
    ~RestoreSignals() {
      std::signal(SIGINT, SIG_DFL);
      std::signal(SIGTERM, SIG_DFL);
    }
  } restore;
  const std::optional<source::CommitInfo> target = ws.selection().commit;
  const bool worktree = ws.selection().worktree;
  // Applies one plan and records it; false when it did not succeed.
  auto execute = [&](plan::Plan p, const std::optional<source::CommitInfo>& commit,
                     const std::string& note, apply::ApplyResult* out) -> Status {
    ProgressLine progress(destroy ? "destroying" : "applying");
    apply::ApplyOptions options;
    options.parallelism = ws.flags().parallelism;
    options.kind = destroy ? "destroy" : "apply";
    options.lease_seconds = ws.flags().lease_seconds;
    options.cancel = &g_cancel;
    if (commit) {
      options.commit_subject = commit->subject;
      options.commit_author = commit->author;
    }
    if (!note.empty()) options.commit_subject += " (" + note + ")";
    options.on_progress = [&](const apply::Progress& pr) {
      progress.Update(pr.done, pr.total, pr.address);
    };
    const Value commit_id = Value::String(commit ? commit->id : "");
    publish("apply.started", {{"commit", commit_id}, {"summary", Value::String(p.Summary())}});
    const auto drifted = DriftedOf(p);
    Result<apply::ApplyResult> result =
        apply::Apply(*ws.environment(), std::move(p), *store, *lock, options);
    progress.Done();
    if (!result.ok()) {
      publish("apply.failed",
              {{"commit", commit_id}, {"error", Value::String(result.error().message)}});
      return result.error();
    }
    {
      Value::List errors;
      for (const auto& e : result->errors) errors.push_back(Value::String(e));
      std::vector<std::pair<std::string, Value>> fields = {
          {"commit", commit_id},
          {"apply", Value::Int(result->apply_id)},
          {"summary", Value::String(result->summary)}};
      if (!errors.empty()) fields.emplace_back("errors", Value::MakeList(std::move(errors)));
      const bool ok = result->status == "succeeded";
      publish(ok ? "apply.succeeded" : "apply.failed", fields);
      if (ok && destroy) publish("env.destroyed", fields);
    }
    ResolveAppliedDrift(*store, env, drifted, *result, "apply");
    *out = std::move(*result);
    return Status::Ok();
  };
  auto report = [](const apply::ApplyResult& r, const std::string& what) {
    for (const auto& e : r.errors) std::fprintf(stderr, "error: %s\n", e.c_str());
    std::printf("Apply #%lld%s %s: %s.\n", static_cast<long long>(r.apply_id), what.c_str(),
                r.status.c_str(), r.summary.c_str());
  };

  std::string last_good = "the commit it was at";
  for (size_t i = 0; i < steps.size(); ++i) {
    const Step& step = steps[i];
    std::string what = " (step " + std::to_string(i + 1) + " of " +
                       std::to_string(steps.size() + 1) + ", commit " + step.commit.short_id +
                       (step.note.empty() ? "" : ", " + step.note) + ")";
    Status used = ws.UseCommit(step.commit);
    if (!used.ok()) return Fail(used.error().message);
    Workspace::PlanRequest request;
    request.only = &step.addresses;
    request.adjust = [&step](config::Environment& e) { return ApplyOverrides(e, step.overrides); };
    Diagnostics step_diags;
    Result<plan::Plan> step_plan = ws.Plan(env, request, step_diags);
    if (!step_plan.ok() || step_plan->problems.HasErrors()) {
      PrintDiagnostics(step_plan.ok() ? step_plan->problems : step_diags, false);
      return Fail("step " + std::to_string(i + 1) + " (commit " + step.commit.short_id +
                  ") could not be planned: " +
                  (step_plan.ok() ? std::string("see above") : step_plan.error().message) +
                  "; environment " + env + " stays at " + last_good);
    }
    apply::ApplyResult r;
    Status s = execute(std::move(*step_plan), step.commit,
                       step.note.empty() ? "stepwise upgrade" : step.note, &r);
    if (!s.ok()) return Fail(s.error().message);
    std::printf("\n");
    report(r, what);
    if (r.status != "succeeded") {
      return Fail("stopped at step " + std::to_string(i + 1) + " of " +
                  std::to_string(steps.size() + 1) + " (commit " + step.commit.short_id + " " +
                  step.commit.subject + "); environment " + env + " stays at " + last_good +
                  ", and the later steps were not applied");
    }
    last_good = "commit " + step.commit.short_id + " (" + step.commit.subject + ")";
  }
  if (!steps.empty()) {
    // The final step, planned again against the state the steps left.
    Status used = ws.UseCommit(*target);
    if (!used.ok()) return Fail(used.error().message);
    Diagnostics final_diags;
    plan = ws.Plan(env, false, final_diags);
    if (!plan.ok() || plan->problems.HasErrors()) {
      PrintDiagnostics(plan.ok() ? plan->problems : final_diags, false);
      return Fail("the final step could not be planned; environment " + env + " stays at " +
                  last_good);
    }
  }
  apply::ApplyResult r;
  Status s = execute(std::move(*plan), target, worktree ? "working tree" : "", &r);
  if (!s.ok()) return Fail(s.error().message);
  std::printf("\n");
  report(r, steps.empty() ? "" : " (final step, commit " + target->short_id + ")");
  if (r.status != "succeeded" && !steps.empty()) {
    std::fprintf(stderr, "error: the final step failed; environment %s stays at %s\n", env.c_str(),
                 last_good.c_str());
  }
  return r.status == "succeeded" ? 0 : 1;
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

int RunStateImport(Workspace& ws, const std::string& env, const std::string& address,
                   const std::string& id) {
  Diagnostics diags;
  Result<config::Environment*> evaluated = ws.Evaluate(env, true, true, diags);
  if (!evaluated.ok()) {
    PrintDiagnostics(diags, ws.flags().json);
    return Fail(evaluated.error().message + "; nothing was imported");
  }
  Result<state::Lock> lock = TakeLock(ws, env, "state import");
  if (!lock.ok()) return Fail(lock.error().message);
  apply::ImportRequest request;
  request.address = address;
  request.id = id;
  if (const auto& commit = ws.selection().commit) {
    request.commit_subject = commit->subject;
    request.commit_author = commit->author;
  }
  Result<apply::ImportResult> done = apply::Import(**evaluated, **ws.State(), *lock, request);
  (void)(*ws.State())->ReleaseLock(*lock);
  if (!done.ok()) return Fail(done.error().message);
  const std::optional<plan::Change>& next = done->next;
  const bool noop = !next || next->action == plan::Action::kNoop;
  if (ws.flags().json) {
    Value o = Value::MakeObject();
    o.Set("address", Value::String(address));
    o.Set("id", Value::String(id));
    o.Set("environment", Value::String(env));
    o.Set("target", Value::String(done->target));
    o.Set("apply_id", Value::Int(done->apply_id));
    o.Set("attributes", value::Redact(done->attributes));
    o.Set("matches", Value::Bool(done->matches));
    o.Set("next_action",
          Value::String(noop ? "no-op" : std::string(plan::ActionName(next->action))));
    o.Set("next_reason", Value::String(noop ? "" : next->reason));
    o.Set("next_diff", Value::String(noop ? "" : next->diff));
    PrintJson(o);
  } else {
    std::printf(
        "Imported %s from %s (ID %s) into the state of environment %s (#%lld); the "
        "object itself was not changed.\n",
        address.c_str(), done->where.c_str(), id.c_str(), env.c_str(),
        static_cast<long long>(done->apply_id));
    if (noop) {
      std::printf("The next plan leaves it unchanged: the object is as declared.\n");
    } else {
      std::printf("The next plan will %s it (%s):\n%s",
                  std::string(plan::ActionName(next->action)).c_str(), next->reason.c_str(),
                  next->diff.c_str());
    }
  }
  if (done->problems.HasErrors()) {
    PrintDiagnostics(done->problems, false);
    return 1;
  }
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
  o.Set("commit_subject", Value::String(a.commit_subject));
  o.Set("commit_author", Value::String(a.commit_author));
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
  std::printf("%-5s %-20s %-18s %-20s %-9s %-11s %-40s %s\n", "ID", "WHEN", "ENVIRONMENT", "WHO",
              "KIND", "STATUS", "COMMIT", "SUMMARY");
  for (const auto& a : *applies) {
    std::string commit = a.commit.empty() ? "-" : a.commit.substr(0, 7) + " " + a.commit_subject;
    if (commit.size() > 40) commit = commit.substr(0, 37) + "...";
    std::printf("%-5lld %-20s %-18s %-20s %-9s %-11s %-40s %s\n", static_cast<long long>(a.id),
                FormatTime(a.started_at).c_str(), a.environment.c_str(),
                (a.user + "@" + a.host).c_str(), a.kind.c_str(), a.status.c_str(), commit.c_str(),
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
  if (!a.commit.empty()) {
    std::printf("  commit:   %s %s\n", a.commit.c_str(), a.commit_subject.c_str());
    if (!a.commit_author.empty()) std::printf("  author:   %s\n", a.commit_author.c_str());
  }
  std::printf("  status:   %s (%s)\n\n", a.status.c_str(), a.summary.c_str());
  for (const auto& c : a.changes) {
    std::printf("  %-8s %-8s %s%s\n", c.status.c_str(), c.action.c_str(), c.address.c_str(),
                c.error.empty() ? "" : ("  — " + c.error).c_str());
    if (!c.diff.empty()) std::fputs(plan::ColorDiff(c.diff, color, 6).c_str(), stdout);
  }
  return 0;
}

namespace {

// One row of `env list`.
struct EnvRow {
  std::string name;
  std::string branch;   // "" in a folder; "(gone)" when no branch maps to it any more
  std::string head;     // the branch's head, short
  std::string applied;  // the commit last applied, short ("" when never)
  int64_t behind = -1;  // commits the branch head is ahead of the applied commit; -1: unknown
  bool is_protected = false;
  int64_t serial = 0;
  size_t resources = 0;
  std::string last_apply = "never";
  std::string status = "-";
};

std::string Short(const std::string& id) { return id.substr(0, 7); }

Result<std::vector<EnvRow>> EnvRows(Workspace& ws) {
  Result<state::StateStore*> store = ws.State();
  if (!store.ok()) return store.error();
  auto envs = (*store)->ListEnvironments();
  if (!envs.ok()) return envs.error();
  Result<const std::vector<BranchEnvironment>*> branches = ws.BranchEnvironments();
  if (!branches.ok()) return branches.error();
  Result<source::GitRepository*> repo = ws.Repo();
  if (!repo.ok()) return repo.error();
  std::map<std::string, EnvRow> rows;
  for (const auto& be : **branches) {
    EnvRow& r = rows[be.match.name];
    r.name = be.match.name;
    r.branch = be.branch.name;
    r.head = be.branch.head.short_id;
    r.is_protected = be.match.is_protected();
    r.status = "not applied yet";
  }
  for (const auto& e : *envs) {
    EnvRow& r = rows[e.name];
    r.name = e.name;
    r.serial = e.serial;
    if (*repo != nullptr && r.branch.empty()) r.branch = "(gone)";
  }
  for (auto& [name, r] : rows) {
    auto resources = (*store)->ListResources(name);
    auto last = (*store)->ListApplies(name, 1);
    auto lock = (*store)->GetLock(name);
    r.resources = resources.ok() ? resources->size() : 0;
    if (last.ok() && !last->empty()) {
      r.last_apply = FormatTime((*last)[0].started_at);
      r.status = (*last)[0].kind == "apply" ? (*last)[0].status
                                            : (*last)[0].kind + " " + (*last)[0].status;
    }
    Result<std::string> applied = ws.AppliedCommit(name);
    if (applied.ok()) r.applied = Short(*applied);
    if (*repo != nullptr && applied.ok() && !applied->empty() && !r.head.empty()) {
      for (const auto& be : **branches) {
        if (be.match.name != name) continue;
        Result<int64_t> n = (*repo)->CountBetween(*applied, be.branch.head.id);
        if (n.ok()) r.behind = *n;
      }
    }
    if (r.branch == "(gone)" && r.resources > 0) r.status += ", branch deleted: env prune";
    if (lock.ok() && *lock) r.status += " (locked by " + (*lock)->holder.UserAtHost() + ")";
  }
  std::vector<EnvRow> out;
  for (auto& [name, r] : rows) out.push_back(std::move(r));
  return out;
}

}  // namespace

int RunEnvList(Workspace& ws) {
  Result<std::vector<EnvRow>> rows = EnvRows(ws);
  if (!rows.ok()) return Fail(rows.error().message);
  if (ws.flags().json) {
    Value::List items;
    for (const auto& r : *rows) {
      Value o = Value::MakeObject();
      o.Set("name", Value::String(r.name));
      o.Set("branch", Value::String(r.branch));
      o.Set("head", Value::String(r.head));
      o.Set("applied_commit", Value::String(r.applied));
      o.Set("behind", r.behind >= 0 ? Value::Int(r.behind) : Value::Null());
      o.Set("protected", Value::Bool(r.is_protected));
      o.Set("serial", Value::Int(r.serial));
      o.Set("resources", Value::Int(static_cast<int64_t>(r.resources)));
      o.Set("last_apply", Value::String(r.last_apply));
      o.Set("status", Value::String(r.status));
      items.push_back(std::move(o));
    }
    PrintJson(Value::MakeList(std::move(items)));
    return 0;
  }
  std::printf("%-24s %-22s %-8s %-8s %-7s %-10s %-20s %s\n", "ENVIRONMENT", "BRANCH", "APPLIED",
              "HEAD", "BEHIND", "RESOURCES", "LAST APPLY", "STATUS");
  for (const auto& r : *rows) {
    std::string name = r.name + (r.is_protected ? " *" : "");
    std::printf("%-24s %-22s %-8s %-8s %-7s %-10zu %-20s %s\n", name.c_str(),
                r.branch.empty() ? "-" : r.branch.c_str(),
                r.applied.empty() ? "-" : r.applied.c_str(), r.head.empty() ? "-" : r.head.c_str(),
                r.behind < 0 ? "-" : std::to_string(r.behind).c_str(), r.resources,
                r.last_apply.c_str(), r.status.c_str());
  }
  bool any_protected = false;
  for (const auto& r : *rows) any_protected |= r.is_protected;
  if (any_protected) std::printf("* protected\n");
  return 0;
}

int RunEnvPrune(Workspace& ws, bool auto_approve) {
  Result<source::GitRepository*> repo = ws.Repo();
  if (!repo.ok()) return Fail(repo.error().message);
  if (*repo == nullptr) return Fail("env prune needs a Git repository: environments are branches");
  Result<std::vector<EnvRow>> rows = EnvRows(ws);
  if (!rows.ok()) return Fail(rows.error().message);
  Result<const std::vector<BranchEnvironment>*> branches = ws.BranchEnvironments();
  if (!branches.ok()) return Fail(branches.error().message);
  const int64_t now = NowUnix();
  int failures = 0, candidates = 0;
  for (const EnvRow& r : *rows) {
    if (r.resources == 0) continue;  // nothing to destroy (never applied, or destroyed already)
    std::string reason;
    bool is_protected = r.is_protected;
    if (r.branch == "(gone)") {
      reason = "its branch is gone";
      // Protection is read from the commit it runs (the branch's rules are gone with it).
      Workspace probe(ws.flags());
      Diagnostics d;
      Result<config::Environment*> e = MakeError("no commit to read");
      if (probe.Select(r.name).ok()) e = probe.Evaluate(r.name, false, false, d);
      if (!e.ok()) {
        std::printf(
            "%s: %s, but its declarations at the last applied commit cannot be read: "
            "not destroyed\n",
            r.name.c_str(), reason.c_str());
        ++failures;
        continue;
      }
      is_protected = (*e)->match().is_protected();
    } else {
      for (const auto& be : **branches) {
        if (be.match.name != r.name) continue;
        int64_t ttl = be.match.ttl_seconds();
        if (ttl > 0 && now - be.branch.head.time > ttl) {
          reason = "no commit on " + be.branch.name + " for " +
                   std::to_string((now - be.branch.head.time) / 3600) + "h (ttl " +
                   std::to_string(ttl / 3600) + "h)";
        }
      }
    }
    if (reason.empty()) continue;
    ++candidates;
    if (is_protected) {
      std::printf(
          "%s: %s, but it is protected: not destroyed (use `driftless destroy %s` to "
          "destroy it by hand)\n",
          r.name.c_str(), reason.c_str(), r.name.c_str());
      continue;
    }
    if (!auto_approve) {
      std::printf("%s: %s: would be destroyed (%zu resources); run with --auto-approve\n",
                  r.name.c_str(), reason.c_str(), r.resources);
      continue;
    }
    std::printf("%s: %s: destroying %zu resources\n", r.name.c_str(), reason.c_str(), r.resources);
    std::fflush(stdout);
    Workspace each(ws.flags());
    Status s = each.Select(r.name);
    if (!s.ok()) {
      std::fprintf(stderr, "error: %s: %s\n", r.name.c_str(), s.error().message.c_str());
      ++failures;
      continue;
    }
    ApplyFlags af;
    af.env = r.name;
    af.auto_approve = true;
    if (RunApply(each, af, true) != 0) ++failures;
  }
  if (candidates == 0) std::printf("Nothing to prune.\n");
  return failures == 0 ? 0 : 1;
}

int RunEnvShow(Workspace& ws, const std::string& env) {
  Result<state::StateStore*> store = ws.State();
  if (!store.ok()) return Fail(store.error().message);
  auto row = (*store)->GetEnvironment(env);
  if (!row.ok()) return Fail(row.error().message);
  if (!*row) return Fail("no environment " + env + " in state " + ws.StateDisplay());
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
  if (Result<std::vector<EnvRow>> rows = EnvRows(ws); rows.ok()) {
    for (const auto& r : *rows) {
      if (r.name != env || r.branch.empty()) continue;
      std::printf("  branch:    %s%s\n  applied:   %s\n  head:      %s%s\n", r.branch.c_str(),
                  r.is_protected ? " (protected)" : "", r.applied.empty() ? "-" : r.applied.c_str(),
                  r.head.empty() ? "-" : r.head.c_str(),
                  r.behind > 0
                      ? (" (" + std::to_string(r.behind) + " commits ahead of applied)").c_str()
                      : "");
    }
  }
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
