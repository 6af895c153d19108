#include "providers/container/health.h"

#include <algorithm>
#include <chrono>
#include <thread>

#include "base/strings.h"
#include "providers/container/container_target.h"
#include "providers/container/fields.h"

namespace driftless::providers::container {

using value::Value;

namespace {

using Clock = std::chrono::steady_clock;

// "exit 1: <output>" of the latest probe in State.Health.Log, or "".
std::string LastProbe(const Value& inspect) {
  const Value* state = inspect.Find("State");
  const Value* health = state != nullptr ? state->Find("Health") : nullptr;
  const Value* log = health != nullptr ? health->Find("Log") : nullptr;
  if (log == nullptr || !log->is_list() || log->as_list().empty()) return "";
  const Value& last = log->as_list().back();
  const Value* code = last.Find("ExitCode");
  std::string out(Trim(Str(last, "Output")));
  if (out.size() > 200) out = out.substr(0, 200) + "...";
  return "exit " + (code != nullptr && code->is_int() ? std::to_string(code->as_int()) : "?") +
         (out.empty() ? "" : ": " + out);
}

}  // namespace

Result<std::string> RunHealthcheck(const ContainerTarget& t, const std::string& container) {
  Result<Value> r = t.client().Json(
      "GET", std::string(kLibpod) + "/containers/" + UrlEncode(container) + "/healthcheck");
  if (!r.ok()) return r.error();
  return Str(*r, "Status");
}

Status WaitHealthy(const ContainerTarget& t, const std::string& name, int64_t interval_ns,
                   int64_t timeout_ns) {
  const bool probe = !t.Traits().runs_healthchecks;
  const auto deadline = Clock::now() + std::chrono::nanoseconds(timeout_ns);
  const auto pause = std::chrono::nanoseconds(
      std::clamp<int64_t>(interval_ns, 50 * 1000000LL, probe ? 1000000000LL : 250000000LL));
  std::string status = "starting";
  std::string last;
  while (true) {
    Result<Value> inspect = t.client().Json(
        "GET", std::string(kApi) + "/containers/" + UrlEncode(name) + "/json", {}, true);
    if (!inspect.ok()) return inspect.error();
    if (inspect->is_null())
      return MakeError("container " + Quote(name) +
                       " disappeared while "
                       "driftless waited for it to become healthy");
    const Value* state = inspect->Find("State");
    const Value* running = state != nullptr ? state->Find("Running") : nullptr;
    if (running == nullptr || !running->is_bool() || !running->as_bool()) {
      return MakeError("container " + Quote(name) +
                       " stopped while driftless waited for it to "
                       "become healthy (" +
                       Str(*state, "Status") + ")");
    }
    if (probe) {
      Result<std::string> s = RunHealthcheck(t, name);
      if (!s.ok()) return s.error();
      status = *s;
      inspect = t.client().Json(
          "GET", std::string(kApi) + "/containers/" + UrlEncode(name) + "/json", {}, true);
      if (inspect.ok() && !inspect->is_null()) last = LastProbe(*inspect);
    } else {
      const Value* health = state->Find("Health");
      status = health != nullptr ? Str(*health, "Status") : "";
      last = LastProbe(*inspect);
      if (status.empty()) {
        return MakeError("container " + Quote(name) +
                         " has no healthcheck: declare spec.healthcheck to use wait_healthy");
      }
    }
    if (status == "healthy") return Status::Ok();
    if (Clock::now() + pause > deadline) break;
    std::this_thread::sleep_for(pause);
  }
  return MakeError("container " + Quote(name) + " did not become healthy within " +
                   FormatDuration(timeout_ns) + " (status " + status +
                   (last.empty() ? "" : "; last probe: " + last) + ")" +
                   (probe ? "; the engine does not run healthchecks (Podman without systemd), so "
                            "driftless ran the declared probe itself"
                          : ""));
}

}  // namespace driftless::providers::container
