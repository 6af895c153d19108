#include "cli/remote.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/identity.h"
#include "cli/views.h"
#include "plan/render.h"
#include "state/control_store.h"
#include "value/value.h"

namespace driftless::cli {

using client::Client;
using client::Escape;
using value::Value;

namespace {

int Fail(const std::string& message) {
  std::fprintf(stderr, "error: %s\n", message.c_str());
  return 1;
}

const Value kNull;

const Value& Field(const Value& v, std::string_view key) {
  const Value* f = v.is_object() ? v.Find(key) : nullptr;
  return f != nullptr ? *f : kNull;
}
std::string Str(const Value& v, std::string_view key) {
  const Value& f = Field(v, key);
  return f.is_string() ? f.as_string() : "";
}
int64_t Int(const Value& v, std::string_view key, int64_t missing = 0) {
  const Value& f = Field(v, key);
  return f.is_int() ? f.as_int() : missing;
}
const Value::List& Items(const Value& page) {
  static const Value::List kEmpty;
  const Value& items = Field(page, "items");
  return items.is_list() ? items.as_list() : kEmpty;
}
std::string Short(const std::string& commit) { return commit.substr(0, 7); }

std::string EnvRoute(const std::string& env) { return "/api/v1/environments/" + Escape(env); }
std::string RunRoute(int64_t id) { return "/api/v1/runs/" + std::to_string(id); }

// Every item of a paged list route (`route` has its query or none), at most `limit`.
Result<Value::List> AllPages(Client& c, const std::string& route, size_t limit = SIZE_MAX) {
  Value::List all;
  std::string cursor;
  const char sep = route.find('?') == std::string::npos ? '?' : '&';
  while (all.size() < limit) {
    std::string page_route = route + sep + "limit=500";
    if (!cursor.empty()) page_route += "&cursor=" + Escape(cursor);
    Result<Value> page = c.Get(page_route);
    if (!page.ok()) return page.error();
    for (const Value& item : Items(*page)) {
      if (all.size() < limit) all.push_back(item);
    }
    const Value& next = Field(*page, "next_cursor");
    if (!next.is_string() || next.as_string().empty()) break;
    cursor = next.as_string();
  }
  return all;
}

// The names of the environments the token sees, sorted.
Result<std::vector<std::string>> EnvironmentNames(Client& c) {
  Result<Value::List> envs = AllPages(c, "/api/v1/environments");
  if (!envs.ok()) return envs.error();
  std::vector<std::string> names;
  for (const Value& e : *envs) names.push_back(Str(e, "name"));
  return names;
}

// --- the API's JSON back into the structs the views print ---

state::ApplyRecord ApplyFrom(const Value& v) {
  state::ApplyRecord a;
  a.id = Int(v, "id");
  a.environment = Str(v, "environment");
  a.kind = Str(v, "kind");
  a.status = Str(v, "status");
  a.summary = Str(v, "summary");
  a.user = Str(v, "user");
  a.host = Str(v, "host");
  a.pid = Int(v, "pid");
  a.commit = Str(v, "commit");
  a.commit_subject = Str(v, "commit_subject");
  a.commit_author = Str(v, "commit_author");
  a.started_at = Int(v, "started_at");
  a.finished_at = Int(v, "finished_at");
  const Value& changes = Field(v, "changes");
  if (changes.is_list()) {
    for (const Value& ch : changes.as_list()) {
      state::ChangeRecord r;
      r.address = Str(ch, "address");
      r.action = Str(ch, "action");
      r.status = Str(ch, "status");
      r.error = Str(ch, "error");
      r.diff = Str(ch, "diff");
      a.changes.push_back(std::move(r));
    }
  }
  return a;
}

state::DriftRecord DriftFrom(const Value& v) {
  state::DriftRecord d;
  d.id = Int(v, "id");
  d.environment = Str(v, "environment");
  d.address = Str(v, "address");
  d.onset = Int(v, "onset");
  d.last_seen = Int(v, "last_seen");
  d.resolved_at = Int(v, "resolved_at");
  d.resolution = Str(v, "resolution");
  d.actor = Str(v, "actor");
  d.diff = Str(v, "diff");
  d.remediations = Int(v, "remediations");
  return d;
}

state::AuditEntry AuditFrom(const Value& v) {
  state::AuditEntry e;
  e.id = Int(v, "id");
  e.time = Int(v, "time");
  e.who = Str(v, "who");
  e.action = Str(v, "action");
  e.subject = Str(v, "subject");
  e.environment = Str(v, "environment");
  e.run_id = Int(v, "run_id");
  e.plan_hash = Str(v, "plan_hash");
  e.result = Str(v, "result");
  e.reason = Str(v, "reason");
  e.request_id = Str(v, "request_id");
  return e;
}

state::Run RunFrom(const Value& v) {
  state::Run r;
  r.id = Int(v, "id");
  r.environment = Str(v, "environment");
  r.action = Str(v, "action");
  r.status = Str(v, "status");
  r.commit = Str(v, "commit");
  r.plan_hash = Str(v, "plan_hash");
  r.plan_text = Str(v, "plan_text");
  r.author = Str(v, "author");
  r.created_at = Int(v, "created_at");
  r.started_at = Int(v, "started_at");
  r.finished_at = Int(v, "finished_at");
  r.message = Str(v, "message");
  r.apply_id = Int(v, "apply_id");
  return r;
}

// The run of a history entry with its approvals ({"run": null} for a command line's apply).
std::optional<state::RunRecord> RunRecordFrom(const Value& v) {
  if (!v.is_object()) return std::nullopt;
  state::RunRecord r;
  r.run = RunFrom(v);
  const Value& approvals = Field(v, "approvals");
  if (approvals.is_list()) {
    for (const Value& a : approvals.as_list()) {
      state::Approval ap;
      ap.run_id = r.run.id;
      ap.who = Str(a, "who");
      ap.decision = Str(a, "decision");
      ap.comment = Str(a, "comment");
      ap.plan_hash = Str(a, "plan_hash");
      ap.created_at = Int(a, "created_at");
      r.approvals.push_back(std::move(ap));
    }
  }
  return r;
}

// One environment of GET /api/v1/environments as `env list` shows it; `resources` is counted
// from its resources route.
engine::EnvironmentSummary SummaryFrom(const Value& v, size_t resources) {
  engine::EnvironmentSummary r;
  r.name = Str(v, "name");
  const bool mapped = Field(v, "mapped").is_bool() && Field(v, "mapped").as_bool();
  r.branch = mapped ? Str(v, "branch") : "(gone)";
  r.head = Short(Str(v, "branch_head"));
  r.applied = Short(Str(v, "applied_commit"));
  r.behind = Int(v, "commits_behind", -1);
  r.is_protected = Field(v, "protected").is_bool() && Field(v, "protected").as_bool();
  r.resources = resources;
  r.status = mapped ? "not applied yet" : "-";
  const Value& last = Field(v, "last_apply");
  if (last.is_object()) {
    r.last_apply = FormatTime(Int(last, "started_at"));
    const std::string kind = Str(last, "kind");
    r.status = kind == "apply" ? Str(last, "status") : kind + " " + Str(last, "status");
  }
  if (r.branch == "(gone)" && r.resources > 0) r.status += ", branch deleted: env prune";
  const Value& lock = Field(v, "lock");
  if (lock.is_object()) r.status += " (locked by " + Str(lock, "holder") + ")";
  return r;
}

Result<size_t> CountResources(Client& c, const std::string& env) {
  Result<Value::List> rows = AllPages(c, EnvRoute(env) + "/resources");
  if (!rows.ok()) return rows.error();
  return rows->size();
}

// --- following a run ---

std::atomic<bool> g_interrupted{false};

extern "C" void OnFollowInterrupt(int) { g_interrupted.store(true); }

// Ctrl-C (and SIGTERM) while a run is followed: stop following (installed for its lifetime).
class InterruptGuard {
 public:
  explicit InterruptGuard(Client& c) : c_(c) {
    g_interrupted.store(false);
    struct sigaction sa {};
    sa.sa_handler = OnFollowInterrupt;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int_);
    sigaction(SIGTERM, &sa, &old_term_);
    c_.set_cancel(&g_interrupted);
  }
  ~InterruptGuard() {
    c_.set_cancel(nullptr);
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
  }

