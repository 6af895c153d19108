// container.container. The engine cannot change a container's configuration in place (Podman
// 4.3 has no update), so every declared field but `name` and `state` is set at creation: a
// change of one of them recreates the container (the schema marks them force_new, so the plan
// says replace), a rename is POST /containers/{id}/rename, and `state` is start or stop. Drift
// of a configuration field (a container made again by hand with other settings) is healed by
// recreating it.

#include <algorithm>
#include <chrono>
#include <set>

#include "base/strings.h"
#include "providers/container/container_target.h"
#include "providers/container/fields.h"
#include "providers/container/health.h"
#include "providers/container/inspect.h"

namespace driftless::providers::container {

using value::Value;

namespace {

std::string ContainerPath(const std::string& name_or_id, const std::string& rest = "") {
  return std::string(kApi) + "/containers/" + UrlEncode(name_or_id) + rest;
}

Result<Value> Inspect(const ContainerTarget& t, const std::string& name_or_id) {
  if (name_or_id.empty()) return Value();
  return t.client().Json("GET", ContainerPath(name_or_id, "/json"), {}, true);
}

int64_t SpecInt(const Value& spec, std::string_view key, int64_t fallback) {
  const Value* v = spec.Find(key);
  return v != nullptr && v->is_int() ? v->as_int() : fallback;
}

// The id the declared image names now, or "".
Result<std::string> DeclaredImageId(const ContainerTarget& t, const Value& spec) {
  const std::string image = SpecString(spec, "image");
  if (image.empty()) return std::string();
  Result<Value> got =
      t.client().Json("GET", std::string(kApi) + "/images/" + UrlEncode(image) + "/json", {}, true);
  if (!got.ok()) return got.error();
  return got->is_null() ? std::string() : Str(*got, "Id");
}

Result<Value> LiveOf(const ContainerTarget& t, const Object& o, const Value& inspect) {
  Result<std::string> image_id = DeclaredImageId(t, o.spec);
  if (!image_id.ok()) return image_id.error();
  Value image_config = Value::MakeObject();
  if (const std::string id = Str(inspect, "Image"); !id.empty()) {
    Result<Value> c = t.ImageConfig(id);
    if (c.ok()) image_config = std::move(*c);  // an image removed since: no defaults known
  }
  return LiveContainer(inspect, image_config, o.spec, *image_id, t.Markers(o.address));
}

Result<std::optional<Value>> Read(const ContainerTarget& t, const Object& o) {
  Result<Value> inspect = Inspect(t, o.name);
  if (!inspect.ok()) return inspect.error();
  if (inspect->is_null()) return std::optional<Value>();
  Result<Value> live = LiveOf(t, o, *inspect);
  if (!live.ok()) return live.error();
  return std::optional<Value>(std::move(*live));
}

// The fields compared with live (the schema's, declared, neither computed nor write-only).
std::vector<std::string> DifferingFields(const Value& live, const Value& spec) {
  static const std::set<std::string> kNotCompared = {"id", "ip", "wait_healthy"};
  std::vector<std::string> out;
  for (const auto& [k, v] : spec.as_object()) {
    if (kNotCompared.count(k)) continue;
    const Value* l = live.Find(k);
    if (l == nullptr || *l != v) out.push_back(k);
  }
  return out;
}

Value CreateBody(const ContainerTarget& t, const Object& o) {
  const Value& s = o.spec;
  Value body = Value::MakeObject();
  body.Set("Image", Value::String(SpecString(s, "image")));
  if (const Value* c = s.Find("command")) body.Set("Cmd", *c);
  if (const Value* env = s.Find("env"); env != nullptr && env->is_object()) {
    Value list = Value::MakeList();
    for (const auto& [k, v] : env->as_object())
      list.as_list().push_back(Value::String(k + "=" + v.ScalarText()));
    body.Set("Env", std::move(list));
  }
  body.Set("Labels", LabelsJson(s.Find("labels"), t.Markers(o.address)));
  if (const Value* u = s.Find("user")) body.Set("User", *u);
  if (const Value* w = s.Find("workdir")) body.Set("WorkingDir", *w);
  if (const Value* h = s.Find("healthcheck"); h != nullptr && h->is_object()) {
    Value hc = Value::MakeObject();
    if (const Value* test = h->Find("test")) hc.Set("Test", *test);
    hc.Set("Interval", Value::Int(ParseDuration(SpecString(*h, "interval", "30s")).value_or(0)));
    hc.Set("Retries", Value::Int(SpecInt(*h, "retries", 3)));
    body.Set("Healthcheck", std::move(hc));
  }
  // Podman's compat API defaults StopTimeout to 0 (kill at once) and leaves the signal to the
  // image: both are always sent, as Docker would default them.
  body.Set("StopSignal", Value::String("SIGTERM"));
  body.Set("StopTimeout", Value::Int(SpecInt(s, "stop_timeout", 10)));

  Value host = Value::MakeObject();
  if (const Value* ports = s.Find("ports"); ports != nullptr && ports->is_list()) {
    Value exposed = Value::MakeObject();
    Value bindings = Value::MakeObject();
    for (const Value& p : ports->as_list()) {
      PortParts parts = SplitPort(p.as_string());
      exposed.Set(parts.container_port, Value::MakeObject());
      Value b = Value::MakeObject(
          {{"HostIp", Value::String(parts.host_ip)}, {"HostPort", Value::String(parts.host_port)}});
      Value* list = bindings.Find(parts.container_port);
      if (list == nullptr) list = &bindings.Set(parts.container_port, Value::MakeList());
      list->as_list().push_back(std::move(b));
    }
    body.Set("ExposedPorts", std::move(exposed));
    host.Set("PortBindings", std::move(bindings));
  }
  if (const Value* mounts = s.Find("mounts"); mounts != nullptr && mounts->is_list()) {
    Value list = Value::MakeList();
    for (const Value& m : mounts->as_list()) {
      const bool volume = m.Find("volume") != nullptr;
      Value e = Value::MakeObject();
      e.Set("Type", Value::String(volume ? "volume" : "bind"));
      e.Set("Source", Value::String(SpecString(m, volume ? "volume" : "bind")));
      e.Set("Target", Value::String(SpecString(m, "target")));
      const Value* ro = m.Find("read_only");
      e.Set("ReadOnly", Value::Bool(ro != nullptr && ro->is_bool() && ro->as_bool()));
      list.as_list().push_back(std::move(e));
    }
    host.Set("Mounts", std::move(list));
  }
  const std::string restart = SpecString(s, "restart", "no");
  Value policy = Value::MakeObject();
  if (StartsWith(restart, "on-failure:")) {
    policy.Set("Name", Value::String("on-failure"));
    policy.Set("MaximumRetryCount", Value::Int(std::stoll(restart.substr(11))));
  } else {
    policy.Set("Name", Value::String(restart));
    policy.Set("MaximumRetryCount", Value::Int(0));
  }
  host.Set("RestartPolicy", std::move(policy));
  const Value* init = s.Find("init");
  host.Set("Init", Value::Bool(init != nullptr && init->is_bool() && init->as_bool()));
  if (const Value* n = s.Find("networks"); n != nullptr && n->is_list() && !n->as_list().empty()) {
    // One network at creation (what every API version takes); the others are connected after.
    const std::string first = n->as_list()[0].as_string();
    host.Set("NetworkMode", Value::String(first));
    body.Set("NetworkingConfig",
             Value::MakeObject(
                 {{"EndpointsConfig", Value::MakeObject({{first, Value::MakeObject()}})}}));
  }
  body.Set("HostConfig", std::move(host));
  return body;
}

Status Start(const ContainerTarget& t, const std::string& id) {
  Result<Value> r = t.client().Json("POST", ContainerPath(id, "/start"));
  if (!r.ok()) return r.error();
  return Status::Ok();
}

Status StopContainer(const ContainerTarget& t, const std::string& id, int64_t timeout_s) {
  Result<Value> r =
      t.client().Json("POST", ContainerPath(id, "/stop?t=" + std::to_string(timeout_s)), {}, false,
                      "application/json", (timeout_s + 60) * 1000);
  if (!r.ok()) return r.error();
  return Status::Ok();
}

// Stops (within its stop timeout) and removes a container, with its anonymous volumes.
Status RemoveContainer(const ContainerTarget& t, const Value& inspect) {
  const std::string id = Str(inspect, "Id");
  const Value* config = inspect.Find("Config");
  const Value* timeout = config != nullptr ? config->Find("StopTimeout") : nullptr;
  int64_t t_s = timeout != nullptr && timeout->is_int() ? timeout->as_int() : 10;
  const Value* state = inspect.Find("State");
  const Value* running = state != nullptr ? state->Find("Running") : nullptr;
  if (running != nullptr && running->is_bool() && running->as_bool()) {
    Status s = StopContainer(t, id, t_s);
    if (!s.ok()) return s;
  }
  Result<Value> r = t.client().Json("DELETE", ContainerPath(id, "?force=true&v=true"), {}, true);
  if (!r.ok()) return r.error();
  return Status::Ok();
}

Status WaitIfDeclared(const ContainerTarget& t, const Object& o) {
  const Value* w = o.spec.Find("wait_healthy");
  if (w == nullptr || (w->is_bool() && !w->as_bool())) return Status::Ok();
  if (SpecString(o.spec, "state", "running") != "running") return Status::Ok();
  int64_t timeout = 120LL * 1000000000;
  if (w->is_string()) timeout = ParseDuration(w->as_string()).value_or(timeout);
  int64_t interval = 1000000000;
  if (const Value* h = o.spec.Find("healthcheck"); h != nullptr && h->is_object()) {
    interval = ParseDuration(SpecString(*h, "interval", "1s")).value_or(interval);
  }
  return WaitHealthy(t, o.name, interval, timeout);
}

Result<Value> ReadBack(const ContainerTarget& t, const Object& o) {
  Result<std::optional<Value>> after = Read(t, o);
  if (!after.ok()) return after.error();
  if (!*after)
    return MakeError("container " + Quote(o.name) + " is missing right after it was made");
  return std::move(**after);
}

// Creates the container, connects its other networks, starts it when declared running and
// waits for it to be healthy when declared.
Result<Value> Make(ContainerTarget& t, const Object& o) {
  Result<Value> made =
      t.client().Json("POST", std::string(kApi) + "/containers/create?name=" + UrlEncode(o.name),
                      value::ToJson(CreateBody(t, o)));
  if (!made.ok()) {
    const std::string image = SpecString(o.spec, "image");
    Result<std::string> id = DeclaredImageId(t, o.spec);
    if (id.ok() && id->empty()) {
      return MakeError("container " + Quote(o.name) + ": image " + Quote(image) +
                       " is not on the engine; declare a container.image that loads it and "
                       "refer to it (image: \"${container.image.NAME.ref}\")");
    }
    return made.error();
  }
  const std::string id = Str(*made, "Id");
  if (const Value* n = o.spec.Find("networks"); n != nullptr && n->is_list()) {
    for (size_t i = 1; i < n->as_list().size(); ++i) {
      Value body = Value::MakeObject({{"Container", Value::String(id)}});
      Result<Value> c = t.client().Json(
          "POST",
          std::string(kApi) + "/networks/" + UrlEncode(n->as_list()[i].as_string()) + "/connect",
          value::ToJson(body));
      if (!c.ok()) return c.error();
    }
  }
  if (SpecString(o.spec, "state", "running") == "running") {
    Status s = Start(t, id);
    if (!s.ok()) return MakeError("starting container " + Quote(o.name) + ": " + s.error().message);
    s = WaitIfDeclared(t, o);
    if (!s.ok()) return s.error();
  }
  return ReadBack(t, o);
}

Result<Value> Converge(ContainerTarget& t, const Object& o, const Value& inspect) {
  Result<Value> live = LiveOf(t, o, inspect);
  if (!live.ok()) return live.error();
  std::vector<std::string> differ = DifferingFields(*live, o.spec);
  // Renamed by hand (found by its recorded id) while the declaration leaves the name to the
  // resource's: renamed back.
  if (std::find(differ.begin(), differ.end(), "name") == differ.end() &&
      SpecString(*live, "name") != o.name) {
    differ.push_back("name");
  }
  bool recreate = false;
  for (const auto& k : differ) recreate = recreate || (k != "name" && k != "state");
  if (recreate) {
    Status s = RemoveContainer(t, inspect);
    if (!s.ok()) return s.error();
    return Make(t, o);
  }
  const std::string id = Str(inspect, "Id");
  for (const auto& k : differ) {
    if (k == "name") {
      Result<Value> r =
          t.client().Json("POST", ContainerPath(id, "/rename?name=" + UrlEncode(o.name)));
      if (!r.ok()) return r.error();
    }
  }
  const std::string want = SpecString(o.spec, "state", "running");
  const std::string now = SpecString(*live, "state");
  if (now == "paused") {
    Result<Value> r = t.client().Json("POST", ContainerPath(id, "/unpause"));
    if (!r.ok()) return r.error();
  }
  if (want == "running" && now != "running") {
    Status s = Start(t, id);
    if (!s.ok()) return s.error();
  } else if (want == "stopped" && now != "stopped") {
    Status s = StopContainer(t, id, SpecInt(o.spec, "stop_timeout", 10));
    if (!s.ok()) return s.error();
  }
  Status s = WaitIfDeclared(t, o);
  if (!s.ok()) return s.error();
  return ReadBack(t, o);
}

Result<Value> Create(ContainerTarget& t, const Object& o, bool adopt) {
  Result<Value> existing = Inspect(t, o.name);
  if (!existing.ok()) return existing.error();
  if (!existing->is_null()) {
    if (!adopt) {
      return MakeError("container " + Quote(o.name) +
                       " already exists; set policy.adopt: true to take it over");
    }
    return Converge(t, o, *existing);
  }
  return Make(t, o);
}

Result<Value> Update(ContainerTarget& t, const Object& o, const Value& prior) {
  Result<Value> existing = Inspect(t, o.name);
  if (!existing.ok()) return existing.error();
  if (existing->is_null()) {
    // Renamed in the declaration: the container still has its old name (or its recorded id).
    for (const std::string& old :
         {SpecString(prior, "id"),
          SpecString(prior, "name", o.address.substr(o.address.find('/') + 1))}) {
      existing = Inspect(t, old);
      if (!existing.ok()) return existing.error();
      if (!existing->is_null()) break;
    }
  }
  if (existing->is_null()) return Make(t, o);  // removed outside driftless
  return Converge(t, o, *existing);
}

Status Delete(ContainerTarget& t, const Object& o) {
  const std::string recorded = SpecString(o.spec, "id");
  for (const std::string& key : {o.name, recorded}) {
    Result<Value> existing = Inspect(t, key);
    if (!existing.ok()) return existing.error();
    if (existing->is_null()) continue;
    const Value* config = existing->Find("Config");
    const bool ours = t.Marked(config != nullptr ? config->Find("Labels") : nullptr, o.address) ||
                      (!recorded.empty() && Str(*existing, "Id") == recorded);
    // A container of that name made by someone else since is not driftless's to remove.
    if (!ours) continue;
    return RemoveContainer(t, *existing);
  }
  return Status::Ok();
}

}  // namespace

KindOps ContainerOps() { return {Read, Create, Update, Delete}; }

}  // namespace driftless::providers::container
