#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "base/result.h"
#include "value/value.h"

namespace driftless::notify {

/// Something that happened to an environment, as printed by `watch` and sent to sinks. Diffs are
/// redacted by the engine before they reach an event; nothing here adds a secret.
struct Event {
  std::string id;           ///< random, unique: the delivery id receivers deduplicate on
  std::string type;         ///< "apply.succeeded", "drift.detected", ...
  int64_t time = 0;         ///< unix seconds (RFC 3339 in JSON)
  std::string environment;  ///< the environment's name
  std::string resource;     ///< "kind/name", or ""
  std::string commit;       ///< revision, or ""
  std::string actor;        ///< who did it ("user@host"), or ""
  std::string diff;         ///< redacted line diff, or ""
  value::Value extra = value::Value::MakeObject();  ///< more members ("summary", "apply", ...)

  /// The event as a JSON object: id, type, time, environment, the optional members when not
  /// empty, and `extra`'s members (which never replace the standard ones).
  value::Value ToValue() const;
  /// Canonical JSON of ToValue().
  std::string ToJson() const;
  /// What the event is about for reminders: "drift:ENV:RESOURCE" for drift events, else "".
  std::string Subject() const;
};

/// A new event with a fresh id and the current time; `fields` named commit, actor or diff fill
/// those members, the others go to `extra`.
Event MakeEvent(const std::string& type, const std::string& environment,
                const std::string& resource,
                const std::vector<std::pair<std::string, value::Value>>& fields = {});

/// Every event type driftless emits, sorted (what `on:` accepts besides "*").
const std::vector<std::string>& EventTypes();

}  // namespace driftless::notify
