#include <algorithm>
#include <map>
#include <set>

#include "base/strings.h"
#include "providers/container/container_target.h"
#include "providers/container/fields.h"
#include "providers/container/kube.h"

namespace driftless::providers::container {

using provider::FieldError;
using value::Value;

namespace {

const Value* Path(const Value& v, std::initializer_list<const char*> keys) {
  const Value* at = &v;
  for (const char* k : keys) {
    at = at->is_object() ? at->Find(k) : nullptr;
    if (at == nullptr) return nullptr;
  }
  return at;
}

std::string NoSha(std::string id) {
  if (StartsWith(id, "sha256:")) id.erase(0, 7);
  return id;
}

// The containers of a pod template (spec.containers) as {name: {image, state}}.
Value TemplateContainers(const Value* containers, const std::string& where,
                         std::vector<FieldError>& errors) {
  Value out = Value::MakeObject();
  if (containers == nullptr || !containers->is_list() || containers->as_list().empty()) {
    errors.push_back({where, "a pod needs spec.containers"});
    return out;
  }
  for (size_t i = 0; i < containers->as_list().size(); ++i) {
    const Value& c = containers->as_list()[i];
    const std::string name = Str(c, "name");
    const std::string image = CanonicalImageRef(Str(c, "image"));
    if (!ValidObjectName(name) || image.empty()) {
      errors.push_back({where, "container " + std::to_string(i) + " needs a name and an image"});
      continue;
    }
    out.Set(name, Value::MakeObject(
                      {{"image", Value::String(image)}, {"state", Value::String("running")}}));
  }
  return out;
}

// Adds `markers` to the labels of metadata `meta` (made when missing).
void Label(Value& object, std::initializer_list<const char*> meta_path, const Value& markers) {
  Value* at = &object;
  for (const char* k : meta_path) {
    Value* next = at->Find(k);
    if (next == nullptr || !next->is_object()) next = &at->Set(k, Value::MakeObject());
    at = next;
  }
  Value* labels = at->Find("labels");
  if (labels == nullptr || !labels->is_object()) labels = &at->Set("labels", Value::MakeObject());
  for (const auto& [k, v] : markers.as_object()) labels->Set(k, v);
}

// Drops source marks (line/column) so that the stored documents are plain data.
Value Plain(const Value& v) {
  if (v.is_list()) {
    Value::List l;
    for (const auto& c : v.as_list()) l.push_back(Plain(c));
    return Value::MakeList(std::move(l));
  }
  if (v.is_object()) {
    Value o = Value::MakeObject();
    for (const auto& [k, c] : v.as_object()) o.Set(k, Plain(c));
    return o;
  }
  Value out = v;
  out.set_mark(0, 0);
  return out;
}

}  // namespace

void NormalizeKube(const ParseYamlFn& parse_yaml, Value& spec,
                   const provider::ReadRepoFile& read_file, std::vector<FieldError>& errors) {
  for (const char* derived : {"pods", "volumes"}) {
    if (spec.Find(derived) != nullptr) {
      errors.push_back({derived, std::string("is derived from the manifests; do not declare it")});
    }
  }
  const Value* source = spec.Find("source");
  const Value* inline_docs = spec.Find("manifests");
  if ((source == nullptr) == (inline_docs == nullptr)) {
    errors.push_back({"manifests",
                      "declare either `manifests` (Kubernetes objects) or `source` "
                      "(a YAML file of the repository)"});
    return;
  }
  Value docs = Value::MakeList();
  std::string where = "manifests";
  if (source != nullptr) {
    where = "source";
    Result<std::string> text = read_file(source->as_string());
    if (!text.ok()) {
      errors.push_back({"source", text.error().message});
      return;
    }
    if (!parse_yaml) {
      errors.push_back({"source", "YAML files cannot be read here"});
      return;
    }
    Result<std::vector<Value>> parsed = parse_yaml(*text, source->as_string());
    if (!parsed.ok()) {
      errors.push_back({"source", parsed.error().message});
      return;
    }
    for (auto& d : *parsed) docs.as_list().push_back(std::move(d));
  } else {
    docs = *inline_docs;
  }
  Value pods = Value::MakeObject();
  std::set<std::string> volumes;
  std::set<std::string> names;
  for (size_t i = 0; i < docs.as_list().size(); ++i) {
    const Value& d = docs.as_list()[i];
    const std::string at = source != nullptr ? where + " (document " + std::to_string(i + 1) + ")"
                                             : where + "." + std::to_string(i);
    const std::string field = source != nullptr ? where : where + "." + std::to_string(i);
    if (!d.is_object()) {
      errors.push_back({field, at + " is not a Kubernetes object"});
      continue;
    }
    const std::string kind = Str(d, "kind");
    const Value* name_v = Path(d, {"metadata", "name"});
    const std::string name = name_v != nullptr && name_v->is_string() ? name_v->as_string() : "";
    if (!ValidObjectName(name)) {
      errors.push_back({field, at + ": metadata.name is missing or not a valid name"});
      continue;
    }
    if (!names.insert(kind + "/" + name).second) {
      errors.push_back({field, at + ": " + kind + " " + name + " is declared twice"});
      continue;
    }
    if (kind == "Pod") {
      pods.Set(name, TemplateContainers(Path(d, {"spec", "containers"}), field, errors));
    } else if (kind == "Deployment") {
      const Value* replicas = Path(d, {"spec", "replicas"});
      int64_t n = 1;
      if (replicas != nullptr) {
        if (!replicas->is_int() || replicas->as_int() < 0 || replicas->as_int() > 1000) {
          errors.push_back({field, at + ": spec.replicas must be a whole number from 0 to 1000"});
          continue;
        }
        n = replicas->as_int();
      }
      Value containers =
          TemplateContainers(Path(d, {"spec", "template", "spec", "containers"}), field, errors);
      // Podman names a deployment's pods NAME-pod-0, NAME-pod-1, ...
      for (int64_t r = 0; r < n; ++r) pods.Set(name + "-pod-" + std::to_string(r), containers);
    } else if (kind == "PersistentVolumeClaim") {
      volumes.insert(name);
    } else if (kind != "ConfigMap") {
      errors.push_back({field, at + ": kind " + Quote(kind) +
                                   " is not supported (Pod, Deployment, ConfigMap, "
                                   "PersistentVolumeClaim)"});
    }
  }
  spec.Set("manifests", Plain(docs));
  spec.Set("pods", std::move(pods));
  Value vol = Value::MakeList();
  for (const auto& v : volumes) vol.as_list().push_back(Value::String(v));
  spec.Set("volumes", std::move(vol));
}

std::string PlayDocuments(const Value& manifests, const Value& markers) {
  std::string out;
  if (!manifests.is_list()) return out;
  for (const Value& d : manifests.as_list()) {
    const std::string kind = Str(d, "kind");
    if (kind == "PersistentVolumeClaim") continue;
    Value doc = d;
    if (kind == "Pod") {
      Label(doc, {"metadata"}, markers);
    } else if (kind == "Deployment") {
      Label(doc, {"metadata"}, markers);
      Label(doc, {"spec", "template", "metadata"}, markers);
    }
    if (!out.empty()) out += "\n---\n";
    out += value::ToJson(doc);
  }
  return out;
}

Value LivePods(const Value& containers, const Value& declared_pods,
               const std::vector<std::pair<std::string, std::string>>& image_ids) {
  Value out = Value::MakeObject();
  if (!containers.is_list()) return out;
  for (const Value& c : containers.as_list()) {
    const std::string pod = Str(c, "PodName");
    if (pod.empty()) continue;
    std::string name;
    if (const Value* names = c.Find("Names"); names != nullptr && names->is_list() &&
                                              !names->as_list().empty() &&
                                              names->as_list()[0].is_string()) {
      name = names->as_list()[0].as_string();
    }
    if (StartsWith(name, pod + "-")) name = name.substr(pod.size() + 1);
    if (name.empty()) continue;
    std::string image = CanonicalImageRef(Str(c, "Image"));
    if (image.empty()) image = Str(c, "Image");
    const Value* want = Path(declared_pods, {pod.c_str(), name.c_str(), "image"});
    if (want != nullptr && want->is_string()) {
      for (const auto& [ref, id] : image_ids) {
        if (ref == want->as_string() && !id.empty() && id == NoSha(Str(c, "ImageID"))) {
          image = ref;
        }
      }
    }
    const std::string state = Str(c, "State");
    Value* p = out.Find(pod);
    if (p == nullptr) p = &out.Set(pod, Value::MakeObject());
    p->Set(name, Value::MakeObject({{"image", Value::String(image)},
                                    {"state", Value::String(state == "running"  ? "running"
                                                            : state == "paused" ? "paused"
                                                                                : "stopped")}}));
  }
  return out;
}

namespace {

std::string Filter(const ContainerTarget& t, const Object& o) {
  return UrlEncode(t.MarkerFilter(o.address));
}

// The declared image references and the ids they name now.
Result<std::vector<std::pair<std::string, std::string>>> ImageIds(const ContainerTarget& t,
                                                                  const Value& pods) {
  std::set<std::string> refs;
  if (pods.is_object()) {
    for (const auto& [pod, containers] : pods.as_object()) {
      for (const auto& [name, c] : containers.as_object()) refs.insert(Str(c, "image"));
    }
  }
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& ref : refs) {
    Result<Value> got =
        t.client().Json("GET", std::string(kApi) + "/images/" + UrlEncode(ref) + "/json", {}, true);
    if (!got.ok()) return got.error();
    out.emplace_back(ref, got->is_null() ? "" : NoSha(Str(*got, "Id")));
  }
  return out;
}

Result<std::vector<std::string>> OurVolumes(const ContainerTarget& t, const Object& o) {
  Result<Value> got =
      t.client().Json("GET", std::string(kApi) + "/volumes?filters=" + Filter(t, o));
  if (!got.ok()) return got.error();
  std::vector<std::string> out;
  if (const Value* list = got->Find("Volumes"); list != nullptr && list->is_list()) {
    for (const Value& v : list->as_list()) {
      if (t.Marked(v.Find("Labels"), o.address)) out.push_back(Str(v, "Name"));
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

Result<std::vector<std::string>> OurPods(const ContainerTarget& t, const Object& o) {
  Result<Value> got =
      t.client().Json("GET", std::string(kLibpod) + "/pods/json?filters=" + Filter(t, o));
  if (!got.ok()) return got.error();
  std::vector<std::string> out;
  if (got->is_list()) {
    for (const Value& p : got->as_list()) {
      if (t.Marked(p.Find("Labels"), o.address)) out.push_back(Str(p, "Name"));
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

Result<std::optional<Value>> Read(const ContainerTarget& t, const Object& o) {
  Result<Value> containers = t.client().Json(
      "GET", std::string(kLibpod) + "/containers/json?all=true&filters=" + Filter(t, o));
  if (!containers.ok()) return containers.error();
  Value ours = Value::MakeList();
  if (containers->is_list()) {
    for (Value& c : containers->as_list()) {
      if (t.Marked(c.Find("Labels"), o.address)) ours.as_list().push_back(std::move(c));
    }
  }
  const Value* declared = o.spec.Find("pods");
  Value none = Value::MakeObject();
  Result<std::vector<std::pair<std::string, std::string>>> ids =
      ImageIds(t, declared != nullptr ? *declared : none);
  if (!ids.ok()) return ids.error();
  Value pods = LivePods(ours, declared != nullptr ? *declared : none, *ids);
  Result<std::vector<std::string>> volumes = OurVolumes(t, o);
  if (!volumes.ok()) return volumes.error();
  Result<std::vector<std::string>> pod_names = OurPods(t, o);
  if (!pod_names.ok()) return pod_names.error();
  for (const auto& p : *pod_names) {
    if (pods.Find(p) == nullptr) pods.Set(p, Value::MakeObject());  // a pod without containers
  }
  if (pods.as_object().empty() && volumes->empty()) return std::optional<Value>();
  Value out = Value::MakeObject();
  out.Set("pods", std::move(pods));
  Value vol = Value::MakeList();
  for (auto& v : *volumes) vol.as_list().push_back(Value::String(std::move(v)));
  out.Set("volumes", std::move(vol));
  return std::optional<Value>(std::move(out));
}

// The pods' terminationGracePeriodSeconds (the longest of the templates; Podman's 10 when none
// is given). Podman 4.3 ignores it at play time, so driftless stops pods with it.
int64_t GracePeriod(const Value& spec) {
  int64_t grace = -1;
  if (const Value* docs = spec.Find("manifests"); docs != nullptr && docs->is_list()) {
    for (const Value& d : docs->as_list()) {
      const std::string kind = Str(d, "kind");
      const Value* g = kind == "Pod" ? Path(d, {"spec", "terminationGracePeriodSeconds"})
                       : kind == "Deployment"
                           ? Path(d, {"spec", "template", "spec", "terminationGracePeriodSeconds"})
                           : nullptr;
      if (g != nullptr && g->is_int() && g->as_int() >= 0) grace = std::max(grace, g->as_int());
    }
  }
  return grace < 0 ? 10 : grace;
}

// Stops a pod within `grace` seconds (SIGKILL for 0) and removes it.
Status RemovePod(const ContainerTarget& t, const std::string& pod, int64_t grace) {
  const std::string path = std::string(kLibpod) + "/pods/" + UrlEncode(pod);
  Result<Value> stop = grace == 0
                           ? t.client().Json("POST", path + "/kill?signal=SIGKILL", {}, true)
                           : t.client().Json("POST", path + "/stop?t=" + std::to_string(grace), {},
                                             true, "application/json", (grace + 60) * 1000);
  (void)stop;  // a pod that is not running (or half gone) is removed all the same
  Result<Value> r = t.client().Json("DELETE", path + "?force=true", {}, true);
  if (!r.ok()) return r.error();
  return Status::Ok();
}

Status Play(const ContainerTarget& t, const Object& o) {
  const Value* manifests = o.spec.Find("manifests");
  const Value* pods = o.spec.Find("pods");
  if (manifests == nullptr || pods == nullptr || pods->as_object().empty()) return Status::Ok();
  const std::string docs = PlayDocuments(*manifests, t.Markers(o.address));
  Result<Value> r = t.client().Json("POST", std::string(kLibpod) + "/play/kube?start=true", docs,
                                    false, "application/yaml", 600000);
  if (!r.ok()) return MakeError("playing the manifests: " + r.error().message);
  std::vector<std::string> problems;
  if (const Value* played = r->Find("Pods"); played != nullptr && played->is_list()) {
    for (const Value& p : played->as_list()) {
      const Value* errs = p.Find("ContainerErrors");
      if (errs == nullptr || !errs->is_list()) continue;
      for (const Value& e : errs->as_list()) {
        if (e.is_string()) problems.push_back(e.as_string());
      }
    }
  }
  if (!problems.empty()) return MakeError("playing the manifests: " + Join(problems, "; "));
  return Status::Ok();
}

// Makes what runs equal to the manifests. `replay`: the manifests changed, so every pod is made
// again (Podman cannot change a pod); otherwise only what differs is repaired.
Result<Value> Converge(ContainerTarget& t, const Object& o, bool replay) {
  Result<std::optional<Value>> live = Read(t, o);
  if (!live.ok()) return live.error();
  const Value& want_pods = *o.spec.Find("pods");
  const Value empty = Value::MakeObject();
  const Value& have_pods =
      *live && (*live)->Find("pods") != nullptr ? *(*live)->Find("pods") : empty;
  // Pods no longer declared go in any case (podman kube play never removes them).
  bool declared_differ = replay;
  for (const auto& [pod, containers] : want_pods.as_object()) {
    const Value* have = have_pods.Find(pod);
    if (have == nullptr || *have != containers) declared_differ = true;
  }
  for (const auto& [pod, containers] : have_pods.as_object()) {
    if (declared_differ || want_pods.Find(pod) == nullptr) {
      Status s = RemovePod(t, pod, GracePeriod(o.spec));
      if (!s.ok()) return s.error();
    }
  }
  // Volumes: made for each claim (with the markers), removed when no claim names them.
  std::set<std::string> want_volumes;
  for (const Value& v : o.spec.Find("volumes")->as_list()) want_volumes.insert(v.as_string());
  Result<std::vector<std::string>> ours = OurVolumes(t, o);
  if (!ours.ok()) return ours.error();
  for (const auto& v : *ours) {
    if (want_volumes.count(v)) continue;
    Result<Value> r =
        t.client().Json("DELETE", std::string(kApi) + "/volumes/" + UrlEncode(v), {}, true);
    if (!r.ok()) return r.error();
  }
  for (const auto& v : want_volumes) {
    Result<Value> exists =
        t.client().Json("GET", std::string(kApi) + "/volumes/" + UrlEncode(v), {}, true);
    if (!exists.ok()) return exists.error();
    if (!exists->is_null()) continue;  // a claim uses an existing volume, as Kubernetes would
    Value body = Value::MakeObject(
        {{"Name", Value::String(v)}, {"Labels", LabelsJson(nullptr, t.Markers(o.address))}});
    Result<Value> made =
        t.client().Json("POST", std::string(kApi) + "/volumes/create", value::ToJson(body));
    if (!made.ok()) return made.error();
  }
  if (declared_differ) {
    Status s = Play(t, o);
    if (!s.ok()) return s.error();
  }
  Result<std::optional<Value>> after = Read(t, o);
  if (!after.ok()) return after.error();
  if (!*after) {
    Value none = Value::MakeObject();
    none.Set("pods", Value::MakeObject());
    none.Set("volumes", Value::MakeList());
    return none;
  }
  return std::move(**after);
}

Result<Value> Create(ContainerTarget& t, const Object& o, bool adopt) {
  (void)adopt;  // what carries this resource's markers is its own (an interrupted apply)
  return Converge(t, o, true);
}

Result<Value> Update(ContainerTarget& t, const Object& o, const Value& prior) {
  const Value* before = prior.Find("manifests");
  const Value* now = o.spec.Find("manifests");
  const bool changed = before == nullptr || now == nullptr || *before != *now;
  return Converge(t, o, changed);
}

Status Delete(ContainerTarget& t, const Object& o) {
  Result<std::vector<std::string>> pods = OurPods(t, o);
  if (!pods.ok()) return pods.error();
  for (const auto& p : *pods) {
    Status s = RemovePod(t, p, GracePeriod(o.spec));
    if (!s.ok()) return s;
  }
  Result<std::vector<std::string>> volumes = OurVolumes(t, o);
  if (!volumes.ok()) return volumes.error();
  for (const auto& v : *volumes) {
    Result<Value> r =
        t.client().Json("DELETE", std::string(kApi) + "/volumes/" + UrlEncode(v), {}, true);
    if (!r.ok()) return r.error();
  }
  return Status::Ok();
}

}  // namespace

KindOps KubeOps() { return {Read, Create, Update, Delete}; }

}  // namespace driftless::providers::container
