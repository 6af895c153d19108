#include "plan/render.h"

#include "base/strings.h"
#include "value/render.h"

namespace driftless::plan {

using value::Value;

namespace {

constexpr const char* kReset = "\033[0m";
constexpr const char* kRed = "\033[31m";
constexpr const char* kGreen = "\033[32m";
constexpr const char* kYellow = "\033[33m";
constexpr const char* kCyan = "\033[36m";
constexpr const char* kBold = "\033[1m";

const char* Symbol(Action a) {
  switch (a) {
    case Action::kCreate:
      return "+";
    case Action::kUpdate:
      return "~";
    case Action::kReplace:
      return "-/+";
    case Action::kDelete:
      return "-";
    case Action::kHeal:
      return "!";
    case Action::kRecord:
      return "=";
    case Action::kNoop:
      return " ";
  }
  return "?";
}

const char* Color(Action a) {
  switch (a) {
    case Action::kCreate:
      return kGreen;
    case Action::kUpdate:
      return kYellow;
    case Action::kReplace:
      return kRed;
    case Action::kDelete:
      return kRed;
    case Action::kHeal:
      return kCyan;
    default:
      return "";
  }
}

Value StringList(const std::vector<std::string>& items) {
  Value::List l;
  for (const auto& s : items) l.push_back(Value::String(s));
  return Value::MakeList(std::move(l));
}

}  // namespace

std::string ColorDiff(const std::string& diff, bool color, int indent) {
  std::string out;
  std::string pad(static_cast<size_t>(indent), ' ');
  for (const auto& line : Split(diff, '\n')) {
    if (line.empty()) continue;
    out += pad;
    const char* c = "";
    if (color) {
      if (line[0] == '+')
        c = kGreen;
      else if (line[0] == '-')
        c = kRed;
      else if (line[0] == '@')
        c = kCyan;
    }
    out += c;
    out += line;
    if (*c) out += kReset;
    out += '\n';
  }
  return out;
}

std::string RenderPlan(const Plan& plan, const RenderOptions& options) {
  std::string all;
  RenderPlanTo(plan, options, [&all](std::string_view piece) { all += piece; });
  return all;
}

void RenderPlanTo(const Plan& plan, const RenderOptions& options,
                  const std::function<void(std::string_view)>& write) {
  constexpr size_t kPiece = 64 * 1024;
  std::string out;
  bool wrote = false;  // whether anything was handed on before `out`
  if (!plan.steps.empty()) {
    out += "Stepwise upgrade: " + std::to_string(plan.steps.size()) + " step" +
           (plan.steps.size() == 1 ? "" : "s") +
           " first, each applied and recorded on its own, in this order:\n";
    for (size_t i = 0; i < plan.steps.size(); ++i) {
      const PlannedStep& s = plan.steps[i];
      out += "  " + std::to_string(i + 1) + ". commit " + s.subject + "\n";
      for (const auto& t : s.transitions) out += "       " + t + "\n";
    }
    out += "then the final step, at " +
           (plan.revision.empty() ? "the declarations" : "commit " + plan.revision.substr(0, 7)) +
           ":\n\n";
  }
  plan.ForEachChange([&](const Change& c) {  // a plain create's diff is made now
    if (c.action == Action::kNoop && !c.drift && !options.show_noop) return;
    const char* col = options.color ? Color(c.action) : "";
    out += "  ";
    if (options.color && *col) out += col;
    out += Symbol(c.action);
    out += " ";
    if (options.color) out += kBold;
    out += c.address;
    if (options.color) out += kReset;
    out += "  (" + std::string(ActionName(c.action));
    if (!c.operation.empty()) out += ", " + c.operation;
    if (!c.reason.empty()) out += ": " + c.reason;
    out += ")\n";
    if (!c.warning.empty()) {
      out += "      ";
      if (options.color) out += kYellow;
      out += "warning: " + c.warning;
      if (options.color) out += kReset;
      out += "\n";
    }
    if (c.drift && !c.drift_diff.empty() && c.action != Action::kHeal) {
      out += "      drift (applied -> live):\n";
      out += ColorDiff(c.drift_diff, options.color, 6);
    }
    if (!c.diff.empty() && c.action != Action::kNoop) out += ColorDiff(c.diff, options.color, 6);
    if (out.size() >= kPiece) {
      write(out);
      out.clear();
      wrote = true;
    }
  });
  if (wrote || !out.empty()) out += "\n";
  out += plan.destroy ? "Destroy plan: " : "Plan: ";
  out += plan.Summary();
  if (size_t d = plan.DriftCount()) out += "; " + std::to_string(d) + " drifted";
  out += ".\n";
  write(out);
}

Value ChangeToJson(const Change& c) {
  Value ch = Value::MakeObject();
  ch.Set("address", Value::String(c.address));
  ch.Set("kind", Value::String(c.kind));
  ch.Set("name", Value::String(c.name));
  ch.Set("target", Value::String(c.target));
  ch.Set("action", Value::String(std::string(ActionName(c.action))));
  ch.Set("reason", Value::String(c.reason));
  if (!c.operation.empty()) ch.Set("operation", Value::String(c.operation));
  ch.Set("drift", Value::Bool(c.drift));
  if (c.adopt) ch.Set("adopt", Value::Bool(true));
  if (!c.warning.empty()) ch.Set("warning", Value::String(c.warning));
  ch.Set("prior", value::Redact(c.prior));
  ch.Set("live", value::Redact(c.live));
  ch.Set("planned", value::Redact(c.planned));
  ch.Set("diff", Value::String(c.diff));
  if (!c.drift_diff.empty()) ch.Set("drift_diff", Value::String(c.drift_diff));
  ch.Set("depends_on", StringList(c.depends_on));
  ch.Set("spec_hash", Value::String(c.spec_hash));
  return ch;
}

namespace {

// Everything of PlanToJson but the changes.
Value PlanHeadToJson(const Plan& plan) {
  Value root = Value::MakeObject();
  root.Set("format_version", Value::Int(1));
  root.Set("environment", Value::String(plan.environment));
  root.Set("revision", Value::String(plan.revision));
  root.Set("source", Value::String(plan.source));
  root.Set("declarations_hash", Value::String(plan.decl_hash));
  root.Set("state_serial", Value::Int(plan.state_serial));
  root.Set("destroy", Value::Bool(plan.destroy));
  root.Set("plan_hash", Value::String(plan.Hash()));
  Value::List steps;
  for (const PlannedStep& st : plan.steps) {
    Value o = Value::MakeObject();
    o.Set("commit", Value::String(st.commit));
    o.Set("subject", Value::String(st.subject));
    Value::List addrs, trans;
    for (const auto& a : st.addresses) addrs.push_back(Value::String(a));
    for (const auto& t : st.transitions) trans.push_back(Value::String(t));
    o.Set("addresses", Value::MakeList(std::move(addrs)));
    o.Set("transitions", Value::MakeList(std::move(trans)));
    steps.push_back(std::move(o));
  }
  root.Set("steps", Value::MakeList(std::move(steps)));
  Value summary = Value::MakeObject();
  for (Action a : {Action::kCreate, Action::kUpdate, Action::kReplace, Action::kDelete,
                   Action::kHeal, Action::kRecord, Action::kNoop}) {
    summary.Set(std::string(ActionName(a)), Value::Int(static_cast<int64_t>(plan.Count(a))));
  }
  summary.Set("drifted", Value::Int(static_cast<int64_t>(plan.DriftCount())));
  root.Set("summary", summary);
  Value::List errors;
  for (const auto& d : plan.problems.items()) errors.push_back(Value::String(d.ToString()));
  root.Set("errors", Value::MakeList(std::move(errors)));
  return root;
}

}  // namespace

Value PlanToJson(const Plan& plan) {
  Value root = PlanHeadToJson(plan);
  Value::List changes;
  changes.reserve(plan.changes.size() + plan.creates.size());
  plan.ForEachChange([&changes](const Change& c) { changes.push_back(ChangeToJson(c)); });
  root.Set("changes", Value::MakeList(std::move(changes)));
  return root;
}

std::string PlanRecordText(const Plan& plan) {
  std::string head = value::ToJson(PlanHeadToJson(plan));
  // Sized once from the lengths (escapes aside): doubling it held the old copy beside the new at
  // a large apply's peak.
  size_t size = head.size() + 16;
  plan.ForEachChange(
      [&size](const Change& c) {
        if (c.action == Action::kNoop) return;
        size += 39 + ActionName(c.action).size() + c.address.size() + c.reason.size() +
                (c.adopt ? 13 : 0) + (c.drift ? 13 : 0) +
                (c.operation.empty() ? 0 : 15 + c.operation.size()) +
                (c.warning.empty() ? 0 : 13 + c.warning.size());
      },
      false);
  std::string out;
  out.reserve(size);
  out += "{\"changes\":[";
  bool first = true;
  plan.ForEachChange(
      [&](const Change& c) {
        if (c.action == Action::kNoop) return;
        if (!first) out += ',';
        first = false;
        out += "{\"action\":";
        AppendQuoted(out, ActionName(c.action));
        out += ",\"address\":";
        AppendQuoted(out, c.address);
        if (c.adopt) out += ",\"adopt\":true";
        if (c.drift) out += ",\"drift\":true";
        if (!c.operation.empty()) {
          out += ",\"operation\":";
          AppendQuoted(out, c.operation);
        }
        out += ",\"reason\":";
        AppendQuoted(out, c.reason);
        if (!c.warning.empty()) {
          out += ",\"warning\":";
          AppendQuoted(out, c.warning);
        }
        out += '}';
      },
      false);
  out += "],";
  out.append(head, 1);
  return out;
}

Result<Plan> PlanFromJson(const Value& v) {
  auto str = [&](const Value& o, std::string_view k) {
    const Value* f = o.Find(k);
    return f && f->is_string() ? f->as_string() : std::string();
  };
  auto flag = [&](const Value& o, std::string_view k) {
    const Value* f = o.Find(k);
    return f != nullptr && f->is_bool() && f->as_bool();
  };
  auto member = [&](const Value& o, std::string_view k) {
    const Value* f = o.Find(k);
    return f != nullptr ? *f : Value::Null();
  };
  auto strings = [&](const Value& o, std::string_view k) {
    std::vector<std::string> out;
    const Value* f = o.Find(k);
    if (f == nullptr || !f->is_list()) return out;
    for (const Value& item : f->as_list()) {
      if (item.is_string()) out.push_back(item.as_string());
    }
    return out;
  };
  const Value* fv = v.Find("format_version");
  if (fv == nullptr || !fv->is_int() || fv->as_int() != 1) {
    return MakeError("not a driftless plan file (format_version 1 expected)");
  }
  Plan plan;
  plan.environment = str(v, "environment");
  plan.revision = str(v, "revision");
  plan.source = str(v, "source");
  plan.decl_hash = str(v, "declarations_hash");
  if (const Value* s = v.Find("state_serial"); s && s->is_int()) plan.state_serial = s->as_int();
  if (const Value* d = v.Find("destroy"); d && d->is_bool()) plan.destroy = d->as_bool();
  if (const Value* changes = v.Find("changes"); changes && changes->is_list()) {
    for (const Value& ch : changes->as_list()) {
      Change c;
      c.address = str(ch, "address");
      c.kind = str(ch, "kind");
      c.name = str(ch, "name");
      c.target = str(ch, "target");
      std::string action = str(ch, "action");
      for (Action a : {Action::kNoop, Action::kCreate, Action::kUpdate, Action::kReplace,
                       Action::kDelete, Action::kHeal, Action::kRecord}) {
        if (ActionName(a) == action) c.action = a;
      }
      c.reason = str(ch, "reason");
      c.operation = str(ch, "operation");
      c.diff = str(ch, "diff");
      c.spec_hash = str(ch, "spec_hash");
      c.drift = flag(ch, "drift");
      c.adopt = flag(ch, "adopt");
      c.warning = str(ch, "warning");
      c.drift_diff = str(ch, "drift_diff");
      c.prior = member(ch, "prior");
      c.live = member(ch, "live");
      c.planned = member(ch, "planned");
      c.depends_on = strings(ch, "depends_on");
      plan.changes.push_back(std::move(c));
    }
  }
  if (const Value* steps = v.Find("steps"); steps && steps->is_list()) {
    for (const Value& st : steps->as_list()) {
      PlannedStep step;
      step.commit = str(st, "commit");
      step.subject = str(st, "subject");
      step.addresses = strings(st, "addresses");
      step.transitions = strings(st, "transitions");
      plan.steps.push_back(std::move(step));
    }
  }
  // The no-ops a plan counted but did not list (PlanOptions::list_unchanged off).
  if (const Value* summary = v.Find("summary"); summary && summary->is_object()) {
    const Value* noop = summary->Find(ActionName(Action::kNoop));
    const size_t listed = plan.Count(Action::kNoop);
    if (noop != nullptr && noop->is_int() && noop->as_int() > static_cast<int64_t>(listed)) {
      plan.unchanged = static_cast<size_t>(noop->as_int()) - listed;
    }
  }
  return plan;
}

}  // namespace driftless::plan
