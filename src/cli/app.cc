#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/remote.h"
#include "cli/token.h"

namespace driftless::cli {

namespace {

constexpr const char* kVersion = "0.1.0";
constexpr const char* kEnvHelp =
    "environment (default: the current branch's in a Git working tree, else `default`)";

// "30s", "2m", "1h" or plain seconds.
std::string ParseDuration(const std::string& text, double& seconds) {
  if (text.empty()) return "empty duration";
  char* end = nullptr;
  double v = std::strtod(text.c_str(), &end);
  std::string unit = end ? end : "";
  double mult = unit.empty() || unit == "s" ? 1
                : unit == "m"               ? 60
                : unit == "h"               ? 3600
                : unit == "d"               ? 86400
                : unit == "ms"              ? 0.001
                                            : -1;
  if (end == text.c_str() || mult < 0 || v < 0)
    return "not a duration: " + text + " (use 30s, 2m, 1h)";
  seconds = v * mult;
  return "";
}

}  // namespace

int Main(int argc, char** argv) {
  CLI::App app{
      "driftless keeps every environment equal to its declarations: plan, apply, "
      "and see drift as a line diff.",
      "driftless"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("driftless ") + kVersion);
  engine::WorkspaceOptions g;
  Output o;
  std::string lock_timeout = "0s";
  std::string lease;  // "" : DRIFTLESS_LEASE, else 60s
  std::vector<std::string> var_args;
  auto global = [&](CLI::App* cmd) {
    cmd->add_option("--dir", g.dir, "the repository folder (default: the current folder)");
    cmd->add_option("--state", g.state,
                    "state location: a SQLite path, or a postgres:// URI for a shared "
                    "PostgreSQL state (default DRIFTLESS_STATE, else "
                    "<dir>/.driftless/state.db)");
    cmd->add_option("--secrets-file", g.secrets_file, "a file of NAME=VALUE secret lines");
    cmd->add_flag("--json", o.json, "machine-readable output");
    // One NAME=VALUE per --var: a vector option would otherwise take the ENV after it too.
    cmd->add_option("--var", var_args, "set a variable: NAME=VALUE (repeatable; overrides files)")
        ->allow_extra_args(false);
    cmd->add_flag("--no-color", o.no_color, "never colour the output");
    cmd->add_option("--repo", g.repo,
                    "a Git repository: a path, file://, https:// or ssh:// URL (default: the "
                    "repository around --dir, if any)");
    cmd->add_option("--ref", g.ref,
                    "the branch, tag or commit to read (default: the environment's branch)");
    cmd->add_flag("--worktree", g.worktree,
                  "read the working tree's files, uncommitted changes included (never applied "
                  "to a protected environment)");
  };
  auto changing = [&](CLI::App* cmd) {
    cmd->add_option("--parallelism", g.parallelism, "changes applied at once (default 8)")
        ->check(CLI::Range(1, 256));
    cmd->add_option("--lock-timeout", lock_timeout,
                    "wait this long for the environment's lock (30s, 2m; default: fail at once)");
    cmd->add_option("--lease", lease,
                    "the lock's lease: renewed while the command runs; a holder that stops "
                    "renewing (killed, cut off) loses the lock after this long (default "
                    "DRIFTLESS_LEASE, else 60s; at least 1s)");
  };

  RemoteFlags rf;
  auto remote = [&](CLI::App* cmd) {
    cmd->add_option("--server", rf.server,
                    "ask this driftless serve rather than the local state: http://HOST:PORT, "
                    "https://HOST[:PORT] or unix:///PATH (default DRIFTLESS_SERVER)");
    cmd->add_option("--token-file", rf.token_file,
                    "the API token for --server: the first line of FILE (default "
                    "DRIFTLESS_TOKEN)");
  };

  ApplyFlags af;
  std::string validate_env;
  CLI::App* validate = app.add_subcommand("validate",
                                          "parse, interpolate and type-check the "
                                          "declarations; no target is touched");
  validate->add_option("ENV", validate_env, kEnvHelp);
  global(validate);

  CLI::App* plan = app.add_subcommand("plan", "show what apply would change, with line diffs");
  plan->add_option("ENV", af.env, kEnvHelp);
  plan->add_option("--out", af.out, "save the plan to a file for `apply FILE`");
  plan->add_flag("--detailed-exitcode", af.detailed_exitcode,
                 "exit 2 when there are changes or drift, 0 when there are none");
  plan->add_option("--parallelism", g.parallelism, "live objects read at once (default 8)")
      ->check(CLI::Range(1, 256));
  global(plan);
  remote(plan);

  std::vector<std::string> apply_args;
  CLI::App* apply = app.add_subcommand("apply", "make the environment equal to its declarations");
  apply
      ->add_option("ENV_OR_PLANFILE", apply_args, "environment, and/or a plan file from plan --out")
      ->expected(0, 2);
  apply->add_flag("--auto-approve", af.auto_approve, "do not ask for confirmation");
  global(apply);
  remote(apply);
  changing(apply);

  std::string drift_env;
  CLI::App* drift = app.add_subcommand(
      "drift", "live against last applied, with line diffs; exit 2 when anything drifted");
  drift->add_option("ENV", drift_env, kEnvHelp);
  bool drift_history = false;
  drift->add_flag("--history", drift_history,
                  "the drift timeline: onset, duration, how it was resolved (all environments "
                  "unless ENV)");
  bool drift_full = false;
  drift->add_flag("--full", drift_full,
                  "read every live object, also those whose stamp (device, inode, size, times) "
                  "says they are unchanged since they were last read");
  drift->add_option("--parallelism", g.parallelism, "live objects read at once (default 8)")
      ->check(CLI::Range(1, 256));
  global(drift);
  remote(drift);

  engine::WatchOptions wf;
  std::string watch_interval = "5m", watch_debounce = "20ms", watch_for = "0s";
  CLI::App* watch = app.add_subcommand(
      "watch", "stay in the foreground: detect drift within a second, record, report, enforce");
  watch->add_option("ENV", wf.env, kEnvHelp);
  watch->add_option("--interval", watch_interval,
                    "full scan every (the safety net beside file events; default 5m)");
  watch->add_option("--debounce", watch_debounce,
                    "events closer than this are one check (default 20ms)");
  watch->add_option("--for", watch_for, "stop after this long (default: until interrupted)");
  watch
      ->add_option("--flap-limit", wf.flap_limit,
                   "reverts within 10 minutes that make a resource flapping: backed off "
                   "(default 3)")
      ->check(CLI::Range(1, 1000));
  global(watch);

  ServeFlags sf;
  std::string serve_poll = "1m";
  std::string serve_run_poll = "1m";
  std::string serve_event_retention = "7d";
  CLI::App* serve = app.add_subcommand(
      "serve", "follow every branch: environments created, planned, applied and destroyed");
  serve->add_option("--listen", sf.listen,
                    "HOST:PORT to listen on, or unix:///PATH for a unix socket (default "
                    "127.0.0.1:8080)");
  serve->add_option("--poll", serve_poll, "fetch this often beside webhooks (default 1m)");
  serve->add_option("--run-poll", serve_run_poll,
                    "several servers: read the runs queued and the cancels asked for by other "
                    "servers this often beside the state's notifications (default 1m)");
  serve->add_option("--webhook-secret-file", sf.webhook_secret_file,
                    "the secret of POST /api/v1/hooks/git (a private file; without it, "
                    "webhooks are refused)");
  serve->add_option("--event-retention", serve_event_retention,
                    "keep the event log (the event stream's replay) this long (default 7d)");
  global(serve);
  changing(serve);

  std::string destroy_env;
  CLI::App* destroy = app.add_subcommand("destroy", "delete everything driftless created in ENV");
  destroy->add_option("ENV", destroy_env, "environment")->required();
  destroy->add_flag("--auto-approve", af.auto_approve, "do not ask for confirmation");
  global(destroy);
  changing(destroy);

  CLI::App* state = app.add_subcommand("state", "inspect and edit state");
  state->require_subcommand(1);
  std::string state_env, address;
  CLI::App* state_list = state->add_subcommand("list", "list managed resources");
  state_list->add_option("ENV", state_env, kEnvHelp);
  global(state_list);
  CLI::App* state_show = state->add_subcommand("show", "show a resource's applied attributes");
  state_show->add_option("ADDR", address, "kind/name")->required();
  state_show->add_option("ENV", state_env, kEnvHelp);
  global(state_show);
  CLI::App* state_rm = state->add_subcommand("rm", "forget a resource without touching it");
  state_rm->add_option("ADDR", address, "kind/name")->required();
  state_rm->add_option("ENV", state_env, kEnvHelp);
  global(state_rm);
  changing(state_rm);
  std::string import_id;
  CLI::App* state_import = state->add_subcommand(
      "import", "take an existing object under management as a declared resource, unchanged");
  state_import->add_option("ADDR", address, "kind/name, declared in ENV")->required();
  state_import->add_option("ID", import_id, "the object's import ID (docs/state.md#import)")
      ->required();
  state_import->add_option("ENV", state_env, kEnvHelp);
  global(state_import);
  changing(state_import);

  std::string history_env;
  int limit = 50;
  CLI::App* history = app.add_subcommand("history", "applies: when, who, commit, result");
  history->add_option("ENV", history_env, "environment (default: all)");
  history->add_option("--limit", limit, "show at most this many (default 50)");
  global(history);
  remote(history);
  int64_t history_id = 0;
  CLI::App* history_show = history->add_subcommand("show", "one apply with its changes and diffs");
  history_show->add_option("ID", history_id, "apply id")->required();
  global(history_show);
  remote(history_show);

  CLI::App* env = app.add_subcommand("env", "environments");
  env->require_subcommand(1);
  CLI::App* env_list = env->add_subcommand(
      "list", "every environment: its branch, applied commit, branch head, commits behind");
  global(env_list);
  remote(env_list);
  std::string env_name;
  CLI::App* env_show = env->add_subcommand("show", "one environment in detail");
  env_show->add_option("ENV", env_name, "environment")->required();
  global(env_show);
  remote(env_show);
  CLI::App* env_prune = env->add_subcommand(
      "prune",
      "destroy environments whose branch is gone or whose ttl passed (protected ones never)");
  env_prune->add_flag("--auto-approve", af.auto_approve, "destroy them (default: only plan)");
  global(env_prune);
  changing(env_prune);

  CLI::App* notify = app.add_subcommand("notify", "notification sinks and their deliveries");
  notify->require_subcommand(1);
  CLI::App* notify_status = notify->add_subcommand(
      "status", "per sink: delivered, pending and failing deliveries, last error, next attempt");
  global(notify_status);

  CLI::App* token = app.add_subcommand("token", "API tokens for driftless serve");
  token->require_subcommand(1);
  TokenCreateFlags tf;
  CLI::App* token_create = token->add_subcommand(
      "create", "make a token; it is printed once, alone on the last line of standard output");
  token_create->add_option("--role", tf.role, "viewer, editor or admin")
      ->required()
      ->check(CLI::IsMember({"viewer", "editor", "admin"}));
  token_create->add_option("--envs", tf.envs,
                           "the environments it may act on: a glob where * stops at / and ** "
                           "does not (default **: every environment)");
  token_create->add_option(
      "--rights", tf.rights,
      "limit it to these rights of its role, comma-separated: read, plan, "
      "approve, apply, destroy, unlock, tokens (default: all the role grants)");
  token_create->add_option("--name", tf.name, "its name (default: ROLE-<random>)");
  token_create->add_option("--ttl", tf.ttl, "expire after this long: 90d, 12h, 1h30m, 2w");
  global(token_create);
  CLI::App* token_list = token->add_subcommand("list", "tokens and their status (never a secret)");
  global(token_list);
  std::string token_name;
  CLI::App* token_revoke = token->add_subcommand("revoke", "revoke a token by name");
  token_revoke->add_option("NAME", token_name, "the token's name")->required();
  global(token_revoke);
  int64_t decide_run = 0;
  std::string decide_comment;
  CLI::App* approve = app.add_subcommand(
      "approve", "approve a run that awaits approval on a server (--server only)");
  CLI::App* reject =
      app.add_subcommand("reject", "reject a run that awaits approval on a server (--server only)");
  for (CLI::App* cmd : {approve, reject}) {
    cmd->add_option("RUN", decide_run, "the run's id, as `driftless runs` prints it")->required();
    cmd->add_option("--comment", decide_comment, "why, kept with the decision");
    global(cmd);
    remote(cmd);
  }
  std::string runs_env;
  int runs_limit = 50;
  CLI::App* runs = app.add_subcommand(
      "runs",
      "a server's runs, newest first: id, environment, action, status, commit, author, age, "
      "message (--server only)");
  runs->add_option("ENV", runs_env, "environment (default: all)");
  runs->add_option("--limit", runs_limit, "show at most this many (default 50)");
  global(runs);
  remote(runs);
  std::string unlock_env;
  int64_t unlock_id = 0;
  CLI::App* force_unlock = app.add_subcommand(
      "force-unlock", "release an environment's lock held by a stuck or unreachable holder");
  force_unlock->add_option("ENV", unlock_env, "the environment")->required();
  force_unlock->add_option("LOCK", unlock_id, "the lock's id, as `env show ENV` prints it")
      ->required();
  global(force_unlock);
  AuditFlags audit_flags;
  CLI::App* audit = app.add_subcommand(
      "audit", "the server's audit log: every decision, allowed or refused, newest first");
  audit->add_option("--env", audit_flags.env, "only this environment's entries");
  audit->add_option("--who", audit_flags.who, "only this token's entries (or controller)");
  audit->add_option("--limit", audit_flags.limit, "show at most this many (default 50)");
  audit->add_option("--before", audit_flags.cursor, "entries older than this id");
  global(audit);
  remote(audit);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 1;
  }
  if (std::string err = ParseDuration(lock_timeout, g.lock_timeout); !err.empty()) {
    std::fprintf(stderr, "error: --lock-timeout: %s\n", err.c_str());
    return 1;
  }
  if (lease.empty()) {
    if (const char* e = std::getenv("DRIFTLESS_LEASE"); e != nullptr && *e != '\0') lease = e;
  }
  if (!lease.empty()) {
    double seconds = 0;
    std::string err = ParseDuration(lease, seconds);
    if (err.empty() && seconds < 1) err = "a lease is at least 1s";
    if (!err.empty()) {
      std::fprintf(stderr, "error: --lease (or DRIFTLESS_LEASE): %s\n", err.c_str());
      return 1;
    }
    // At most ten years, as the stores keep it; also keeps the conversion defined.
    g.lease_seconds = static_cast<int64_t>(std::ceil(std::min(seconds, 315360000.0)));
  }
  // A server's lease (its environments and their locks) is shorter: a dead server's
  // environments are taken over by the others sooner (docs/server.md#several-servers).
  if (lease.empty() && *serve) g.lease_seconds = 30;
  for (const auto& v : var_args) {
    size_t eq = v.find('=');
    if (eq == std::string::npos || eq == 0) {
      std::fprintf(stderr, "error: --var %s: use NAME=VALUE\n", v.c_str());
      return 1;
    }
    g.vars[v.substr(0, eq)] = v.substr(eq + 1);
  }
  // The workspace holds every declaration, state row and plan: freeing it piece by piece costs
  // more than a small plan. Optimised builds leave it to the OS at exit (main calls _Exit);
  // sanitizer builds free it so that LeakSanitizer sees a clean heap.
  auto owned = std::make_unique<Workspace>(g);
  Workspace& ws = *owned;
#ifndef DRIFTLESS_SANITIZE
  owned.release();
#endif
  // Commands that work on one environment: pick it, and the commit its declarations come from.
  auto select = [&](std::string& env_arg, bool prefer_worktree = false) {
    Status s = ws.Select(env_arg, prefer_worktree);
    if (!s.ok()) {
      std::fprintf(stderr, "error: %s\n", s.error().message.c_str());
      return false;
    }
    env_arg = ws.selection().env;
    return true;
  };
  // Against a server: the commands that have a --server form ask its API.
  if (rf.server.empty()) {
    if (const char* e = std::getenv("DRIFTLESS_SERVER"); e != nullptr && *e != '\0') rf.server = e;
  }
  const bool server_only = *runs || *approve || *reject;
  if (server_only && rf.server.empty()) {
    std::fprintf(stderr,
                 "error: %s works against a server only: give --server URL (or set "
                 "DRIFTLESS_SERVER) and a token (--token-file FILE or DRIFTLESS_TOKEN)%s\n",
                 *runs      ? "runs"
                 : *approve ? "approve"
                            : "reject",
                 *runs ? "; locally, `driftless history` lists the applies" : "");
    return 1;
  }
  if (!rf.server.empty() &&
      (server_only || *plan || *apply || *drift || *history || *env_list || *env_show || *audit)) {
    Result<client::ServerUrl> url = client::ParseServerUrl(rf.server);
    if (!url.ok()) {
      std::fprintf(stderr, "error: --server (or DRIFTLESS_SERVER): %s\n",
                   url.error().message.c_str());
      return 1;
    }
    Result<std::string> token = client::LoadToken(rf.token_file, std::getenv("DRIFTLESS_TOKEN"));
    if (!token.ok()) {
      std::fprintf(stderr, "error: %s\n", token.error().message.c_str());
      return 1;
    }
    client::Client c(std::move(*url), std::move(*token));
    // ENV defaults as locally (the current branch's environment) when it can be told.
    auto pick = [&](std::string& env_arg) { return !env_arg.empty() || select(env_arg); };
    if (*runs) return RemoteRuns(c, runs_env, runs_limit, o);
    if (*approve || *reject)
      return RemoteDecide(c, decide_run, approve->parsed(), decide_comment, o);
    if (*plan) return pick(af.env) ? RemotePlan(c, af, o) : 1;
    if (*apply) {
      for (const auto& a : apply_args) {
        struct stat st {};
        (stat(a.c_str(), &st) == 0 && S_ISREG(st.st_mode) ? af.plan_file : af.env) = a;
      }
      return pick(af.env) ? RemoteApply(c, af, o) : 1;
    }
    if (*drift && drift_history) return RemoteDriftHistory(c, drift_env, limit, o);
    if (*drift) return pick(drift_env) ? RemoteDrift(c, drift_env, drift_full, o) : 1;
    if (*history_show) return RemoteHistoryShow(c, history_id, o);
    if (*history) return RemoteHistory(c, history_env, limit, o);
    if (*env_list) return RemoteEnvList(c, o);
    if (*env_show) return RemoteEnvShow(c, env_name, o);
    if (*audit) return RemoteAudit(c, audit_flags, o);
  }
  if (*validate) return select(validate_env, true) ? RunValidate(ws, validate_env, o) : 1;
  if (*plan) return select(af.env) ? RunPlan(ws, af, o) : 1;
  if (*watch) {
    double debounce = 0;
    for (auto [text, out] :
         {std::pair{&watch_interval, &wf.interval}, std::pair{&watch_debounce, &debounce},
          std::pair{&watch_for, &wf.run_for}}) {
      if (std::string err = ParseDuration(*text, *out); !err.empty()) {
        std::fprintf(stderr, "error: watch: %s\n", err.c_str());
        return 1;
      }
    }
    wf.debounce_ms = static_cast<int>(debounce * 1000);
    return select(wf.env) ? RunWatch(ws, wf) : 1;
  }
  if (*serve) {
    if (std::string err = ParseDuration(serve_poll, sf.poll_seconds); !err.empty()) {
      std::fprintf(stderr, "error: --poll: %s\n", err.c_str());
      return 1;
    }
    if (std::string err = ParseDuration(serve_run_poll, sf.run_poll_seconds); !err.empty()) {
      std::fprintf(stderr, "error: --run-poll: %s\n", err.c_str());
      return 1;
    }
    double retention = 0;
    if (std::string err = ParseDuration(serve_event_retention, retention); !err.empty()) {
      std::fprintf(stderr, "error: --event-retention: %s\n", err.c_str());
      return 1;
    }
    if (retention < 60) {
      std::fprintf(stderr, "error: --event-retention: %s is shorter than a minute\n",
                   serve_event_retention.c_str());
      return 1;
    }
    sf.event_retention_seconds = static_cast<int64_t>(retention);
    return RunServe(g, sf);
  }
  if (*drift && drift_history) return RunDriftHistory(ws, drift_env, limit, o);
  if (*drift) return select(drift_env) ? RunDrift(ws, drift_env, drift_full, o) : 1;
  if (*apply) {
    // `apply [ENV] [PLANFILE]`: a positional that names an existing file is the plan file.
    for (const auto& a : apply_args) {
      struct stat st {};
      if (stat(a.c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
        af.plan_file = a;
      } else {
        af.env = a;
      }
    }
    if (!select(af.env)) return 1;
    return RunApply(ws, af, false, o);
  }
  if (*destroy) {
    af.env = destroy_env;
    if (!select(af.env)) return 1;
    return RunApply(ws, af, true, o);
  }
  if ((*state_list || *state_show || *state_rm || *state_import) && !select(state_env)) return 1;
  if (*state_list) return RunStateList(ws, state_env, o);
  if (*state_show) return RunStateShow(ws, state_env, address, o);
  if (*state_rm) return RunStateRm(ws, state_env, address);
  if (*state_import) return RunStateImport(ws, state_env, address, import_id, o);
  if (*history_show) return RunHistoryShow(ws, history_id, o);
  if (*history) return RunHistory(ws, history_env, limit, o);
  if (*env_list) return RunEnvList(ws, o);
  if (*env_show) return RunEnvShow(ws, env_name, o);
  if (*env_prune) return RunEnvPrune(ws, af.auto_approve, o);
  if (*notify_status) return RunNotifyStatus(ws, o);
  if (*token_create) return RunTokenCreate(ws, tf, o);
  if (*token_list) return RunTokenList(ws, o);
  if (*token_revoke) return RunTokenRevoke(ws, token_name);
  if (*audit) return RunAudit(ws, audit_flags, o);
  if (*force_unlock) return RunForceUnlock(ws, unlock_env, unlock_id);
  return 1;
}

}  // namespace driftless::cli
