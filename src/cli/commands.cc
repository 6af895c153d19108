#include "cli/commands.h"

#include <csignal>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "apply/applier.h"
#include "apply/import.h"
#include "base/file_util.h"
#include "base/strings.h"
#include "base/trace.h"
#include "cli/terminal.h"
#include "cli/views.h"
#include "engine/apply.h"
#include "engine/drift.h"
#include "engine/environments.h"
#include "engine/notifications.h"
#include "engine/plan.h"
#include "engine/prune.h"
#include "engine/unlock.h"
#include "plan/render.h"
#include "plan/stored.h"
#include "state/lock_text.h"
#include "value/diff.h"
#include "value/render.h"

namespace driftless::cli {

using engine::CheckSinks;
using value::Value;

namespace {

// Prints a plan for people as it is rendered, so that its text is never held whole.
void PrintPlan(const plan::Plan& plan, const plan::RenderOptions& options) {
  plan::RenderPlanTo(plan, options, [](std::string_view piece) {
    std::fwrite(piece.data(), 1, piece.size(), stdout);
  });
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

// Prints why an operation failed: its declaration problems, then its message. Returns 1.
int PrintFailure(const engine::Failure& failure, bool json) {
  if (!failure.diagnostics.empty()) PrintDiagnostics(failure.diagnostics, json);
  if (!failure.message.empty()) Fail(failure.message);
  return 1;
}

// A command that is to wait for a lock (--lock-timeout) and finds it held says so once on
// standard error, so that one that sits still tells why and for whom: "waiting up to 300s for
// the lock of environment X, held by USER@HOST (pid N) for OP since T".
void PrintLockWait(const state::Lock& holder, double timeout_seconds) {
  std::fprintf(stderr, "waiting up to %s for the lock of environment %s, held by %s\n",
               HumanSeconds(timeout_seconds).c_str(), holder.environment.c_str(),
               state::DescribeHolder(holder).c_str());
  std::fflush(stderr);
}

// Tells of a lock wait as PrintLockWait does.
class LockWaitPrinter : public engine::Observer {
 public:
  void OnLockWait(const state::Lock& holder, double timeout_seconds) override {
    PrintLockWait(holder, timeout_seconds);
  }
};

}  // namespace

int RunValidate(Workspace& ws, const std::string& env, const Output& out) {
  Diagnostics diags;
  Result<config::Environment*> evaluated = ws.Evaluate(env, false, false, diags);
  if (!evaluated.ok() || diags.HasErrors()) {
    PrintDiagnostics(diags, out.json);
    return 1;
  }
  CheckSinks((*evaluated)->decls(), diags);
  if (diags.HasErrors()) {
    PrintDiagnostics(diags, out.json);
    return 1;
  }
  size_t n = (*evaluated)->resources().size();
  if (out.json) {
    PrintDiagnostics(diags, true);
  } else {
    PrintDiagnostics(diags, false);
    std::printf("Valid: %zu resource%s, environment %s.\n", n, n == 1 ? "" : "s", env.c_str());
  }
  return 0;
}

int RunPlan(Workspace& ws, const ApplyFlags& flags, const Output& out) {
  engine::PlanRequest request;
  request.env = flags.env;
  request.list_unchanged = out.json || !flags.out.empty();
  engine::PlanReport report = engine::PlanEnvironment(ws, request);
  if (!report.plan) return PrintFailure(report.failure, out.json);
  return ShowPlan(*report.plan, report.HasChanges(), flags, out);
}

int ShowPlan(const plan::Plan& plan, bool has_changes, const ApplyFlags& flags, const Output& out) {
  if (!flags.out.empty()) {
    Status s = WriteFileAtomic(flags.out, value::ToPrettyJson(plan::PlanToJson(plan)) + "\n", 0600);
    if (!s.ok()) return Fail(s.error().message);
  }
  if (out.json) {
    PrintJson(plan::PlanToJson(plan));
  } else {
    PrintPlanText(plan, out);
    if (!flags.out.empty()) std::printf("Saved the plan to %s.\n", flags.out.c_str());
  }
  if (plan.problems.HasErrors()) {
    PrintDiagnostics(plan.problems, false);
    return 1;
  }
  return flags.detailed_exitcode && has_changes ? 2 : 0;
}

void PrintPlanText(const plan::Plan& plan, const Output& out) {
  plan::RenderOptions ro;
  ro.color = UseColor(stdout, out.no_color);
  std::printf("Environment %s (%s)\n\n", plan.environment.c_str(), plan.source.c_str());
  PrintPlan(plan, ro);
}

int RunDrift(Workspace& ws, const std::string& env, bool full, const Output& out) {
  engine::DriftReport report = engine::CheckDrift(ws, env, full);
  if (!report.ok()) return PrintFailure(report.failure, out.json);
  DriftView view;
  view.environment = report.plan->environment;
  view.revision = report.plan->revision;
  view.source = report.plan->source;
  view.checked = report.Checked();
  view.drifted = report.Drifted();
  return ShowDrift(view, out);
}

int ShowDrift(const DriftView& view, const Output& out) {
  const std::vector<const plan::Change*>& drifted = view.drifted;
  auto text = [](const Value& v) { return v.is_null() ? std::string() : value::RenderText(v); };
  // Declared and applied differ too: a change not applied yet (the next apply does both).
  auto pending_diff = [&](const plan::Change& c) {
    if (c.index < 0 || c.planned.is_null() || c.prior.is_null()) return std::string();
    return value::UnifiedDiff(text(c.prior), text(c.planned));
  };
  if (out.json) {
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
    root.Set("environment", Value::String(view.environment));
    root.Set("revision", Value::String(view.revision));
    root.Set("checked", Value::Int(static_cast<int64_t>(view.checked)));
    root.Set("drifted", Value::MakeList(std::move(items)));
    PrintJson(root);
    return drifted.empty() ? 0 : 2;
  }
  bool color = UseColor(stdout, out.no_color);
  std::printf("Environment %s (%s)\n\n", view.environment.c_str(), view.source.c_str());
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
  size_t checked = view.checked;
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

int RunDriftHistory(Workspace& ws, const std::string& env, int limit, const Output& out) {
  Result<state::StateStore*> store = ws.State();
  if (!store.ok()) return Fail(store.error().message);
  auto drifts = (*store)->ListDrift(env, true, limit);
  if (!drifts.ok()) return Fail(drifts.error().message);
  return ShowDriftHistory(*drifts, env, NowUnix(), out);
}

int ShowDriftHistory(const std::vector<state::DriftRecord>& list, const std::string& env,
                     int64_t now, const Output& out) {
  const std::vector<state::DriftRecord>* drifts = &list;
  if (out.json) {
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

namespace {

// Set by SIGINT and SIGTERM while changes are applied; a second one stops the process at once.
engine::StopToken g_stop;

extern "C" void OnInterrupt(int) {
  if (g_stop.Stop()) std::_Exit(130);  // second Ctrl-C: stop now
}

// What the report of one apply calls it: "", " (step 1 of 3, commit abc1234)", " (final ...)".
std::string StepLabel(const engine::StepInfo& step) {
  if (step.count == 1) return "";
  if (step.final) return " (final step, commit " + step.commit->short_id + ")";
  return " (step " + std::to_string(step.index + 1) + " of " + std::to_string(step.count) +
         ", commit " + step.commit->short_id + (step.note.empty() ? "" : ", " + step.note) + ")";
}

// Renders an apply or destroy as text: the plan, the question, progress on a terminal and the
// result of each apply. Ctrl-C stops it once it is approved (signals restored at destruction).
class ApplyPrinter : public engine::Observer {
 public:
  ApplyPrinter(const Output& out, bool confirm, bool destroy)
      : out_(out), confirm_(confirm), destroy_(destroy) {}
  ~ApplyPrinter() override {
    if (!signals_) return;
    std::signal(SIGINT, SIG_DFL);
    std::signal(SIGTERM, SIG_DFL);
  }

  void OnPlan(const plan::Plan& plan) override {
    TraceSpan span("show the plan");
    PrintPlanText(plan, out_);
    std::fflush(stdout);
  }
  bool Approve(const plan::Plan& plan) override {
    if (confirm_ && !Confirm(std::string("\nDo you want to ") + (destroy_ ? "destroy" : "apply") +
                             " these changes to environment " + plan.environment + "?")) {
      std::fprintf(stderr, "Cancelled; nothing was changed.\n");
      return false;
    }
    std::signal(SIGINT, OnInterrupt);
    std::signal(SIGTERM, OnInterrupt);
    signals_ = true;
    return true;
  }
  void OnStepStarted(const engine::StepInfo&) override {
    progress_ = std::make_unique<ProgressLine>(destroy_ ? "destroying" : "applying");
  }
  void OnProgress(const apply::Progress& pr) override {
    if (progress_) progress_->Update(pr.done, pr.total, pr.address);
  }
  void OnStepFinished(const engine::StepResult& step) override {
    if (progress_) progress_->Done();
    progress_.reset();
    if (!step.error.empty()) return;  // the failure says it
    const apply::ApplyResult& r = step.result;
    std::printf("\n");
    for (const auto& e : r.errors) std::fprintf(stderr, "error: %s\n", e.c_str());
    std::printf("Apply #%lld%s %s: %s.\n", static_cast<long long>(r.apply_id),
                StepLabel(step.step).c_str(), r.status.c_str(), r.summary.c_str());
  }
  void OnWarning(const std::string& message) override {
    std::fprintf(stderr, "warning: %s\n", message.c_str());
  }
  void OnLockWait(const state::Lock& holder, double timeout_seconds) override {
    PrintLockWait(holder, timeout_seconds);
  }

 private:
  const Output& out_;
  const bool confirm_;
  const bool destroy_;
  bool signals_ = false;
  std::unique_ptr<ProgressLine> progress_;
};

// Delivers what an apply enqueued, for a few seconds; the rest stays in the outbox for the next
// run.
void DeliverNow(notify::Dispatcher* d) {
  if (d == nullptr) return;
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

// Shows how an apply ended, restores the signals (the printer goes), then delivers the apply's
// notifications. Returns the exit code.
int FinishApply(std::unique_ptr<ApplyPrinter>& printer, const engine::ApplyReport& report,
                const Output& out) {
  int code = 1;
  switch (report.outcome) {
    case engine::ApplyReport::Outcome::kNoChanges:
      std::printf("No changes. Environment %s matches its declarations.\n",
                  report.plan->environment.c_str());
      code = 0;
      break;
    case engine::ApplyReport::Outcome::kNotApproved:
      break;  // said so when asked
    case engine::ApplyReport::Outcome::kInvalid: {
      plan::RenderOptions ro;
      ro.color = UseColor(stdout, out.no_color);
      PrintPlan(*report.plan, ro);
      PrintFailure(report.failure, false);
      break;
    }
    case engine::ApplyReport::Outcome::kApplied:
    case engine::ApplyReport::Outcome::kFailed:
      if (report.failure.any()) PrintFailure(report.failure, false);
      code = report.ok() ? 0 : 1;
      break;
  }
  printer.reset();
  DeliverNow(report.dispatcher.get());
  return code;
}

}  // namespace

int RunApply(Workspace& ws, const ApplyFlags& flags, bool destroy, const Output& out) {
  const bool interactive = IsTerminal(stdin) && IsTerminal(stderr);
  if (!flags.auto_approve && flags.plan_file.empty() && !interactive) {
    return Fail(std::string(destroy ? "destroy" : "apply") +
                " needs --auto-approve when not run on a terminal");
  }
  engine::ApplyRequest request;
  request.destroy = destroy;
  request.plan_file = flags.plan_file;
  request.stop = &g_stop;
  auto printer =
      std::make_unique<ApplyPrinter>(out, !flags.auto_approve && flags.plan_file.empty(), destroy);
  engine::ApplyReport report = engine::ApplyEnvironment(ws, request, *printer);
  return FinishApply(printer, report, out);
}

int RunStateList(Workspace& ws, const std::string& env, const Output& out) {
  Result<state::StateStore*> store = ws.State();
  if (!store.ok()) return Fail(store.error().message);
  auto rows = (*store)->ListResources(env);
  if (!rows.ok()) return Fail(rows.error().message);
  if (out.json) {
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

int RunStateShow(Workspace& ws, const std::string& env, const std::string& address,
                 const Output& out) {
  Result<state::StateStore*> store = ws.State();
  if (!store.ok()) return Fail(store.error().message);
  auto row = (*store)->GetResource(env, address);
  if (!row.ok()) return Fail(row.error().message);
  if (!*row) return Fail("no resource " + address + " in the state of environment " + env);
  Result<plan::StoredAttrs> stored = plan::DecodeStored((*row)->attrs_json);
  if (!stored.ok()) return Fail(stored.error().message);
  if (out.json) {
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
  LockWaitPrinter printer;
  Result<state::Lock> lock = engine::TakeLock(ws, env, "state rm", printer);
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

int RunForceUnlock(Workspace& ws, const std::string& env, int64_t lock_id) {
  Result<state::StateStore*> store = ws.State();
  if (!store.ok()) return Fail(store.error().message);
  engine::UnlockRequest request;
  request.env = env;
  request.token = lock_id;
  request.who = CurrentIdentity().UserAtHost();
  Result<state::Lock> released = engine::ForceUnlock(**store, request);
  if (!released.ok()) return Fail(released.error().message);
  std::printf(
      "Released lock %lld of environment %s (held by %s, pid %lld, for %s). Its holder can no "
      "longer write to state; history says what its apply did.\n",
      static_cast<long long>(released->token), env.c_str(), released->holder.UserAtHost().c_str(),
      static_cast<long long>(released->holder.pid), released->operation.c_str());
  return 0;
}

int RunStateImport(Workspace& ws, const std::string& env, const std::string& address,
                   const std::string& id, const Output& out) {
  Diagnostics diags;
  Result<config::Environment*> evaluated = ws.Evaluate(env, true, true, diags);
  if (!evaluated.ok()) {
    PrintDiagnostics(diags, out.json);
    return Fail(evaluated.error().message + "; nothing was imported");
  }
  LockWaitPrinter printer;
  Result<state::Lock> lock = engine::TakeLock(ws, env, "state import", printer);
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
  if (out.json) {
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

int RunHistory(Workspace& ws, const std::string& env, int limit, const Output& out) {
  Result<state::StateStore*> store = ws.State();
  if (!store.ok()) return Fail(store.error().message);
  auto applies = (*store)->ListApplies(env, limit);
  if (!applies.ok()) return Fail(applies.error().message);
  return ShowHistory(*applies, env, out);
}

int ShowHistory(const std::vector<state::ApplyRecord>& list, const std::string& env,
                const Output& out) {
  const std::vector<state::ApplyRecord>* applies = &list;
  if (out.json) {
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

int RunHistoryShow(Workspace& ws, int64_t id, const Output& out) {
  Result<state::StateStore*> store = ws.State();
  if (!store.ok()) return Fail(store.error().message);
  auto apply = (*store)->GetApply(id);
  if (!apply.ok()) return Fail(apply.error().message);
  if (!*apply) return Fail("no apply #" + std::to_string(id));
  const state::ApplyRecord& a = **apply;
  // The server's run that made it, with its author and approvers (none for a command line's).
  Result<std::optional<state::RunRecord>> run = state::FindRunOfApply(**store, a.environment, id);
  if (!run.ok()) return Fail(run.error().message);
  return ShowApplyRecord(a, *run, out);
}

int ShowApplyRecord(const state::ApplyRecord& a, const std::optional<state::RunRecord>& run,
                    const Output& out) {
  if (out.json) {
    Value o = ApplyJson(a);
    if (run.has_value()) {
      const state::RunRecord& r = *run;
      Value rv = Value::MakeObject();
      rv.Set("id", Value::Int(r.run.id));
      rv.Set("action", Value::String(r.run.action));
      rv.Set("author", Value::String(r.run.author));
      rv.Set("plan_hash", Value::String(r.run.plan_hash));
      Value::List approvals;
      for (const state::Approval& ap : r.approvals) {
        Value av = Value::MakeObject();
        av.Set("who", Value::String(ap.who));
        av.Set("decision", Value::String(ap.decision));
        av.Set("comment", Value::String(ap.comment));
        av.Set("plan_hash", Value::String(ap.plan_hash));
        av.Set("time", Value::String(FormatTime(ap.created_at)));
        approvals.push_back(std::move(av));
      }
      rv.Set("approvals", Value::MakeList(std::move(approvals)));
      o.Set("run", std::move(rv));
    } else {
      o.Set("run", Value::Null());
    }
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
  bool color = UseColor(stdout, out.no_color);
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
  if (run.has_value()) {
    const state::RunRecord& r = *run;
    std::printf("  run:      #%lld %s queued by %s, plan %s\n", static_cast<long long>(r.run.id),
                r.run.action.c_str(), r.run.author.c_str(), r.run.plan_hash.substr(0, 12).c_str());
    for (const state::Approval& ap : r.approvals) {
      std::printf("  %-9s %s at %s%s\n", (ap.decision + ":").c_str(), ap.who.c_str(),
                  FormatTime(ap.created_at).c_str(),
                  ap.comment.empty() ? "" : (": " + ap.comment).c_str());
    }
  }
  std::printf("  status:   %s (%s)\n\n", a.status.c_str(), a.summary.c_str());
  for (const auto& c : a.changes) {
    std::printf("  %-8s %-8s %s%s\n", c.status.c_str(), c.action.c_str(), c.address.c_str(),
                c.error.empty() ? "" : ("  — " + c.error).c_str());
    if (!c.diff.empty()) std::fputs(plan::ColorDiff(c.diff, color, 6).c_str(), stdout);
  }
  return 0;
}

void PrintBranchLines(const engine::EnvironmentSummary& r) {
  std::printf(
      "  branch:    %s%s\n  applied:   %s\n  head:      %s%s\n", r.branch.c_str(),
      r.is_protected ? " (protected)" : "", r.applied.empty() ? "-" : r.applied.c_str(),
      r.head.empty() ? "-" : r.head.c_str(),
      r.behind > 0 ? (" (" + std::to_string(r.behind) + " commits ahead of applied)").c_str() : "");
}

int RunEnvList(Workspace& ws, const Output& out) {
  Result<std::vector<engine::EnvironmentSummary>> rows = engine::SummarizeEnvironments(ws);
  if (!rows.ok()) return Fail(rows.error().message);
  return ShowEnvList(*rows, out);
}

int ShowEnvList(const std::vector<engine::EnvironmentSummary>& list, const Output& out) {
  const std::vector<engine::EnvironmentSummary>* rows = &list;
  if (out.json) {
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

namespace {

// Renders a prune: a line per candidate, then each destroy as `destroy` shows it.
class PrunePrinter : public engine::PruneObserver {
 public:
  explicit PrunePrinter(const Output& out) : out_(out) {}

  void OnCandidate(const engine::PruneCandidate& c) override {
    const char* name = c.environment.c_str();
    const char* reason = c.reason.c_str();
    switch (c.decision) {
      case engine::PruneCandidate::Decision::kUnreadable:
        std::printf(
            "%s: %s, but its declarations at the last applied commit cannot be read: "
            "not destroyed\n",
            name, reason);
        break;
      case engine::PruneCandidate::Decision::kProtected:
        std::printf(
            "%s: %s, but it is protected: not destroyed (use `driftless destroy %s` to "
            "destroy it by hand)\n",
            name, reason, name);
        break;
      case engine::PruneCandidate::Decision::kWouldDestroy:
        std::printf("%s: %s: would be destroyed (%zu resources); run with --auto-approve\n", name,
                    reason, c.resources);
        break;
      case engine::PruneCandidate::Decision::kDestroy:
        std::printf("%s: %s: destroying %zu resources\n", name, reason, c.resources);
        std::fflush(stdout);
        break;
    }
  }
  engine::Observer& DestroyObserver(const engine::PruneCandidate&) override {
    printer_ = std::make_unique<ApplyPrinter>(out_, false, true);
    return *printer_;
  }
  void OnDestroyed(const engine::PruneCandidate& c, const std::string& error,
                   const engine::ApplyReport& report) override {
    if (!error.empty()) {
      std::fprintf(stderr, "error: %s: %s\n", c.environment.c_str(), error.c_str());
      return;
    }
    FinishApply(printer_, report, out_);
  }

 private:
  const Output& out_;
  std::unique_ptr<ApplyPrinter> printer_;
};

}  // namespace

int RunEnvPrune(Workspace& ws, bool auto_approve, const Output& out) {
  PrunePrinter printer(out);
  engine::PruneRequest request;
  request.destroy = auto_approve;
  request.stop = &g_stop;
  engine::PruneReport report = engine::Prune(ws, request, printer);
  if (report.failure.any()) return PrintFailure(report.failure, false);
  size_t candidates = 0;
  for (const auto& c : report.candidates) {
    candidates += c.decision != engine::PruneCandidate::Decision::kUnreadable;
  }
  if (candidates == 0) std::printf("Nothing to prune.\n");
  return report.ok() ? 0 : 1;
}

int RunEnvShow(Workspace& ws, const std::string& env, const Output& out) {
  Result<state::StateStore*> store = ws.State();
  if (!store.ok()) return Fail(store.error().message);
  auto row = (*store)->GetEnvironment(env);
  if (!row.ok()) return Fail(row.error().message);
  if (!*row) return Fail("no environment " + env + " in state " + ws.StateDisplay());
  auto resources = (*store)->ListResources(env);
  auto applies = (*store)->ListApplies(env, 5);
  auto lock = (*store)->GetLock(env);
  if (!resources.ok()) return Fail(resources.error().message);
  if (out.json) {
    Value o = Value::MakeObject();
    o.Set("name", Value::String(env));
    o.Set("serial", Value::Int((*row)->serial));
    o.Set("created_at", Value::String(FormatTime((*row)->created_at)));
    Value::List rs;
    for (const auto& r : *resources) rs.push_back(Value::String(r.address));
    o.Set("resources", Value::MakeList(std::move(rs)));
    if (lock.ok() && *lock) {
      o.Set("locked_by", Value::String((*lock)->holder.UserAtHost()));
      o.Set("lock_id", Value::Int((*lock)->token));
    }
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
  if (Result<std::vector<engine::EnvironmentSummary>> rows = engine::SummarizeEnvironments(ws);
      rows.ok()) {
    for (const auto& r : *rows) {
      if (r.name != env || r.branch.empty()) continue;
      PrintBranchLines(r);
    }
  }
  if (lock.ok() && *lock) {
    std::printf("  locked:    by %s (pid %lld) for %s since %s (lock %lld)\n",
                (*lock)->holder.UserAtHost().c_str(), static_cast<long long>((*lock)->holder.pid),
                (*lock)->operation.c_str(), FormatTime((*lock)->acquired_at).c_str(),
                static_cast<long long>((*lock)->token));
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
