#include "notify/event.h"

#include "base/hash.h"
#include "base/identity.h"

namespace driftless::notify {

using value::Value;

Value Event::ToValue() const {
  Value o = extra.is_object() ? extra : Value::MakeObject();
  o.Set("id", Value::String(id));
  o.Set("type", Value::String(type));
  o.Set("time", Value::String(FormatTime(time)));
  o.Set("environment", Value::String(environment));
  for (const auto& [key, text] : {std::pair<const char*, const std::string*>{"resource", &resource},
                                  {"commit", &commit},
                                  {"actor", &actor},
                                  {"diff", &diff}}) {
    if (!text->empty()) {
      o.Set(key, Value::String(*text));
    } else {
      o.Erase(key);
    }
  }
  return o;
}

std::string Event::ToJson() const { return value::ToJson(ToValue()); }

std::string Event::Subject() const {
  if (type.rfind("drift.", 0) != 0 || resource.empty()) return "";
  return "drift:" + environment + ":" + resource;
}

Event MakeEvent(const std::string& type, const std::string& environment,
                const std::string& resource,
                const std::vector<std::pair<std::string, value::Value>>& fields) {
  Event e;
  e.id = RandomHex(16);
  e.type = type;
  e.time = NowUnix();
  e.environment = environment;
  e.resource = resource;
  for (const auto& [key, v] : fields) {
    std::string* member = key == "commit"  ? &e.commit
                          : key == "actor" ? &e.actor
                          : key == "diff"  ? &e.diff
                                           : nullptr;
    if (member != nullptr && v.is_string()) {
      *member = v.as_string();
    } else {
      e.extra.Set(key, v);
    }
  }
  return e;
}

const std::vector<std::string>& EventTypes() {
  static const std::vector<std::string> kTypes = {
      "apply.failed",
      "apply.started",
      "apply.succeeded",
      "approval.granted",
      "approval.rejected",
      "approval.requested",
      "drift.detected",
      "drift.flapping",
      "drift.reminder",
      "drift.resolved",
      "env.created",
      "env.destroyed",
      "env.kept",
      "lock.acquired",
      "lock.released",
      "plan.created",
      "run.applied",
      "run.applying",
      "run.awaiting_approval",
      "run.canceled",
      "run.discarded",
      "run.errored",
      "run.interrupted",
      "run.no_changes",
      "run.planned",
      "run.planning",
      "run.queued",
      "run.superseded",
      "watch.error",
      "watch.started",
  };
  return kTypes;
}

}  // namespace driftless::notify
