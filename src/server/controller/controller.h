#pragma once

// The controller of `driftless serve`: follows every branch of the repository, maps branches to
// environments by the `environments:` rules, and keeps one queue of runs per environment in the
// state's ControlStore (first in, first out, one active run per environment, a queued run of an
// older commit superseded by a newer one). Runs are executed with the engine's operations
// (PlanEnvironment, ApplyEnvironment, DestroyEnvironment), each environment is watched for drift
// with engine::Watch while it is applied, and a branch that is gone or past its ttl destroys its
// environment in a run of its own unless the environment is protected.

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "base/result.h"
#include "engine/drift.h"
#include "engine/operation.h"
#include "engine/watch.h"
#include "engine/workspace.h"
#include "plan/plan.h"
#include "server/controller/log.h"
#include "state/state_store.h"

namespace driftless::server::controller {

/// How the controller works.
struct ControllerOptions {
  /// The repository (`repo`), the state (`state`), the lease. On a URL only the fetch loop
  /// fetches the mirror; runs, listings and watches read it as last fetched.
  engine::WorkspaceOptions workspace;
  double poll_seconds = 60;     ///< a fetch this often (the safety net beside webhooks)
  int runners = 4;              ///< environments reconciled at once
  bool watch = true;            ///< watch applied environments for drift (engine::Watch)
  double watch_interval = 300;  ///< the watch's full scans, seconds
  double lock_timeout = 600;    ///< how long a run waits for the environment's lock, seconds
  Log* log = nullptr;           ///< where log lines go (nullptr: nowhere)
  /// Several servers on one state (a backend with state::ControlStore::SharesServers()): the
  /// time within which another server takes over the environments of one that stops renewing
  /// (`serve --lease`). Its heartbeat and ownerships hold for two thirds of it, renewed every
  /// tenth.
  double lease_seconds = 30;
  /// Several servers: a run queued (or approved, or asked to cancel) through another server
  /// reaches the environment's owner by the state's `runs` change channel at once; this often
  /// the owner also reads the state for them, in case a notification was lost (`serve
  /// --run-poll`).
  double run_poll_seconds = 60;
  /// This server's id in the state ("" : HOST-PID-RANDOM).
  std::string server_id;
  /// Called after every change of a run's status (queued, planning, ..., superseded), on the
  /// thread that made it, with the run as the controller knows it (its id, environment, action
  /// and commit). For metrics: it must not block.
  std::function<void(const state::Run& run, const std::string& status)> on_run_status;
};

/// What the controller knows of one environment that a branch maps to.
struct EnvironmentView {
  std::string name;
  std::string branch;
  std::string head;  ///< the branch head's full id
  std::string sync;  ///< "auto" or "manual"
  bool is_protected = false;
  /// The commit last applied as of the last fetch ("" when none), and how many commits `head`
  /// has that it lacks (-1: unknown). Valid while the applied commit is still `applied`.
  std::string applied;
  int64_t behind = -1;
  /// How many approvals a run needs before it applies (EnvironmentMatch::required_approvals),
  /// and whether an enforced drift is reverted without them. Both, like is_protected, are the
  /// stricter of the rule at the head and the rule at the applied commit: a commit cannot lift
  /// its own protection.
  int approvals = 0;
  bool remediates_unapproved = true;
};

/// What Controller::DecideRun did.
struct RunDecision {
  enum class Outcome {
    kRecorded,        ///< recorded (a rejection canceled the run)
    kNotFound,        ///< no such run
    kNotAwaiting,     ///< the run is not awaiting approval
    kAuthor,          ///< the run's author cannot decide on it
    kAlreadyDecided,  ///< this person decided on this run already
  };
  Outcome outcome = Outcome::kRecorded;
  std::string message;                     ///< why not (kRecorded: "")
  state::Run run;                          ///< the run as it is now (when it exists)
  std::vector<state::Approval> approvals;  ///< its decisions, oldest first
  int required = 0;                        ///< how many approvals it needs
};

/// The controller. Start it once; Stop (or destroy) it once.
class Controller {
 public:
  explicit Controller(ControllerOptions options);
  ~Controller();
  Controller(const Controller&) = delete;
  Controller& operator=(const Controller&) = delete;

