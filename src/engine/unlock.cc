#include "engine/unlock.h"

#include "base/identity.h"

namespace driftless::engine {

namespace {

std::string Describe(const state::Lock& lock) {
  return "lock " + std::to_string(lock.token) + " held by " + lock.holder.UserAtHost() + " (pid " +
         std::to_string(lock.holder.pid) + ") for " + lock.operation + " since " +
         FormatTime(lock.acquired_at);
}

}  // namespace

Result<state::Lock> ForceUnlock(state::StateStore& store, const UnlockRequest& request) {
  state::AuditEntry entry;
  entry.who = request.who;
  entry.action = "lock.break";
  entry.environment = request.env;
  entry.request_id = request.request_id;
  auto refuse = [&](const std::string& why) -> Result<state::Lock> {
    entry.subject = "lock " + std::to_string(request.token);
    entry.result = "refused";
    entry.reason = why;
    (void)store.AppendAudit(entry);  // the refusal is what matters; a failed record is not
    return MakeError(why);
  };
  Result<std::optional<state::Lock>> held = store.GetLock(request.env);
  if (!held.ok()) return held.error();
  if (!*held) return refuse("environment " + request.env + " is not locked");
  if ((*held)->token != request.token) {
    return refuse("environment " + request.env + " is locked by " + Describe(**held) +
                  ", not by lock " + std::to_string(request.token) +
                  ": check it with `driftless env show " + request.env + "`");
  }
  // Compare-and-set on the token: a lock taken again meanwhile is left alone.
  Status released = store.ReleaseLock(**held);
  if (!released.ok()) return released.error();
  Result<std::optional<state::Lock>> now = store.GetLock(request.env);
  if (!now.ok()) return now.error();
  if (*now && (*now)->token == request.token) {
    return refuse("lock " + std::to_string(request.token) + " of environment " + request.env +
                  " could not be released");
  }
  entry.subject = Describe(**held);
  entry.result = "allowed";
  Result<int64_t> logged = store.AppendAudit(entry);
  if (!logged.ok()) {
    return MakeError(Describe(**held) + " was released, but the audit log could not record it: " +
                     logged.error().message);
  }
  return **held;
}

}  // namespace driftless::engine
