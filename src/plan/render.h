#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "plan/plan.h"
#include "value/value.h"

namespace driftless::plan {

/// How to print for people.
struct RenderOptions {
  bool color = false;      ///< ANSI colours (only on a terminal)
  bool show_noop = false;  ///< list unchanged resources too
};

/// The plan for people: one block per change with its reason and line diff, then a summary.
std::string RenderPlan(const Plan& plan, const RenderOptions& options);

/// The same text handed to `write` in pieces of about 64 KiB, in order, so that a front end can
/// print a plan of many changes without holding all its text at once.
void RenderPlanTo(const Plan& plan, const RenderOptions& options,
                  const std::function<void(std::string_view)>& write);

/// One change as PlanToJson writes it.
value::Value ChangeToJson(const Change& c);
/// The plan as JSON (docs/plan-json.md); secrets appear only as "(sensitive)".
value::Value PlanToJson(const Plan& plan);

/// What history keeps of an applied plan (ApplyRecord::plan_json): PlanToJson's fields but the
/// changes, and per change that is not a no-op only its action, address, reason and the drift,
/// adopt and warning flags. The diffs are kept in the change records; the values they show
/// would only be repeated.
std::string PlanRecordText(const Plan& plan);

/// Reads a plan back from PlanToJson's form (plan files, a server's runs): everything it writes
/// but the problems (their text only).
Result<Plan> PlanFromJson(const value::Value& v);

/// A line diff with + and - lines coloured when `color` is set, indented by `indent` spaces.
std::string ColorDiff(const std::string& diff, bool color, int indent);

}  // namespace driftless::plan