  /// Opens the state, marks runs that a previous server left active as interrupted, picks up
  /// the queued ones and starts the fetch loop and the runners. An error when the state cannot
  /// be opened.
  Status Start();
  /// Stops taking work: no more fetches or runs are started, a running operation is asked to
  /// stop (between steps, and the applier between changes: state says exactly what was done),
  /// the watches stop; joins every thread. Idempotent.
  void Stop();

  /// Fetches now instead of at the next poll (a webhook, the API).
  void TriggerFetch();
  /// True once the first fetch has finished (successfully or not: the error is logged).
  bool ready() const;
  /// How many fetches have finished (for tests and metrics).
  uint64_t fetches() const;
  /// False while a shared state cannot be reached (the server reconciles nothing then: /readyz
  /// answers 503); true otherwise.
  bool healthy() const;
  /// This server's id in the state (ControllerOptions::server_id).
  const std::string& server_id() const { return server_id_; }
  /// The environments this server owns now (all of them with a state of one server), sorted.
  std::vector<std::string> Owned() const;

  /// The environments that branches map to, as of the last fetch, sorted by name.
  std::vector<EnvironmentView> Environments() const;
  /// One of them, or std::nullopt.
  std::optional<EnvironmentView> FindEnvironment(const std::string& name) const;

  /// Queues a run of `action` ("plan", "apply", "destroy") for `env` on behalf of `author`:
  /// a plan or apply of the branch head as of the last fetch (superseding queued runs of other
  /// commits), a destroy of whatever is applied. An error for an unknown action.
  Result<state::Run> RequestRun(const std::string& env, const std::string& action,
                                const std::string& author);
  /// Cancels run `id`: a queued or planned run at once, a running one at its next stop point.
  /// Returns the run as it is now; an error when it does not exist or is finished.
  Result<state::Run> CancelRun(int64_t id);
  /// Records `who`'s `decision` ("approved" or "rejected", with `comment`) on run `id`, which
  /// must be awaiting approval and not be `who`'s own, bound to the run's plan hash; publishes
  /// approval.granted or approval.rejected (event log and `notify:` sinks). A rejection cancels
  /// the run; the approval that completes the count wakes a runner, which plans again under the
  /// lock and applies only when the plan hash is still the one approved (else the run is
  /// superseded by a new one and run.discarded published). An error only when the state fails.
  /// Checks `env` for drift now, on the calling thread, as `driftless drift` does
  /// (engine::CheckDrift on the branch head as last fetched: every managed live object against
  /// state, the drift timeline recorded), and hands the report to `use` while it is valid.
  void CheckDrift(const std::string& env, bool full,
                  const std::function<void(const engine::DriftReport&)>& use);
  Result<RunDecision> DecideRun(int64_t id, const std::string& who, const std::string& decision,
                                const std::string& comment);
  /// How many approvals `run` needs before it applies (0: none), as DecideRun counts them: the
  /// environment's rule as of the last fetch.
  int ApprovalsRequired(const state::Run& run) const { return RequiredApprovals(run); }
  /// Resource `address` of `env` now, on the calling thread (engine::InspectResource at the
  /// commit last applied, or the branch head when nothing was applied): `use` gets the change
  /// (std::nullopt: no such resource) and the commit, or the error, while they are valid.
  void InspectResource(const std::string& env, const std::string& address,
                       const std::function<void(const Result<std::optional<plan::Change>>&,
                                                const std::string&)>& use);

