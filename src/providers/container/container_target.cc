#include "providers/container/container_target.h"

#include <algorithm>

#include "base/strings.h"

namespace driftless::providers::container {

using value::Value;

std::string SpecString(const Value& spec, std::string_view key, const std::string& fallback) {
  const Value* v = spec.Find(key);
  return v != nullptr && v->is_string() ? v->as_string() : fallback;
}

std::string Str(const Value& v, std::string_view key) {
  const Value* m = v.Find(key);
  return m != nullptr && m->is_string() ? m->as_string() : "";
}

Value LabelsJson(const Value* labels, const Value& extra) {
  Value out = Value::MakeObject();
  if (labels != nullptr && labels->is_object()) {
    for (const auto& [k, v] : labels->as_object()) out.Set(k, Value::String(v.ScalarText()));
  }
  if (extra.is_object()) {
    for (const auto& [k, v] : extra.as_object()) out.Set(k, v);
  }
  return out;
}

namespace {

KindOps OpsOf(const std::string& kind) {
  if (kind == kImageKind) return ImageOps();
  if (kind == kNetworkKind) return NetworkOps();
  if (kind == kVolumeKind) return VolumeOps();
  if (kind == kContainerKind) return ContainerOps();
  if (kind == kKubeKind) return KubeOps();
  return {nullptr, nullptr, nullptr, nullptr};
}

std::string ObjectName(const provider::ResourceRequest& req) {
  return SpecString(req.spec, "name", req.name);
}

Error NoKind(const std::string& kind) {
  return MakeError("the container provider has no kind " + kind);
}

}  // namespace

ContainerTarget::ContainerTarget(std::string target_name, Endpoint endpoint, ParseYamlFn parse_yaml)
    : target_name_(std::move(target_name)),
      client_(std::make_unique<EngineClient>(std::move(endpoint))),
      parse_yaml_(std::move(parse_yaml)) {}

void ContainerTarget::SetContext(const provider::TargetContext& context) { context_ = context; }

std::string ContainerTarget::Describe() const {
  return "container engine " + client_->endpoint().text + " (target " + target_name_ + ")";
}

Value ContainerTarget::Markers(const std::string& address) const {
  Value m = Value::MakeObject();
  m.Set(kLabelProject, Value::String(context_.project));
  m.Set(kLabelEnvironment, Value::String(context_.environment));
  m.Set(kLabelResource, Value::String(address));
  return m;
}

bool ContainerTarget::Marked(const Value* labels, const std::string& address) const {
  if (labels == nullptr || !labels->is_object()) return false;
  return Str(*labels, kLabelProject) == context_.project &&
         Str(*labels, kLabelEnvironment) == context_.environment &&
         Str(*labels, kLabelResource) == address;
}

std::string ContainerTarget::MarkerFilter(const std::string& address) const {
  // One label: list filters of several labels are ANDed by Docker but ORed by some of Podman's
  // lists (volumes); callers check the other markers with Marked.
  Value labels = Value::MakeList({Value::String(std::string(kLabelResource) + "=" + address)});
  return value::ToJson(Value::MakeObject({{"label", std::move(labels)}}));
}

EngineTraits ContainerTarget::Traits() const {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (traits_) return *traits_;
  }
  EngineTraits t;
  Result<Value> info = client_->Json("GET", std::string(kLibpod) + "/info", {}, true);
  if (info.ok() && info->is_object()) {
    t.podman = true;
    const Value* host = info->Find("host");
    // Podman runs healthchecks from systemd timers only.
    t.runs_healthchecks = host != nullptr && Str(*host, "cgroupManager") == "systemd";
  } else if (!info.ok()) {
    return t;  // not cached: the engine may be down for now
  }
  std::lock_guard<std::mutex> lock(mu_);
  traits_ = t;
  return t;
}

void ContainerTarget::RememberSource(const std::string& id, std::string bytes) const {
  std::lock_guard<std::mutex> lock(mu_);
  sources_.emplace(id, std::move(bytes));
}

std::optional<std::string> ContainerTarget::SourceBytes(const std::string& id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = sources_.find(id);
  if (it == sources_.end()) return std::nullopt;
  return it->second;
}

Result<Value> ContainerTarget::ImageConfig(const std::string& id) const {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = image_configs_.find(id);
    if (it != image_configs_.end()) return it->second;
  }
  Result<Value> image =
      client_->Json("GET", std::string(kApi) + "/images/" + UrlEncode(id) + "/json");
  if (!image.ok()) return image.error();
  Value config = Value::MakeObject();
  if (const Value* c = image->Find("Config"); c != nullptr && c->is_object()) config = *c;
  std::lock_guard<std::mutex> lock(mu_);
  image_configs_.emplace(id, config);
  return config;
}

Result<std::optional<Value>> ContainerTarget::Read(const provider::ResourceRequest& req) const {
  KindOps ops = OpsOf(req.kind);
  if (ops.read == nullptr) return NoKind(req.kind);
  Object o{req.kind + "/" + req.name, ObjectName(req), req.spec};
  return ops.read(*this, o);
}

Result<Value> ContainerTarget::Create(const provider::ResourceRequest& req, bool adopt) {
  KindOps ops = OpsOf(req.kind);
  if (ops.create == nullptr) return NoKind(req.kind);
  Object o{req.kind + "/" + req.name, ObjectName(req), req.spec};
  return ops.create(*this, o, adopt);
}

Result<Value> ContainerTarget::Update(const provider::ResourceRequest& req, const Value& prior) {
  KindOps ops = OpsOf(req.kind);
  if (ops.update == nullptr) return NoKind(req.kind);
  Object o{req.kind + "/" + req.name, ObjectName(req), req.spec};
  return ops.update(*this, o, prior);
}

Status ContainerTarget::Delete(const provider::ResourceRequest& prior) {
  KindOps ops = OpsOf(prior.kind);
  if (ops.remove == nullptr) return NoKind(prior.kind);
  Object o{prior.kind + "/" + prior.name, ObjectName(prior), prior.spec};
  return ops.remove(*this, o);
}

std::string ContainerTarget::UpdateOperation(const std::string& kind, const Value& live,
                                             const Value& planned) const {
  if (kind == kImageKind) return "load";
  if (kind == kKubeKind) return "play";
  if (kind != kContainerKind || !live.is_object() || !planned.is_object()) return "";
  std::vector<std::string> differ;
  for (const auto& [k, v] : planned.as_object()) {
    const Value* l = live.Find(k);
    if (l == nullptr || *l != v) differ.push_back(k);
  }
  if (differ.empty()) return "";
  std::vector<std::string> ops;
  for (const auto& k : differ) {
    if (k == "name") {
      ops.push_back("rename");
    } else if (k == "state") {
      ops.push_back(SpecString(planned, "state") == "running" ? "start" : "stop");
    } else {
      return "recreate";
    }
  }
  return Join(ops, ", ");
}

}  // namespace driftless::providers::container
