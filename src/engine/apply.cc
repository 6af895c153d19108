#include "engine/apply.h"

#include <utility>

#include "base/file_util.h"
#include "base/identity.h"
#include "engine/drift_record.h"
#include "engine/notifications.h"
#include "engine/steps.h"
#include "plan/render.h"
#include "value/render.h"

namespace driftless::engine {

using value::Value;

bool ApplyReport::ok() const {
  if (outcome == Outcome::kNoChanges) return true;
  if (outcome != Outcome::kApplied || steps.empty()) return false;
  for (const StepResult& s : steps) {
    if (!s.succeeded()) return false;
  }
  return true;
}

Status CheckSavedPlan(const std::string& path, const plan::Plan& fresh) {
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

Result<state::Lock> TakeLock(Workspace& ws, const std::string& env, const std::string& operation,
                             Observer& observer) {
  Result<state::StateStore*> store = ws.State();
  if (!store.ok()) return store.error();
  (*store)->SetLockWaitObserver([&observer](const state::Lock& holder, double timeout_seconds) {
    observer.OnLockWait(holder, timeout_seconds);
  });
  Result<state::Lock> lock = (*store)->AcquireLock(
      env, CurrentIdentity(), operation, ws.options().lock_timeout, ws.options().lease_seconds);
  (*store)->SetLockWaitObserver({});
  return lock;
}

namespace {

// One apply or destroy: the state it carries between its steps.
class ApplyRun {
 public:
  ApplyRun(Workspace& ws, const ApplyRequest& request, Observer& observer)
      : ws_(ws),
        request_(request),
        observer_(observer),
        env_(ws.selection().env),
        kind_(!request.kind.empty() ? request.kind
              : request.destroy     ? "destroy"
                                    : "apply") {
    report_.environment = env_;
  }

  ApplyReport Run() {
    if (!Check()) return std::move(report_);
    Result<state::Lock> lock = TakeLock(ws_, env_, kind_, observer_);
    if (!lock.ok()) return Fail({}, lock.error().message);
    store_ = *ws_.State();
    lock_ = &*lock;
    Locked();
    (void)store_->ReleaseLock(*lock);
    return std::move(report_);
  }

 private:
  ApplyReport Fail(Diagnostics diags, std::string message) {
    report_.failure = {std::move(diags), std::move(message)};
    return std::move(report_);
  }
  void SetFailure(Diagnostics diags, std::string message) {
    report_.failure = {std::move(diags), std::move(message)};
  }

  // Before the lock: nothing is written (not even a lock) for declarations that are not valid,
  // and uncommitted files never reach a protected environment.
  bool Check() {
    if (ws_.StateHasEnvironment(env_) && !ws_.selection().worktree) return true;
    Diagnostics diags;
    Result<config::Environment*> checked = ws_.Evaluate(env_, true, false, diags);
    if (!checked.ok()) {
      std::string message = diags.empty() ? checked.error().message : "";
      SetFailure(std::move(diags), std::move(message));
      return false;
    }
    if (ws_.selection().worktree && (*checked)->match().is_protected()) {
      SetFailure({}, "environment " + env_ +
                         " is protected: uncommitted changes (--worktree) are never applied to "
                         "it; commit them and apply the commit");
      return false;
    }
    return true;
  }

  // Everything done under the lock.
  void Locked() {
    Diagnostics diags;
    std::vector<Step> steps;
    if (!request_.destroy && request_.only == nullptr) {
      Result<std::vector<Step>> planned = PlanSteps(ws_, diags);
      if (!planned.ok()) return SetFailure(std::move(diags), planned.error().message);
      steps = std::move(*planned);
    }
    Workspace::PlanRequest plan_request;
    plan_request.destroy = request_.destroy;
    plan_request.only = request_.only;
    // Lean creates (plain creates held as indices, their Changes made when shown and recorded):
    // this plan is used while the workspace keeps its environment; with steps, the workspace
    // evaluates other commits before the final plan, so it is made whole.
    plan_request.lean_creates = steps.empty();
    Result<plan::Plan> plan = ws_.Plan(env_, plan_request, diags);
    if (!plan.ok()) {
      std::string message = diags.empty() ? plan.error().message : "";
      return SetFailure(std::move(diags), std::move(message));
    }
    plan->steps = DescribeSteps(steps);
    report_.plan_hash = plan->Hash();
    if (!request_.plan_file.empty()) {
      Status s = CheckSavedPlan(request_.plan_file, *plan);
      if (!s.ok()) return SetFailure({}, s.error().message);
    }
    if (!request_.plan_hash.empty() && request_.plan_hash != report_.plan_hash) {
      return SetFailure({}, "the plan of environment " + env_ +
                                " changed since it was made (plan hash " +
                                request_.plan_hash.substr(0, 12) + ", now " +
                                report_.plan_hash.substr(0, 12) + "); nothing was changed");
    }
    if (plan->problems.HasErrors()) {
      report_.outcome = ApplyReport::Outcome::kInvalid;
      Diagnostics problems = plan->problems;
      plan->CompleteAll();  // the report outlives this environment
      report_.plan = std::move(*plan);
      return SetFailure(std::move(problems), "");
    }
    if (!plan->HasChanges() && steps.empty()) {
      // Nothing to change; in a repository the environment still moves to the commit, so that
      // history (and `env list`) says which commit it runs.
      bool record = false;
      if (!request_.destroy && !ws_.selection().worktree && ws_.selection().commit) {
        Result<std::string> applied = ws_.AppliedCommit(env_);
        record = applied.ok() && *applied != ws_.selection().commit->id;
      }
      if (!record) {
        report_.outcome = ApplyReport::Outcome::kNoChanges;
        plan->CompleteAll();
        report_.plan = std::move(*plan);
        return;
      }
    }
    {
      Diagnostics sink_diags;
      Result<std::unique_ptr<notify::Dispatcher>> made = MakeDispatcher(ws_, sink_diags);
      if (!made.ok()) return SetFailure(std::move(sink_diags), made.error().message);
      report_.dispatcher = std::move(*made);
    }
    observer_.OnPlan(*plan);
    if (!observer_.Approve(*plan)) {
      report_.outcome = ApplyReport::Outcome::kNotApproved;
      return;
    }
    ApplySteps(steps, std::move(*plan));
  }

  // The steps, then the selected commit's own plan.
  void ApplySteps(const std::vector<Step>& steps, plan::Plan plan) {
    const std::optional<source::CommitInfo> target = ws_.selection().commit;
    const bool worktree = ws_.selection().worktree;
    const size_t count = steps.size() + 1;
    std::string last_good = "the commit it was at";
    for (size_t i = 0; i < steps.size(); ++i) {
      const Step& step = steps[i];
      if (Stopped(i, count, last_good)) return;
      Status used = ws_.UseCommit(step.commit);
      if (!used.ok()) return SetFailure({}, used.error().message);
      Workspace::PlanRequest request;
      request.only = &step.addresses;
      request.adjust = [&step](config::Environment& e) {
        return ApplyOverrides(e, step.overrides);
      };
      Diagnostics step_diags;
      Result<plan::Plan> step_plan = ws_.Plan(env_, request, step_diags);
      if (!step_plan.ok() || step_plan->problems.HasErrors()) {
        return SetFailure(
            step_plan.ok() ? step_plan->problems : std::move(step_diags),
            "step " + std::to_string(i + 1) + " (commit " + step.commit.short_id +
                ") could not be planned: " +
                (step_plan.ok() ? std::string("see above") : step_plan.error().message) +
                "; environment " + env_ + " stays at " + last_good);
      }
      StepInfo info{i, count, false, step.commit, step.note};
      const StepResult& r =
          Execute(info, std::move(*step_plan), step.note.empty() ? "stepwise upgrade" : step.note);
      if (!r.error.empty()) return SetFailure({}, r.error);
      if (!r.succeeded()) {
        return SetFailure({}, "stopped at step " + std::to_string(i + 1) + " of " +
                                  std::to_string(count) + " (commit " + step.commit.short_id + " " +
                                  step.commit.subject + "); environment " + env_ + " stays at " +
                                  last_good +
                                  ", and the later steps were not "
                                  "applied");
      }
      last_good = "commit " + step.commit.short_id + " (" + step.commit.subject + ")";
    }
    if (!steps.empty()) {
      if (Stopped(steps.size(), count, last_good)) return;
      // The final step, planned again against the state the steps left.
      Status used = ws_.UseCommit(*target);
      if (!used.ok()) return SetFailure({}, used.error().message);
      Diagnostics final_diags;
      Result<plan::Plan> again = ws_.Plan(env_, false, final_diags);
      if (!again.ok() || again->problems.HasErrors()) {
        return SetFailure(
            again.ok() ? again->problems : std::move(final_diags),
            "the final step could not be planned; environment " + env_ + " stays at " + last_good);
      }
      plan = std::move(*again);
    }
    if (steps.empty() && Stopped(0, count, last_good)) return;
    StepInfo info{steps.size(), count, true, target, ""};
    const StepResult& r = Execute(info, std::move(plan), worktree ? "working tree" : "");
    if (!r.error.empty()) return SetFailure({}, r.error);
    report_.outcome = ApplyReport::Outcome::kApplied;
    if (!r.succeeded() && !steps.empty()) {
      SetFailure({}, "the final step failed; environment " + env_ + " stays at " + last_good);
    }
  }

  // True (with the failure set) when the caller asked to stop before step `index`.
  bool Stopped(size_t index, size_t count, const std::string& last_good) {
    if (request_.stop == nullptr || !request_.stop->stop_requested()) return false;
    if (count == 1) {
      SetFailure({}, "stopped before the " + kind_ + "; nothing was changed");
    } else {
      SetFailure({}, "stopped before step " + std::to_string(index + 1) + " of " +
                         std::to_string(count) + "; environment " + env_ + " stays at " +
                         last_good);
    }
    return true;
  }

  // Hands an event to the observer and the sinks; a state failure here never fails the apply.
  void Publish(const std::string& type, std::vector<std::pair<std::string, Value>> fields) {
    fields.emplace_back("actor", Value::String(CurrentIdentity().UserAtHost()));
    fields.emplace_back("kind", Value::String(kind_));
    notify::Event event = notify::MakeEvent(type, env_, "", fields);
    observer_.OnEvent(event);
    if (!report_.dispatcher) return;
    Status s = report_.dispatcher->Publish(event);
    if (!s.ok()) observer_.OnWarning("notifications: " + s.error().message);
  }

  // Applies one plan and records it.
  const StepResult& Execute(const StepInfo& info, plan::Plan p, const std::string& note) {
    observer_.OnStepStarted(info);
    apply::ApplyOptions options;
    options.parallelism = ws_.options().parallelism;
    options.kind = kind_;
    options.lease_seconds = ws_.options().lease_seconds;
    if (request_.stop != nullptr) options.cancel = request_.stop->flag();
    if (info.commit) {
      options.commit_subject = info.commit->subject;
      options.commit_author = info.commit->author;
    }
    if (!note.empty()) options.commit_subject += " (" + note + ")";
    options.on_progress = [this](const apply::Progress& pr) { observer_.OnProgress(pr); };
    const Value commit_id = Value::String(info.commit ? info.commit->id : "");
    Publish("apply.started", {{"commit", commit_id}, {"summary", Value::String(p.Summary())}});
    const auto drifted = DriftedOf(p);
    Result<apply::ApplyResult> result =
        apply::Apply(*ws_.environment(), std::move(p), *store_, *lock_, options);
    StepResult& out = report_.steps.emplace_back();
    out.step = info;
    if (!result.ok()) {
      Publish("apply.failed",
              {{"commit", commit_id}, {"error", Value::String(result.error().message)}});
      out.error = result.error().message;
      observer_.OnStepFinished(out);
      return out;
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
      Publish(ok ? "apply.succeeded" : "apply.failed", fields);
      if (ok && request_.destroy) Publish("env.destroyed", fields);
    }
    ResolveAppliedDrift(*store_, env_, drifted, *result, "apply");
    out.result = std::move(*result);
    observer_.OnStepFinished(out);
    return out;
  }

  Workspace& ws_;
  const ApplyRequest& request_;
  Observer& observer_;
  const std::string env_;
  const std::string kind_;
  state::StateStore* store_ = nullptr;
  state::Lock* lock_ = nullptr;
  ApplyReport report_;
};

}  // namespace

ApplyReport ApplyEnvironment(Workspace& ws, const ApplyRequest& request, Observer& observer) {
  return ApplyRun(ws, request, observer).Run();
}

ApplyReport DestroyEnvironment(Workspace& ws, ApplyRequest request, Observer& observer) {
  request.destroy = true;
  return ApplyEnvironment(ws, request, observer);
}

}  // namespace driftless::engine