 private:
  Client& c_;
  struct sigaction old_int_ {};
  struct sigaction old_term_ {};
};

// Waits `ms` milliseconds, less when interrupted.
void Pause(int ms) {
  timespec ts{ms / 1000, (ms % 1000) * 1000000L};
  while (!g_interrupted.load() && nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

// A run followed to its end: its last JSON, or why following stopped.
struct Followed {
  Value run;
  bool interrupted = false;
  std::string error;  ///< the server could not be asked
};

// Polls GET /api/v1/runs/{id} until the run is final (or Ctrl-C), telling each new status on
// standard error, and calling `on_plan` once with the run's JSON when it first holds a plan.
// A plan run is done once planned; an apply goes on to apply what it planned.
Followed Follow(Client& c, Value run, const std::function<void(const Value&)>& on_plan) {
  const bool plan_only = Str(run, "action") == "plan";
  Followed f;
  const int64_t id = Int(run, "id");
  std::string told;
  bool planned = false;
  int pause = 100;
  while (true) {
    const std::string status = Str(run, "status");
    if (status != told) {
      std::fprintf(stderr, "run #%lld: %s\n", static_cast<long long>(id), status.c_str());
      if (status == "awaiting_approval") {
        std::fprintf(stderr,
                     "run #%lld waits for approval: `driftless approve %lld` (or reject) with a "
                     "token that may approve, other than its author's\n",
                     static_cast<long long>(id), static_cast<long long>(id));
      }
      std::fflush(stderr);
      told = status;
    }
    if (!planned && Field(run, "plan").is_object()) {
      planned = true;
      on_plan(run);
    }
    if (state::IsFinalRunStatus(status) ||
        (plan_only && (status == "planned" || status == "awaiting_approval"))) {
      break;
    }
    Pause(pause);
    pause = std::min(pause * 2, 1000);
    if (g_interrupted.load()) break;
    Result<Value> next = c.Get(RunRoute(id));
    if (g_interrupted.load()) break;
    if (!next.ok()) {
      f.error = next.error().message;
      break;
    }
    run = std::move(*next);
  }
  f.interrupted = g_interrupted.load();
  f.run = std::move(run);
  return f;
}

// What a Ctrl-C while following says; the exit code.
int StoppedFollowing(Client& c, const Value& run) {
  const int64_t id = Int(run, "id");
  const std::string env = Str(run, "environment");
  std::fprintf(stderr,
               "\nStopped following run #%lld of environment %s; the run goes on on the server "
               "(last seen %s). See it with `driftless runs %s --server %s`; cancel it with POST "
               "/api/v1/runs/%lld/cancel.\n",
               static_cast<long long>(id), env.c_str(), Str(run, "status").c_str(), env.c_str(),
               c.url().text.c_str(), static_cast<long long>(id));
  return kStoppedFollowing;
}

// Queues a run of `action` on `env`; its JSON, or the exit code after a message.
Result<Value> Queue(Client& c, const std::string& env, const std::string& action) {
  Value body = Value::MakeObject();
  body.Set("action", Value::String(action));
  Result<Value> run = c.Post(EnvRoute(env) + "/runs", body);
  if (!run.ok()) return run;
  std::fprintf(stderr,
               "Queued run #%lld: %s of environment %s on %s (Ctrl-C stops following it, "
               "not the run).\n",
               static_cast<long long>(Int(*run, "id")), action.c_str(), env.c_str(),
               c.url().text.c_str());
  std::fflush(stderr);
  return run;
}

// The plan of a run (or of a drift check), as the server made it.
Result<plan::Plan> RunPlanOf(const Value& run) {
  Result<plan::Plan> p = plan::PlanFromJson(Field(run, "plan"));
  if (!p.ok()) {
    return MakeError("run #" + std::to_string(Int(run, "id")) +
                     ": the server's plan cannot be read: " + p.error().message);
  }
  return p;
}

// A run that ended without its result: "run #7 was canceled: why".
int RunEndedBadly(const Value& run) {
  const std::string message = Str(run, "message");
  return Fail("run #" + std::to_string(Int(run, "id")) + " of environment " +
              Str(run, "environment") + " " + Str(run, "status") +
              (message.empty() ? "" : ": " + message));
}

std::string Age(int64_t seconds) {
  if (seconds < 0) seconds = 0;
  if (seconds < 60) return std::to_string(seconds) + "s";
  if (seconds < 3600) return std::to_string(seconds / 60) + "m";
  if (seconds < 86400) return std::to_string(seconds / 3600) + "h";
  return std::to_string(seconds / 86400) + "d";
}

void PrintJson(const Value& v) { std::printf("%s\n", value::ToPrettyJson(v).c_str()); }

}  // namespace

int RemotePlan(Client& c, const ApplyFlags& flags, const Output& out) {
  if (!flags.out.empty()) {
    // A plan file binds the live objects the planner read; the server's plan does not carry
    // them, and a server applies the plans it makes itself.
    return Fail(
        "plan --out does not go with --server: the server applies its own plan (`apply "
        "--server`); `plan --server --json` prints the server's plan");
  }
  Result<Value> queued = Queue(c, flags.env, "plan");
  if (!queued.ok()) return Fail(queued.error().message);
  InterruptGuard guard(c);
  Followed f = Follow(c, std::move(*queued), [](const Value&) {});
  if (f.interrupted) return StoppedFollowing(c, f.run);
  if (!f.error.empty()) return Fail(f.error);
  const std::string status = Str(f.run, "status");
  const bool changes = status == "planned" || status == "awaiting_approval";
  if (Field(f.run, "plan").is_object() &&
      (changes || status == "no_changes" || status == "errored")) {
    Result<plan::Plan> p = RunPlanOf(f.run);
    if (!p.ok()) return Fail(p.error().message);
    int code = 0;
    if (out.json) {
      // The server's own JSON of its plan (docs/plan-json.md; unchanged resources only counted).
      PrintJson(Field(f.run, "plan"));
      code = flags.detailed_exitcode && changes ? 2 : 0;
    } else {
      code = ShowPlan(*p, changes, flags, out);
    }
    // An errored plan (problems in the declarations): the server's message says which.
    if (status == "errored") return RunEndedBadly(f.run);
    return code;
  }
  return RunEndedBadly(f.run);
}

int RemoteApply(Client& c, const ApplyFlags& flags, const Output& out) {
  if (!flags.plan_file.empty()) {
    return Fail("a server applies the plan it makes: apply --server takes no plan file (" +
                flags.plan_file + ")");
  }
  if (!flags.auto_approve) {
    return Fail(
        "apply --server queues the apply at once: add --auto-approve (the server's approval "
        "rules still hold; see `driftless plan --server` for the plan first)");
  }
  Result<Value> queued = Queue(c, flags.env, "apply");
  if (!queued.ok()) return Fail(queued.error().message);
  InterruptGuard guard(c);
  std::string plan_error;
  Followed f = Follow(c, std::move(*queued), [&](const Value& run) {
    Result<plan::Plan> p = RunPlanOf(run);
    if (!p.ok()) {
      plan_error = p.error().message;
      return;
    }
    PrintPlanText(*p, out);
    std::fflush(stdout);
  });
  if (f.interrupted) return StoppedFollowing(c, f.run);
  if (!f.error.empty()) return Fail(f.error);
  if (!plan_error.empty()) std::fprintf(stderr, "warning: %s\n", plan_error.c_str());
  const std::string status = Str(f.run, "status");
  const std::string env = Str(f.run, "environment");
  if (status == "no_changes") {
    std::printf("No changes. Environment %s matches its declarations.\n", env.c_str());
    return 0;
  }
  const int64_t apply_id = Int(f.run, "apply_id");
  if (apply_id != 0) {
    Result<Value> record = c.Get(EnvRoute(env) + "/history/" + std::to_string(apply_id));
    if (!record.ok()) return Fail(record.error().message);
    state::ApplyRecord a = ApplyFrom(*record);
    std::printf("\n");
    for (const auto& ch : a.changes) {
      if (!ch.error.empty())
        std::fprintf(stderr, "error: %s: %s\n", ch.address.c_str(), ch.error.c_str());
    }
    std::printf("Apply #%lld %s: %s.\n", static_cast<long long>(a.id), a.status.c_str(),
                a.summary.c_str());
  }
  if (status == "applied") return 0;
  return RunEndedBadly(f.run);
}

int RemoteDecide(Client& c, int64_t run, bool approve, const std::string& comment,
                 const Output& out) {
  Value body = Value::MakeObject();
  if (!comment.empty()) body.Set("comment", Value::String(comment));
  Result<Value> decided = c.Post(RunRoute(run) + (approve ? "/approve" : "/reject"), body);
  if (!decided.ok()) return Fail(decided.error().message);
  if (out.json) {
    PrintJson(*decided);
    return 0;
  }
  state::Run r = RunFrom(*decided);
  const int64_t required = Int(*decided, "approvals_required");
  std::printf("%s run #%lld (%s of environment %s, plan %s); it is now %s%s.\n",
              approve ? "Approved" : "Rejected", static_cast<long long>(r.id), r.action.c_str(),
              r.environment.c_str(), r.plan_hash.substr(0, 12).c_str(), r.status.c_str(),
              required > 0 ? (", " + std::to_string(required) + " approval" +
                              (required == 1 ? "" : "s") + " required")
                                 .c_str()
                           : "");
  const Value& approvals = Field(*decided, "approvals");
  if (approvals.is_list()) {
    for (const Value& a : approvals.as_list()) {
      std::string comment_text = Str(a, "comment");
      std::printf("  %-8s by %s at %s%s\n", Str(a, "decision").c_str(), Str(a, "who").c_str(),
                  FormatTime(Int(a, "created_at")).c_str(),
                  comment_text.empty() ? "" : (": " + comment_text).c_str());
    }
  }
  return 0;
}

int RemoteRuns(Client& c, const std::string& env, int limit, const Output& out) {
  if (limit < 1) return Fail("--limit: at least 1");
  std::vector<std::string> envs;
  if (!env.empty()) {
    envs.push_back(env);
  } else {
    Result<std::vector<std::string>> names = EnvironmentNames(c);
    if (!names.ok()) return Fail(names.error().message);
    envs = std::move(*names);
  }
  Value::List runs;
  for (const std::string& e : envs) {
    Result<Value::List> page = AllPages(c, EnvRoute(e) + "/runs", static_cast<size_t>(limit));
    if (!page.ok()) return Fail(page.error().message);
    for (Value& r : *page) runs.push_back(std::move(r));
  }
  std::stable_sort(runs.begin(), runs.end(),
                   [](const Value& a, const Value& b) { return Int(a, "id") > Int(b, "id"); });
  if (runs.size() > static_cast<size_t>(limit)) runs.resize(static_cast<size_t>(limit));
  if (out.json) {
    PrintJson(Value::MakeList(std::move(runs)));
    return 0;
  }
  if (runs.empty()) {
    std::printf("No runs yet%s.\n", env.empty() ? "" : (" in environment " + env).c_str());
    return 0;
  }
  const int64_t now = NowUnix();
  std::printf("%-6s %-18s %-12s %-18s %-8s %-16s %-5s %s\n", "ID", "ENVIRONMENT", "ACTION",
              "STATUS", "COMMIT", "AUTHOR", "AGE", "MESSAGE");
  for (const Value& v : runs) {
    state::Run r = RunFrom(v);
    std::string message = r.message;
    if (size_t nl = message.find('\n'); nl != std::string::npos) message = message.substr(0, nl);
    if (message.size() > 60) message = message.substr(0, 57) + "...";
    std::printf("%-6lld %-18s %-12s %-18s %-8s %-16s %-5s %s\n", static_cast<long long>(r.id),
                r.environment.c_str(), r.action.c_str(), r.status.c_str(),
                r.commit.empty() ? "-" : Short(r.commit).c_str(),
                r.author.empty() ? "-" : r.author.c_str(), Age(now - r.created_at).c_str(),
                message.c_str());
  }
  return 0;
}

int RemoteEnvList(Client& c, const Output& out) {
  Result<Value::List> envs = AllPages(c, "/api/v1/environments");
  if (!envs.ok()) return Fail(envs.error().message);
  std::vector<engine::EnvironmentSummary> rows;
  for (const Value& e : *envs) {
    Result<size_t> n = CountResources(c, Str(e, "name"));
    if (!n.ok()) return Fail(n.error().message);
    rows.push_back(SummaryFrom(e, *n));
  }
  return ShowEnvList(rows, out);
}

int RemoteEnvShow(Client& c, const std::string& env, const Output& out) {
  Result<Value> shown = c.Get(EnvRoute(env));
  if (!shown.ok()) return Fail(shown.error().message);
  Result<Value::List> resources = AllPages(c, EnvRoute(env) + "/resources");
  if (!resources.ok()) return Fail(resources.error().message);
  Result<Value::List> applies = AllPages(c, EnvRoute(env) + "/history", 5);
  if (!applies.ok()) return Fail(applies.error().message);
  const Value& lock = Field(*shown, "lock");
  if (out.json) {
    Value o = Value::MakeObject();
    o.Set("name", Value::String(env));
    Value::List rs;
    for (const Value& r : *resources) rs.push_back(Value::String(Str(r, "address")));
    o.Set("resources", Value::MakeList(std::move(rs)));
    if (lock.is_object()) {
      o.Set("locked_by", Value::String(Str(lock, "holder")));
      o.Set("lock_id", Value::Int(Int(lock, "id")));
    }
    o.Set("recent_applies", Value::MakeList(*applies));
    o.Set("server", *shown);
    PrintJson(o);
    return 0;
  }
  engine::EnvironmentSummary r = SummaryFrom(*shown, resources->size());
  std::printf("Environment %s\n  resources: %zu\n", env.c_str(), resources->size());
  if (!r.branch.empty() && r.branch != "(gone)") PrintBranchLines(r);
  if (lock.is_object()) {
    std::printf("  locked:    by %s (pid %lld) for %s since %s (lock %lld)\n",
                Str(lock, "holder").c_str(), static_cast<long long>(Int(lock, "pid")),
                Str(lock, "operation").c_str(), FormatTime(Int(lock, "since")).c_str(),
                static_cast<long long>(Int(lock, "id")));
  }
  if (!applies->empty()) {
    std::printf("  recent applies:\n");
    for (const Value& v : *applies) {
      state::ApplyRecord a = ApplyFrom(v);
      std::printf("    #%lld %s %s %s\n", static_cast<long long>(a.id),
                  FormatTime(a.started_at).c_str(), a.status.c_str(), a.summary.c_str());
    }
  }
  const Value& run = Field(*shown, "last_run");
  if (run.is_object()) {
    std::printf("  last run:  #%lld %s %s\n", static_cast<long long>(Int(run, "id")),
                Str(run, "action").c_str(), Str(run, "status").c_str());
  }
  return 0;
}

// The items of the list route EnvRoute(env) + `suffix` of `env`, or of every environment the
// token sees when `env` is "", newest (highest id) first, at most `limit`, each made by `from`.
template <typename T>
Result<std::vector<T>> NewestAcross(Client& c, const std::string& env, const std::string& suffix,
                                    int limit, T (*from)(const Value&)) {
  std::vector<std::string> envs;
  if (!env.empty()) {
    envs.push_back(env);
  } else {
    Result<std::vector<std::string>> names = EnvironmentNames(c);
    if (!names.ok()) return names.error();
    envs = std::move(*names);
  }
  const size_t most = static_cast<size_t>(std::max(limit, 0));
  std::vector<T> items;
  for (const std::string& e : envs) {
    Result<Value::List> page = AllPages(c, EnvRoute(e) + suffix, most);
    if (!page.ok()) return page.error();
    for (const Value& v : *page) items.push_back(from(v));
  }
  std::stable_sort(items.begin(), items.end(), [](const T& a, const T& b) { return a.id > b.id; });
  if (items.size() > most) items.resize(most);
  return items;
}

int RemoteHistory(Client& c, const std::string& env, int limit, const Output& out) {
  Result<std::vector<state::ApplyRecord>> applies =
      NewestAcross(c, env, "/history", limit, &ApplyFrom);
  if (!applies.ok()) return Fail(applies.error().message);
  return ShowHistory(*applies, env, out);
}

int RemoteHistoryShow(Client& c, int64_t id, const Output& out) {
  // The route is per environment: ask each the token sees for the apply.
  Result<std::vector<std::string>> names = EnvironmentNames(c);
  if (!names.ok()) return Fail(names.error().message);
  for (const std::string& e : *names) {
    const std::string route = EnvRoute(e) + "/history/" + std::to_string(id);
    Result<client::Reply> reply = c.Send("GET", route);
    if (!reply.ok()) return Fail(reply.error().message);
    if (reply->status == 404 || reply->status == 403) continue;
    if (reply->status != 200) return Fail(client::DescribeError("GET", route, *reply));
    Result<Value> parsed = value::ParseJson(reply->body);
    if (!parsed.ok()) return Fail("GET " + route + ": the answer is not JSON");
    return ShowApplyRecord(ApplyFrom(*parsed), RunRecordFrom(Field(*parsed, "run")), out);
  }
  return Fail("no apply #" + std::to_string(id) + " in the environments the server shows " +
              "this token");
}

int RemoteDrift(Client& c, const std::string& env, bool full, const Output& out) {
  // The server checks now, as `drift` does here: every live object against state.
  Value body = Value::MakeObject();
  body.Set("full", Value::Bool(full));
  Result<Value> checked = c.Post(EnvRoute(env) + "/drift/check", body);
  if (!checked.ok()) return Fail(checked.error().message);
  Result<plan::Plan> p = RunPlanOf(*checked);
  if (!p.ok()) return Fail(p.error().message);
  DriftView view;
  view.environment = p->environment;
  view.revision = p->revision;
  view.source = p->source;
  view.checked = static_cast<size_t>(std::max<int64_t>(Int(*checked, "checked"), 0));
  for (const plan::Change& ch : p->changes) {
    if (ch.drift) view.drifted.push_back(&ch);
  }
  return ShowDrift(view, out);
}

int RemoteDriftHistory(Client& c, const std::string& env, int limit, const Output& out) {
  Result<std::vector<state::DriftRecord>> drifts =
      NewestAcross(c, env, "/drift/timeline", limit, &DriftFrom);
  if (!drifts.ok()) return Fail(drifts.error().message);
  return ShowDriftHistory(*drifts, env, NowUnix(), out);
}

int RemoteAudit(Client& c, const AuditFlags& flags, const Output& out) {
  if (flags.limit < 1 || flags.limit > 500) return Fail("--limit: use 1 to 500 with --server");
  std::string route = "/api/v1/audit?limit=" + std::to_string(flags.limit);
  if (!flags.env.empty()) route += "&environment=" + Escape(flags.env);
  if (!flags.who.empty()) route += "&who=" + Escape(flags.who);
  if (flags.cursor != 0) route += "&cursor=" + std::to_string(flags.cursor);
  Result<Value> page = c.Get(route);
  if (!page.ok()) return Fail(page.error().message);
  state::Page<state::AuditEntry> entries;
  for (const Value& v : Items(*page)) entries.items.push_back(AuditFrom(v));
  const Value& next = Field(*page, "next_cursor");
  if (next.is_string()) entries.next_cursor = std::atoll(next.as_string().c_str());
  return ShowAudit(entries, flags, out);
}

}  // namespace driftless::cli