 private:
  struct Watcher;
  class RunObserver;
  class WatchObserver;
  struct RunControl {
    std::string environment;
    engine::StopToken stop;
    bool canceled = false;  ///< stopped by CancelRun (else by Stop)
  };
  void FetchLoop();
  /// Several servers: the heartbeat and the ownerships renewed, given back above the fair share
  /// and taken up to it, every kLookParts-th of the lease.
  void LeaseLoop();
  void LeaseTick(state::StateStore& store);
  /// The heartbeat and the renewal of every ownership for HoldMs(); the ownerships lost since
  /// are disowned. False (StateAway) when the state could not be reached.
  bool Renew(state::StateStore& store);
  /// Renew when the last one was sent a kLookParts-th of the lease ago (between the steps of a
  /// long give-back or adoption, so that they never delay the heartbeat).
  bool RenewIfDue(state::StateStore& store);
  /// The state could not be reached (`error`): not healthy, and past the hold of the last
  /// renewal every environment is disowned. Returns false.
  bool StateAway(const std::string& error);
  /// `--lease`: a server that stops renewing is taken over within it. Its heartbeat and
  /// ownerships are recorded valid for two thirds of it (HoldMs) and renewed, like the others'
  /// looks for free environments, every tenth: a takeover comes at most 2/3 + 1/10 of the lease
  /// after the last renewal, plus the time to take the environments.
  static constexpr int64_t kLookParts = 10;
  int64_t LeaseMs() const;
  int64_t HoldMs() const { return LeaseMs() * 2 / 3; }
  /// Several servers: waits on the state's `runs` channel (and reads everything every
  /// run_poll_seconds, or after a loss) for runs queued, approved or asked to cancel anywhere.
  void ListenLoop();
  /// The waiting runs of `env` ("" : every environment) in the state: this server's are woken
  /// (after a fetch when their commit is new to it); and the cancels asked for the runs this
  /// server runs there stop them. False when the state could not be read.
  bool LookAtRuns(state::StateStore& store, const std::string& env);
  /// This server now owns `o.environment`: a run left active by its previous owner is marked
  /// interrupted and queued again, queued runs are picked up and the watch starts.
  void Adopt(state::StateStore& store, const state::Ownership& o);
  /// This server no longer owns `env` (`why`): its running run is stopped (its writes are fenced
  /// anyway) and its watch stopped.
  void Disown(const std::string& env, const std::string& why);
  /// True when this server reconciles `env` now (mu_ held).
  bool OwnsLocked(const std::string& env) const;
  void Fetch(state::StateStore& store);
  void RunnerLoop();
  /// `resumed`: the run was approved and is planned again (its plan_hash is the one approved).
  void Execute(state::StateStore& store, state::Run run, bool resumed);
  void ExecuteApply(state::StateStore& store, const state::Run& run, engine::Workspace& ws,
                    RunControl& control, bool resumed,
                    const std::set<std::string, std::less<>>* only = nullptr);
  /// A remediation run: an apply of the environment's open enforced drift at the commit
  /// applied.
  void ExecuteRemediation(state::StateStore& store, const state::Run& run, engine::Workspace& ws,
                          RunControl& control, bool resumed);
  /// The oldest run of `env` awaiting approval that has every approval it needs, moved to
  /// planning; std::nullopt when there is none.
  Result<std::optional<state::Run>> ResumeApproved(state::StateStore& store,
                                                   const std::string& env);
  /// How many approvals `run` needs before it applies (0: none): the environment's, as of the
  /// last fetch, and at least what `at_commit` (the rule at the run's commit, when known) says.
  int RequiredApprovals(const state::Run& run,
                        const config::EnvironmentMatch* at_commit = nullptr) const;
  /// A served watch's enforced drift on an environment where remediation needs approval:
  /// queues a remediation run unless one is queued, running, or awaiting approval of a plan
  /// that already covers `drift` (one awaiting an older plan is discarded first).
  void QueueRemediation(state::StateStore& store, const std::string& env, const plan::Plan& drift);
  /// Moves `run` from `from` to superseded because its plan changed (`why`), queues a new run
  /// of the same action and commit, and publishes run.discarded.
  void Discard(engine::Workspace* ws, state::StateStore& store, const state::Run& run,
               const std::string& from, const std::string& why);
  /// Publishes an event about `run` to the event log and to the `notify:` sinks of the run's
  /// commit (`ws`, or a workspace opened for it when nullptr); the environment's watch or its
  /// next run delivers them.
  void Notify(engine::Workspace* ws, state::StateStore& store, const state::Run& run,
              const std::string& type, std::vector<std::pair<std::string, value::Value>> fields);
  /// Moves `run` from `from` to `to` (compare-and-set) and publishes run.<to>; false when the
  /// run was no longer in `from`.
  bool Transition(state::StateStore& store, const state::Run& run, const std::string& from,
                  const std::string& to, const state::RunUpdate& update = {});
  /// Logs run.<to>, appends it to the event log and tells options_.on_run_status.
  void Announce(state::StateStore& store, const state::Run& run, const std::string& to,
                const state::RunUpdate& update);
  void Wake(const std::string& env);
  /// Tells options_.on_run_status.
  void RunStatusChanged(const state::Run& run, const std::string& status) const;
  void StartWatch(const std::string& env);
  /// The thread of a served watch of `env` (StartWatch puts it in `raw` under mu_).
  std::thread SpawnWatch(const std::string& env, Watcher* raw);
  void StopWatch(const std::string& env);
  Result<state::Run> Enqueue(state::StateStore& store, state::Run run, bool supersede);
  /// Several servers seeing a new head: queues `run` (superseding) unless the environment's
  /// newest run covers its commit, atomically in the state; wakes the environment either way.
  /// True when this call queued it.
  bool EnqueueUnlessCovered(state::StateStore& store, const state::Run& run);
  /// Logs that queueing `run` failed.
  void QueueFailed(const state::Run& run, const driftless::Error& error);
  /// Logs, publishes and tells what EnqueueRun did, and wakes the environment.
  void Queued(state::StateStore& store, const state::EnqueuedRun& queued);
  void Publish(state::StateStore& store, const std::string& type, const std::string& env,
               const std::vector<std::pair<std::string, value::Value>>& fields);
  void Info(const std::string& msg, const Log::Fields& fields = {});
  void Error(const std::string& msg, const Log::Fields& fields = {});
  /// The workspace of a run of `commit` ("" for none): the options without fetching.
  engine::WorkspaceOptions RunOptions(const std::string& commit) const;

