// container.network and container.volume: objects the engine cannot change after creation. A
// change of a declared field replaces them (the schema marks every field force_new), which the
// engine refuses while a container uses them: the error names those containers.

#include "base/strings.h"
#include "providers/container/container_target.h"
#include "providers/container/inspect.h"

namespace driftless::providers::container {

using value::Value;

namespace {

struct Flavor {
  const char* what;    // "network"
  const char* path;    // "/networks"
  const char* create;  // "/networks/create"
  Value (*live)(const Value& inspect, const Value& declared, const Value& markers);
  Value (*body)(const ContainerTarget& t, const Object& o);
};

std::string ItemPath(const Flavor& f, const std::string& name) {
  return std::string(kApi) + f.path + "/" + UrlEncode(name);
}

Result<Value> Inspect(const ContainerTarget& t, const Flavor& f, const std::string& name) {
  return t.client().Json("GET", ItemPath(f, name), {}, true);
}

Value NetworkBody(const ContainerTarget& t, const Object& o) {
  Value body = Value::MakeObject();
  body.Set("Name", Value::String(o.name));
  body.Set("Driver", Value::String(SpecString(o.spec, "driver", "bridge")));
  body.Set("CheckDuplicate", Value::Bool(true));
  body.Set("Labels", LabelsJson(o.spec.Find("labels"), t.Markers(o.address)));
  const std::string subnet = SpecString(o.spec, "subnet");
  if (!subnet.empty()) {
    Value config = Value::MakeObject({{"Subnet", Value::String(subnet)}});
    body.Set("IPAM", Value::MakeObject({{"Config", Value::MakeList({std::move(config)})}}));
  }
  return body;
}

Value VolumeBody(const ContainerTarget& t, const Object& o) {
  Value body = Value::MakeObject();
  body.Set("Name", Value::String(o.name));
  body.Set("Driver", Value::String(SpecString(o.spec, "driver", "local")));
  body.Set("Labels", LabelsJson(o.spec.Find("labels"), t.Markers(o.address)));
  return body;
}

const Flavor kNetwork{"network", "/networks", "/networks/create", LiveNetwork, NetworkBody};
const Flavor kVolume{"volume", "/volumes", "/volumes/create", LiveVolume, VolumeBody};

// The declared fields that differ between `live` and the spec.
bool Matches(const Value& live, const Value& spec) {
  for (const auto& [k, v] : spec.as_object()) {
    if (k == "id") continue;
    const Value* l = live.Find(k);
    if (l == nullptr || *l != v) return false;
  }
  return true;
}

Result<std::optional<Value>> Read(const ContainerTarget& t, const Flavor& f, const Object& o) {
  Result<Value> got = Inspect(t, f, o.name);
  if (!got.ok()) return got.error();
  if (got->is_null()) return std::optional<Value>();
  return std::optional<Value>(f.live(*got, o.spec, t.Markers(o.address)));
}

Result<Value> Make(ContainerTarget& t, const Flavor& f, const Object& o) {
  Result<Value> made =
      t.client().Json("POST", std::string(kApi) + f.create, value::ToJson(f.body(t, o)));
  if (!made.ok()) return made.error();
  Result<std::optional<Value>> after = Read(t, f, o);
  if (!after.ok()) return after.error();
  if (!*after)
    return MakeError(std::string(f.what) + " " + Quote(o.name) +
                     " is missing right after its creation");
  return std::move(**after);
}

// Removes `name` whatever it is; the engine's refusal (in use) names the users.
Status Remove(ContainerTarget& t, const Flavor& f, const std::string& name, const Value& inspect) {
  Result<Value> r = t.client().Json("DELETE", ItemPath(f, name), {}, true);
  if (r.ok()) return Status::Ok();
  std::string users;
  if (const Value* c = inspect.Find("Containers"); c != nullptr && c->is_object()) {
    std::vector<std::string> names;
    for (const auto& [id, info] : c->as_object()) {
      std::string n = Str(info, "Name");
      names.push_back(n.empty() ? id.substr(0, 12) : n);
    }
    if (!names.empty()) users = " (used by " + Join(names, ", ") + ")";
  }
  return MakeError("removing " + std::string(f.what) + " " + Quote(name) + users + ": " +
                   r.error().message);
}

Result<Value> Create(ContainerTarget& t, const Flavor& f, const Object& o, bool adopt) {
  Result<Value> existing = Inspect(t, f, o.name);
  if (!existing.ok()) return existing.error();
  if (!existing->is_null()) {
    if (!adopt) {
      return MakeError(std::string(f.what) + " " + Quote(o.name) +
                       " already exists; set policy.adopt: true to take it over");
    }
    Value live = f.live(*existing, o.spec, t.Markers(o.address));
    if (Matches(live, o.spec)) return live;  // taken over as it is (it keeps its labels)
    Status s = Remove(t, f, o.name, *existing);
    if (!s.ok()) return s.error();
  }
  return Make(t, f, o);
}

Result<Value> Update(ContainerTarget& t, const Flavor& f, const Object& o, const Value& prior) {
  (void)prior;
  Result<Value> existing = Inspect(t, f, o.name);
  if (!existing.ok()) return existing.error();
  if (!existing->is_null()) {
    Value live = f.live(*existing, o.spec, t.Markers(o.address));
    if (Matches(live, o.spec)) return live;
    // Nothing of a network or volume changes in place.
    Status s = Remove(t, f, o.name, *existing);
    if (!s.ok()) return s.error();
  }
  return Make(t, f, o);
}

Status Delete(ContainerTarget& t, const Flavor& f, const Object& o) {
  Result<Value> existing = Inspect(t, f, o.name);
  if (!existing.ok()) return existing.error();
  if (existing->is_null()) return Status::Ok();
  // Only what driftless made (its markers, or the id it recorded): an object of the same name
  // made by someone else since is left alone.
  const std::string id = Str(o.spec, "id");
  const Value* labels = existing->Find("Labels");
  const bool same_id = !id.empty() && Str(*existing, "Id") == id;  // volumes have no Id
  if (!t.Marked(labels, o.address) && !same_id) return Status::Ok();
  return Remove(t, f, o.name, *existing);
}

}  // namespace

KindOps NetworkOps() {
  return {
      [](const ContainerTarget& t, const Object& o) { return Read(t, kNetwork, o); },
      [](ContainerTarget& t, const Object& o, bool adopt) { return Create(t, kNetwork, o, adopt); },
      [](ContainerTarget& t, const Object& o, const Value& prior) {
        return Update(t, kNetwork, o, prior);
      },
      [](ContainerTarget& t, const Object& o) { return Delete(t, kNetwork, o); }};
}

KindOps VolumeOps() {
  return {
      [](const ContainerTarget& t, const Object& o) { return Read(t, kVolume, o); },
      [](ContainerTarget& t, const Object& o, bool adopt) { return Create(t, kVolume, o, adopt); },
      [](ContainerTarget& t, const Object& o, const Value& prior) {
        return Update(t, kVolume, o, prior);
      },
      [](ContainerTarget& t, const Object& o) { return Delete(t, kVolume, o); }};
}

}  // namespace driftless::providers::container
