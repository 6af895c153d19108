#include "state/control_common.h"

#include <algorithm>

namespace driftless::state {

int PageLimit(int limit, int fallback, int max) {
  if (limit <= 0) return fallback;
  return std::min(limit, max);
}

Status CheckNewRun(const Run& run) {
  if (run.environment.empty()) return MakeError("cannot queue a run without an environment");
  if (run.action != "plan" && run.action != "apply" && run.action != "destroy" &&
      run.action != "remediation") {
    return MakeError("cannot queue a run of environment " + run.environment + ": action \"" +
                     run.action + "\" is not plan, apply, destroy or remediation");
  }
  return Status::Ok();
}

Run QueuedRun(const Run& run, int64_t now) {
  Run out = run;
  out.id = 0;
  out.status = "queued";
  out.created_at = run.created_at > 0 ? run.created_at : now;
  out.started_at = out.finished_at = 0;
  out.message.clear();
  out.apply_id = 0;
  return out;
}

Status CheckRunTransition(int64_t id, const std::string& from, const std::string& to) {
  if (RunTransitionAllowed(from, to)) return Status::Ok();
  return MakeError("run " + std::to_string(id) + " cannot go from " + from + " to " + to +
                   ": not a step of a run's lifecycle");
}

Status CheckStartStatus(const std::string& env, const std::string& to) {
  if (to == "planning" || to == "applying") return Status::Ok();
  return MakeError("cannot start the next run of environment " + env + " as \"" + to +
                   "\": a run starts planning or applying");
}

Status CheckApproval(const Approval& a) {
  const std::string what = "cannot record a decision on run " + std::to_string(a.run_id);
  if (a.who.empty()) return MakeError(what + ": nobody made it");
  if (a.decision != "approved" && a.decision != "rejected") {
    return MakeError(what + ": decision \"" + a.decision + "\" is not approved or rejected");
  }
  return Status::Ok();
}

Status CheckToken(const Token& t) {
  if (t.name.empty()) return MakeError("cannot store a token without a name");
  const std::string what = "cannot store token " + t.name;
  if (t.role != "viewer" && t.role != "editor" && t.role != "admin") {
    return MakeError(what + ": role \"" + t.role + "\" is not viewer, editor or admin");
  }
  if (t.envs.empty()) return MakeError(what + ": no environment glob");
  if (t.hash.size() != 64) return MakeError(what + ": its hash is not a SHA-256");
  return Status::Ok();
}

Status CheckSession(const Session& s) {
  if (s.hash.size() != 64) return MakeError("cannot store a session: its hash is not a SHA-256");
  if (s.token_hash.size() != 64) {
    return MakeError("cannot store a session: its token's hash is not a SHA-256");
  }
  if (s.csrf.empty()) return MakeError("cannot store a session: it has no CSRF secret");
  if (s.expires_at <= s.created_at) {
    return MakeError("cannot store a session: it expires before it starts");
  }
  return Status::Ok();
}

Status CheckAudit(const AuditEntry& e) {
  if (e.action.empty()) return MakeError("cannot append to the audit log: no action");
  if (e.result != "allowed" && e.result != "refused") {
    return MakeError("cannot append " + e.action + " to the audit log: result \"" + e.result +
                     "\" is not allowed or refused");
  }
  return Status::Ok();
}

std::string TokenExistsMessage(const std::string& name) {
  return "a token named " + name + " exists already; revoke it first or choose another --name";
}

}  // namespace driftless::state
