#include "engine/plan.h"

#include <utility>
#include <vector>

#include "engine/steps.h"

namespace driftless::engine {

PlanReport PlanEnvironment(Workspace& ws, const PlanRequest& request) {
  PlanReport report;
  Diagnostics diags;
  Result<std::vector<Step>> steps = PlanSteps(ws, diags);
  if (!steps.ok()) {
    report.failure = {std::move(diags), steps.error().message};
    return report;
  }
  Result<plan::Plan> plan = ws.Plan(request.env, false, diags, request.list_unchanged);
  if (!plan.ok()) {
    // Declaration errors say it all; a message only when there are none.
    std::string message = diags.empty() ? plan.error().message : "";
    report.failure = {std::move(diags), std::move(message)};
    return report;
  }
  plan->steps = DescribeSteps(*steps);
  report.plan = std::move(*plan);
  return report;
}

}  // namespace driftless::engine
