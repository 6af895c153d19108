#include "engine/drift.h"

#include <set>
#include <string>
#include <utility>

namespace driftless::engine {

std::vector<const plan::Change*> DriftReport::Drifted() const {
  std::vector<const plan::Change*> out;
  if (!plan) return out;
  for (const auto& c : plan->changes) {
    if (c.drift) out.push_back(&c);
  }
  return out;
}

DriftReport CheckDrift(Workspace& ws, const std::string& env, bool full) {
  DriftReport report;
  Diagnostics diags;
  Workspace::PlanRequest request;
  request.full = full;
  Result<plan::Plan> plan = ws.Plan(env, request, diags);
  if (!plan.ok()) {
    std::string message = diags.empty() ? plan.error().message : "";
    report.failure = {std::move(diags), std::move(message)};
    return report;
  }
  Result<state::StateStore*> store = ws.State();
  if (!store.ok()) {
    report.failure.message = store.error().message;
    return report;
  }
  Result<DriftCheckRecord> recorded =
      RecordDriftCheck(**store, env, *ws.environment(), *plan, nullptr);
  if (!recorded.ok()) {
    report.failure.message = recorded.error().message;
    return report;
  }
  report.recorded = std::move(*recorded);
  report.plan = std::move(*plan);
  return report;
}

Result<std::optional<plan::Change>> InspectResource(Workspace& ws, const std::string& env,
                                                    const std::string& address) {
  Diagnostics diags;
  const std::set<std::string, std::less<>> only = {address};
  Workspace::PlanRequest request;
  request.full = true;
  request.list_unchanged = true;
  request.only = &only;
  Result<plan::Plan> plan = ws.Plan(env, request, diags);
  if (!plan.ok()) return MakeError(diags.empty() ? plan.error().message : diags.ToString());
  for (plan::Change& c : plan->changes) {
    if (c.address == address) return std::optional<plan::Change>(std::move(c));
  }
  return std::optional<plan::Change>();
}

}  // namespace driftless::engine
