#include "apply/applier.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

#include "apply/resource_state.h"
#include "base/identity.h"
#include "base/trace.h"
#include "plan/render.h"
#include "plan/stored.h"
#include "value/render.h"

namespace driftless::apply {

using plan::Action;
using value::Value;

namespace {

// Collects outcomes from the workers and commits them in batches; renews the lease. It is the
// only thread that touches the store while the apply runs.
class StateWriter {
 public:
  StateWriter(state::StateStore& store, state::Lock& lock, int64_t apply_id, int64_t lease)
      : store_(store), lock_(lock), apply_id_(apply_id), lease_(lease) {
    thread_ = std::thread([this] { Run(); });
  }
  ~StateWriter() { (void)Finish(); }

  void Push(state::ChangeResult r) {
    std::lock_guard<std::mutex> g(mu_);
    queue_.push_back(std::move(r));
    if (queue_.size() >= kBatch) cv_.notify_one();
  }

  /// Flushes everything and stops the thread. Returns the first write error, if any.
  Status Finish() {
    {
      std::lock_guard<std::mutex> g(mu_);
      stopping_ = true;
    }
    cv_.notify_one();
    if (thread_.joinable()) thread_.join();
    return status_;
  }

  /// True once a write failed (the lock was lost): the apply must stop.
  bool failed() const { return failed_.load(); }

 private:
  static constexpr size_t kBatch = 256;

  void Run() {
    auto last_renew = std::chrono::steady_clock::now();
    while (true) {
      std::vector<state::ChangeResult> batch;
      bool stop;
      {
        std::unique_lock<std::mutex> g(mu_);
        cv_.wait_for(g, std::chrono::milliseconds(20),
                     [this] { return stopping_ || queue_.size() >= kBatch; });
        batch.swap(queue_);
        stop = stopping_;
      }
      if (!batch.empty() && status_.ok()) Check(store_.RecordResults(lock_, apply_id_, batch));
      auto now = std::chrono::steady_clock::now();
      if (status_.ok() &&
          now - last_renew > std::chrono::seconds(std::max<int64_t>(1, lease_ / 3))) {
        Check(store_.RenewLock(lock_, lease_));
        last_renew = now;
      }
      if (stop) {
        std::lock_guard<std::mutex> g(mu_);
        if (queue_.empty()) return;
      }
    }
  }

  void Check(Status s) {
    if (s.ok()) return;
    status_ = std::move(s);
    failed_ = true;
  }

  state::StateStore& store_;
  state::Lock& lock_;
  int64_t apply_id_;
  int64_t lease_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<state::ChangeResult> queue_;
  bool stopping_ = false;
  Status status_;
  std::atomic<bool> failed_{false};
  std::thread thread_;
};

const char* PastTense(Action a) {
  switch (a) {
    case Action::kCreate:
      return "created";
    case Action::kUpdate:
      return "updated";
    case Action::kReplace:
      return "replaced";
    case Action::kDelete:
      return "deleted";
    case Action::kHeal:
      return "healed";
    case Action::kRecord:
      return "recorded";
    case Action::kNoop:
      return "unchanged";
  }
  return "?";
}

// What the changes' threads read of a change once the apply's start is recorded, moved out of
// the plan's Change (several hundred bytes, with what was shown and recorded) or made for a
// plain create (Plan::Create): the plan's changes are freed before the first change is made. 16
// bytes for a create or a heal of a declared resource, whose address and dependencies are the
// environment's; the rest only where there is one.
struct Todo {
  // A delete's identity and dependencies (state's), applied attributes (update, heal, replace,
  // delete), the address in state of a move.
  struct Rest {
    std::string address, kind, name, target, prior_address;
    std::vector<std::string> depends_on;
    Value applied_attrs;
  };

