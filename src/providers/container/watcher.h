#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/result.h"
#include "provider/provider.h"

// The container watcher: the engine's event stream (GET /events, resumed with `since` after a
// lost connection), read without a thread of its own. Podman's action names are not Docker's:
// it sends `die` (its filter name is `died`), `remove` where Docker says `destroy`, no `stop`
// event at all, `delete` for images and `health_status` after every probe. Events are mapped to
// the watched objects (by the marker label, the name or the recorded id), de-duplicated, and
// each is a hint: the engine inspects the object afresh. Networks send no events on Podman 4.3:
// they are polled once a second. Where the engine does not run healthchecks, the watcher runs
// the declared probes on their interval.

namespace driftless::providers::container {

class ContainerTarget;

/// One line of the event stream.
struct EngineEvent {
  std::string type;    ///< "container", "image", "volume", "network"
  std::string action;  ///< "start", "die", "remove", ... as sent
  std::string id;      ///< Actor.ID
  std::string name;    ///< Actor.Attributes.name (a container's or volume's name, an image ref)
  std::map<std::string, std::string> attributes;  ///< Actor.Attributes (a container's labels)
  int64_t time_nano = 0;
  std::string health;  ///< HealthStatus of health_status events
};

/// Parses one line of the stream; false when it is not an event.
bool ParseEvent(const std::string& line, EngineEvent* out);

/// Whether an action can change what driftless compares (create, start, die, remove, rename,
/// pause, tag, ...), as opposed to exec, attach, init, cleanup and the like.
bool RelevantAction(const std::string& type, const std::string& action);

/// What the watcher knows of one watched object.
struct WatchedObject {
  std::string address;
  std::string kind;
  std::string name;                  ///< container/network/volume name, image ref
  std::string id;                    ///< recorded id
  std::string image;                 ///< a container's declared image
  std::vector<std::string> volumes;  ///< a kube resource's claims
  int64_t probe_interval_ns = 0;     ///< a container's declared healthcheck interval, or 0
};

/// The watched objects from the engine's watch items.
std::vector<WatchedObject> WatchedObjects(const std::vector<provider::WatchItem>& items);

/// The addresses that event `e` may concern. `project` and `environment` are the target's:
/// a marker label names the address directly when it is of this project and environment.
std::vector<std::string> AddressesFor(const std::vector<WatchedObject>& objects,
                                      const EngineEvent& e, const std::string& project,
                                      const std::string& environment);

/// Starts watching `objects` on `t`'s engine.
Result<std::unique_ptr<provider::Watcher>> WatchEngine(const ContainerTarget& t,
                                                       std::vector<WatchedObject> objects);

}  // namespace driftless::providers::container
