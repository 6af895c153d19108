#include "engine/drift.h"

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

}  // namespace driftless::engine