  explicit Todo(plan::Change&& c)
      : index(c.index),
        action(c.action),
        adopt(c.adopt),
        live_missing(c.live.is_null()),
        plain(false) {
    if (c.index >= 0 && c.applied_attrs.is_null() && c.prior_address.empty()) return;
    rest = std::make_unique<Rest>(Rest{std::move(c.address), std::move(c.kind), std::move(c.name),
                                       std::move(c.target), std::move(c.prior_address),
                                       std::move(c.depends_on), std::move(c.applied_attrs)});
  }

  explicit Todo(const plan::Plan::Create& c)
      : index(static_cast<int>(c.index)),
        action(Action::kCreate),
        adopt(false),
        live_missing(true),
        plain(true) {}

  const std::string& address(const config::Environment& env) const {
    return rest ? rest->address : env.resources()[static_cast<size_t>(index)].decl->address;
  }
  const Value& applied_attrs() const {
    static const Value kNone;
    return rest ? rest->applied_attrs : kNone;
  }
  const std::string& prior_address() const {
    static const std::string kNone;
    return rest ? rest->prior_address : kNone;
  }

  std::unique_ptr<Rest> rest;
  int index;  // in the environment, or -1 (a resource only in state)
  Action action;
  bool adopt;
  bool live_missing;  // no live object was read at plan time
  bool plain;         // a plain create (Plan::Create): its diff is made from the environment
};

// The state of declared resource `i` applied from `spec`; `attrs_out` receives the stored
// attributes (for references from dependents). Its dependencies are those of the plan
// (PlanDeclared): the addresses of its predecessors in the graph.
state::ResourceState NewState(const config::Environment& env, size_t i, const Value& spec,
                              const Value& reported, const std::string& spec_hash,
                              Value* attrs_out = nullptr) {
  std::vector<std::string> deps;
  for (size_t d : env.graph().Predecessors(i)) deps.push_back(env.resources()[d].decl->address);
  return MakeResourceState(env, *env.resources()[i].decl, nullptr, spec, reported, spec_hash,
                           std::move(deps), attrs_out);
}

}  // namespace

Result<ApplyResult> Apply(config::Environment& env, plan::Plan plan, state::StateStore& store,
                          state::Lock& lock, const ApplyOptions& options) {
  size_t total = plan.creates.size();
  for (const plan::Change& c : plan.changes) total += c.action != Action::kNoop;
  Result<int64_t> apply_id = 0;
  std::vector<Todo> todo;
  {
    TraceSpan span("record the start (plan text, intents)");
    // The record holds the plan's head and every change's action and diff (a few hundred bytes
    // per change): it is freed before the first change is made.
    const Identity me = CurrentIdentity();
    state::ApplyRecord record;
    record.environment = plan.environment;
    record.kind = options.kind;
    record.user = me.user;
    record.host = me.host;
    record.pid = me.pid;
    record.commit = plan.revision;
    record.commit_subject = options.commit_subject;
    record.commit_author = options.commit_author;
    record.decl_hash = plan.decl_hash;
    record.started_at = NowUnix();
    record.status = "running";
    // The planned values (a copy of every declared spec, a third of a large plan) are not
    // read by the record nor by the apply: released before the record's text is made.
    for (plan::Change& c : plan.changes) {
      c.planned = Value();
      c.prior = Value();
    }
    record.plan_json = plan::PlanRecordText(plan);
    // Then the changes become what the apply reads of them (Todo) and are freed, before the
    // start is recorded; kept beside, for the intents, is the diff of each change that is not a
    // no-op (moved, not copied). A plain create's is made from the environment with its intent.
    std::vector<std::string> diffs;
    todo.reserve(plan.changes.size() + plan.creates.size());
    plan.InAddressOrder(
        [&](size_t j) {
          plan::Change& c = plan.changes[j];
          if (c.action != Action::kNoop) diffs.push_back(std::move(c.diff));
          todo.emplace_back(std::move(c));
        },
        [&](const plan::Plan::Create& c) { todo.emplace_back(c); });
    std::vector<plan::Change>().swap(plan.changes);
    std::vector<plan::Plan::Create>().swap(plan.creates);
    // The intents, a batch at a time: all their diffs at once were a tenth of a large apply's
    // peak. The first batch goes with the start, the others follow before any change is made.
    constexpr size_t kIntentBatch = 1024;
    std::vector<state::ChangeRecord> intents;
    intents.reserve(std::min(total, kIntentBatch));
    size_t next = 0;       // in todo
    size_t next_diff = 0;  // in diffs
    auto fill = [&] {
      intents.clear();
      while (next < todo.size() && intents.size() < kIntentBatch) {
        const Todo& t = todo[next++];
        if (t.action == Action::kNoop) continue;
        std::string diff;
        if (!t.plain) {
          diff = std::move(diffs[next_diff++]);
        } else {
          plan::Change made;
          plan.make_create(static_cast<uint32_t>(t.index), true, made);
          diff = std::move(made.diff);
        }
        intents.push_back({t.address(env), std::string(plan::ActionName(t.action)), "pending", "",
                           std::move(diff)});
      }
    };
    fill();
    apply_id = store.BeginApply(lock, record, intents);
    if (!apply_id.ok()) return apply_id.error();
    std::string().swap(record.plan_json);
    size_t recorded = intents.size();
    while (next < todo.size()) {
      fill();
      if (intents.empty()) continue;
      // Nothing was changed yet: a failure (the lock was lost) leaves the apply running, as a
      // killed process would, for the next lock holder to mark interrupted.
      Status added = store.AddIntents(lock, *apply_id, recorded, intents);
      if (!added.ok()) return added.error();
      recorded += intents.size();
    }
  }

  std::vector<const Todo*> deletes;
  std::vector<const Todo*> declared(env.resources().size(), nullptr);
  for (const Todo& c : todo) {
    if (c.index >= 0 && !plan.destroy) declared[static_cast<size_t>(c.index)] = &c;
    if (c.action == Action::kDelete) deletes.push_back(&c);
  }

  ApplyResult result;
  result.apply_id = *apply_id;
  StateWriter writer(store, lock, *apply_id, options.lease_seconds);
  std::mutex mu;  // guards result, counts, attrs_after and progress
  std::map<Action, size_t> counts;
  std::map<std::string, Value, std::less<>> attrs_after;
  size_t done_count = 0;

  auto finish = [&](const Todo& c, state::ChangeResult r) {
    std::lock_guard<std::mutex> g(mu);
    ++done_count;
    if (r.status == "done") {
      ++result.done;
      ++counts[c.action];
    } else {
      ++(r.status == "failed" ? result.failed : result.skipped);
      result.errors.push_back(c.address(env) + ": " + r.error);
    }
    if (options.on_progress) {
      options.on_progress({done_count, total, c.address(env), r.status, r.error});
    }
    writer.Push(std::move(r));
  };
  auto fail = [&](const Todo& c, std::string error) {
    state::ChangeResult r;
    r.address = c.address(env);
    r.status = "failed";
    r.error = std::move(error);
    finish(c, std::move(r));
    return false;
  };
  auto stopped = [&] {
    return writer.failed() || (options.cancel != nullptr && options.cancel->load());
  };
  // A change reached after the apply was told to stop: recorded as not started.
  auto not_started = [&](const Todo* c, std::atomic<bool>& stop_flag) {
    stop_flag = true;
    if (c != nullptr && c->action != Action::kNoop) {
      state::ChangeResult r;
      r.address = c->address(env);
      r.status = "skipped";
      r.error = "not started: the apply was stopped";
      finish(*c, std::move(r));
    }
    return false;
  };
  // Marks the changes a walk did not run: skipped after a failure, or not started.
  auto record_unrun = [&](const graph::Graph& g, const std::vector<graph::NodeStatus>& status,
                          const std::function<const Todo*(size_t)>& change_at) {
    for (size_t i = 0; i < status.size(); ++i) {
      const Todo* c = change_at(i);
      if (c == nullptr || c->action == Action::kNoop) continue;
      if (status[i] != graph::NodeStatus::kSkipped && status[i] != graph::NodeStatus::kNotRun)
        continue;
      std::string why = "not started: the apply was stopped";
      if (status[i] == graph::NodeStatus::kSkipped) {
        why = "skipped: a dependency failed";
        for (size_t p : g.Predecessors(i)) {
          if (status[p] == graph::NodeStatus::kFailed || status[p] == graph::NodeStatus::kSkipped) {
            const Todo* pc = change_at(p);
            if (pc != nullptr)
              why = "skipped: depends on " + pc->address(env) + ", which " +
                    (status[p] == graph::NodeStatus::kFailed ? "failed" : "was skipped");
            break;
          }
        }
      }
      state::ChangeResult r;
      r.address = c->address(env);
      r.status = "skipped";
      r.error = why;
      finish(*c, std::move(r));
    }
  };

  // 1. Deletions of resources no longer declared, dependents first.
  {
    graph::Graph g(deletes.size());
    std::map<std::string_view, size_t> index;
    for (size_t i = 0; i < deletes.size(); ++i) index.emplace(deletes[i]->rest->address, i);
    for (size_t i = 0; i < deletes.size(); ++i) {
      for (const auto& dep : deletes[i]->rest->depends_on) {
        auto it = index.find(dep);
        if (it != index.end()) g.AddEdge(i, it->second);
      }
    }
    auto visit = [&](size_t i) {
      const Todo& c = *deletes[i];
      const Todo::Rest& d = *c.rest;
      provider::Target* target = env.TargetNamed(d.target);
      if (target == nullptr) {
        return fail(c, "target " + d.target +
                           " is not declared any more; declare it again to "
                           "delete " +
                           d.address + ", or run `driftless state rm " + d.address + "`");
      }
      Status s = target->Delete({d.kind, d.name, d.applied_attrs});
      if (!s.ok()) return fail(c, s.error().message);
      state::ChangeResult r;
      r.address = d.address;
      r.status = "done";
      r.remove = true;
      finish(c, std::move(r));
      return true;
    };
    std::atomic<bool> stop_flag{false};
    auto guarded = [&](size_t i) {
      if (stopped()) return not_started(deletes[i], stop_flag);
      return visit(i);
    };
    std::vector<graph::NodeStatus> status =
        graph::Walk(g, options.parallelism, guarded, &stop_flag);
    record_unrun(g, status, [&](size_t i) { return deletes[i]; });
  }

  // 2. Declared resources in dependency order.
  if (!plan.destroy) {
    TraceSpan span("apply the changes in graph order");
    // Specs that held unknowns at plan time are evaluated again with the attributes of their
    // dependencies after those are applied; only such dependents read attrs_after.
    std::vector<char> read_by_dependents(env.resources().size(), 0);
    for (size_t i = 0; i < env.resources().size(); ++i) {
      if (!env.resources()[i].spec_hash.empty()) continue;
      for (size_t d : env.graph().Predecessors(i)) read_by_dependents[d] = 1;
    }
    // Attributes of a dependency: what this apply wrote, else what state has (unchanged).
    auto attrs_of = [&](const std::string& address) -> const Value* {
      std::lock_guard<std::mutex> g(mu);
      auto it = attrs_after.find(address);
      if (it != attrs_after.end()) return &it->second;
      return env.AppliedAttrs(address);
    };
    auto visit = [&](size_t i) -> bool {
      const Todo* cp = declared[i];
      const config::EvaluatedResource& er = env.resources()[i];
      const config::Resource& r = *er.decl;
      if (cp == nullptr) return true;
      const Todo& c = *cp;
      if (c.action == Action::kNoop) return true;
      Value spec = er.spec;
      std::string spec_hash = er.spec_hash;
      if (spec_hash.empty()) {  // held unknowns at plan time
        Result<Value> again = env.Reevaluate(i, attrs_of);
        if (!again.ok()) return fail(c, again.error().message);
        spec = std::move(*again);
        spec_hash = env.SpecHash(spec);
      }
      provider::Target* target = env.TargetOf(r);
      provider::ResourceRequest req{r.kind, r.name, spec};
      Result<Value> reported = MakeError("no action");
      switch (c.action) {
        case Action::kCreate:
          reported = target->Create(req, c.adopt);
          break;
        case Action::kUpdate:
        case Action::kHeal:
          reported = target->Update(req, c.applied_attrs());
          break;
        case Action::kReplace: {
          Status s = target->Delete({r.kind, r.name, c.applied_attrs()});
          if (!s.ok())
            return fail(c, "replace: delete of the old object failed: " + s.error().message);
          reported = target->Create(req, false);
          break;
        }
        case Action::kRecord: {
          Result<std::optional<Value>> live = target->Read(req);
          if (!live.ok())
            reported = live.error();
          else if (!*live)
            reported = MakeError("the object disappeared since the plan");
          else
            reported = std::move(**live);
          break;
        }
        default:
          break;
      }
      if (!reported.ok()) {
        std::string error = reported.error().message;
        state::ChangeResult r_fail;
        r_fail.address = r.address;
        r_fail.status = "failed";
        r_fail.error = error;
        // Record the most recent known state: an object that did not exist at plan time but that
        // the failed call left behind is managed from now on, marked so that the next plan
        // updates it. An object that existed before (refused without adopt) is left alone.
        if (c.applied_attrs().is_null() && c.live_missing && !c.adopt) {
          Result<std::optional<Value>> live = target->Read(req);
          if (live.ok() && *live) {
            r_fail.new_state = NewState(env, i, spec, **live, "incomplete");
          }
        }
        finish(c, std::move(r_fail));
        return false;
      }
      Value attrs;
      state::ResourceState st = NewState(env, i, spec, *reported, spec_hash, &attrs);
      if (read_by_dependents[i]) {
        std::lock_guard<std::mutex> g(mu);
        attrs_after.insert_or_assign(r.address, std::move(attrs));
      }
      if (!c.prior_address().empty()) {
        state::ChangeResult moved;
        moved.address = c.prior_address();
        moved.status = "done";
        moved.remove = true;
        writer.Push(std::move(moved));
      }
      state::ChangeResult ok;
      ok.address = r.address;
      ok.status = "done";
      ok.new_state = std::move(st);
      finish(c, std::move(ok));
      return true;
    };
    std::atomic<bool> stop_flag{false};
    auto guarded = [&](size_t i) {
      if (stopped()) return not_started(declared[i], stop_flag);
      return visit(i);
    };
    std::vector<graph::NodeStatus> status =
        graph::Walk(env.graph(), options.parallelism, guarded, &stop_flag);
    record_unrun(env.graph(), status, [&](size_t i) { return declared[i]; });
  }

  Status written = Status::Ok();
  {
    TraceSpan span("record the last outcomes");
    written = writer.Finish();
  }
  std::string summary;
  for (Action a : {Action::kCreate, Action::kUpdate, Action::kReplace, Action::kDelete,
                   Action::kHeal, Action::kRecord}) {
    if (counts[a])
      summary += (summary.empty() ? "" : ", ") + std::to_string(counts[a]) + " " + PastTense(a);
  }
  if (summary.empty()) summary = "nothing to do";
  if (result.failed) summary += ", " + std::to_string(result.failed) + " failed";
  if (result.skipped) summary += ", " + std::to_string(result.skipped) + " skipped";
  result.summary = summary;
  bool cancelled = options.cancel != nullptr && options.cancel->load();
  result.status = !written.ok() || cancelled        ? "interrupted"
                  : result.failed || result.skipped ? "failed"
                                                    : "succeeded";
  if (!written.ok()) {
    result.errors.push_back("state: " + written.error().message);
    return result;  // the lock is gone: nothing more may be written
  }
  Status fin = store.FinishApply(lock, *apply_id, result.status, summary);
  if (!fin.ok()) result.errors.push_back("state: " + fin.error().message);
  return result;
}

}  // namespace driftless::apply