  ControllerOptions options_;
  std::unique_ptr<state::StateStore> fetch_store_;  ///< the fetch thread's
  std::unique_ptr<state::StateStore> api_store_;    ///< RequestRun's and CancelRun's
  std::mutex api_mu_;                               ///< guards api_store_

  mutable std::mutex mu_;
  std::condition_variable cv_;  ///< the fetch loop and the runners wait here
  bool started_ = false;
  bool stopping_ = false;
  bool fetch_now_ = false;
  bool ready_ = false;
  uint64_t fetches_ = 0;
  std::map<std::string, EnvironmentView> envs_;  ///< by name, as of the last fetch
  std::set<std::string> known_;                  ///< environments seen by an earlier fetch
  std::set<std::string> pending_;                ///< environments that may have queued runs
  std::set<std::string> busy_;                   ///< environments a runner works on
  std::set<std::string> kept_reported_;          ///< protected environments reported kept
  std::set<std::string> destroy_queued_;         ///< environments with a destroy run queued
  std::map<int64_t, std::shared_ptr<RunControl>> running_;    ///< by run id
  std::map<std::string, std::unique_ptr<Watcher>> watchers_;  ///< by environment
  /// The watches' work (first scans, checks) a few at a time: one per core, at least 2.
  engine::WorkGate watch_gate_{static_cast<int>(std::max(2u, std::thread::hardware_concurrency()))};
  // Several servers (LeaseLoop).
  std::string server_id_;
  bool shared_ = false;                   ///< the state is shared by several servers
  bool healthy_ = true;                   ///< the last heartbeat reached the state
  std::map<std::string, int64_t> owned_;  ///< environment -> ownership token
  std::set<std::string> gone_;            ///< gone or expired environments, as last fetched
  /// Commits of others' runs that a fetch was asked for: the number (fetches_started_) of the
  /// first fetch that has them; the runs of a commit wait until fetches_ reaches it.
  std::map<std::string, uint64_t> fetch_for_;
  uint64_t fetches_started_ = 0;   ///< fetches begun (fetches_ counts those finished)
  std::set<std::string> waiting_;  ///< environments with waiting runs, as last read
  std::unique_ptr<state::StateStore> lease_store_;   ///< the lease thread's
  std::unique_ptr<state::StateStore> listen_store_;  ///< the listen thread's
  std::unique_ptr<state::ChangeListener> listener_;  ///< its subscription to `runs`
  std::thread listen_thread_;
  // The lease thread's own (Renew): when the last renewal was sent, and the last that reached
  // the state; the live servers it counted.
  std::chrono::steady_clock::time_point renew_sent_{};
  std::chrono::steady_clock::time_point renewed_ = std::chrono::steady_clock::now();
  size_t live_servers_ = 1;
  std::thread leaser_;

  std::thread fetcher_;
  std::vector<std::thread> runners_;
};

}  // namespace driftless::server::controller
