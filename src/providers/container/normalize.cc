// Normalize: checks and canonical forms of the container kinds (what is stored as applied and
// compared with what Read reports). Defaults are filled in only for what driftless always sends
// to the engine (restart policy, stop timeout, init, state); every other field is compared only
// when declared.

#include <algorithm>
#include <set>

#include "base/strings.h"
#include "providers/container/container_target.h"
#include "providers/container/fields.h"
#include "providers/container/image_archive.h"
#include "providers/container/kube.h"

namespace driftless::providers::container {

using provider::FieldError;
using value::Value;

namespace {

// A copy of `v` with the sensitivity and source mark of `like`.
Value Like(Value v, const Value& like) {
  v.set_sensitive(like.sensitive());
  v.set_mark(like.line(), like.column());
  return v;
}

void SetDefault(Value& spec, const char* key, Value v) {
  if (spec.Find(key) == nullptr) spec.Set(key, std::move(v));
}

void CheckName(const Value& spec, const char* what, std::vector<FieldError>& errors) {
  const Value* n = spec.Find("name");
  if (n != nullptr && n->is_string() && !ValidObjectName(n->as_string())) {
    errors.push_back({"name", Quote(n->as_string()) + " is not a valid " + what +
                                  " name (letters, digits, _ . -; starting with a letter or "
                                  "digit)"});
  }
}

// A map of strings: scalar values become their text. `reserved_prefix` keys are refused.
void StringMap(Value& spec, const char* key, std::vector<FieldError>& errors,
               bool check_label_keys) {
  Value* m = spec.Find(key);
  if (m == nullptr || !m->is_object()) return;
  for (auto& [k, v] : m->as_object()) {
    const std::string path = std::string(key) + "." + k;
    if (!v.is_scalar() || v.is_null() || v.is_unknown()) {
      errors.push_back({path, "must be a string"});
      continue;
    }
    if (!v.is_string()) v = Like(Value::String(v.ScalarText()), v);
    if (k.empty() || k.find('=') != std::string::npos) {
      errors.push_back({path, "a name may not be empty or hold '='"});
    }
    if (check_label_keys && StartsWith(k, kLabelPrefix)) {
      errors.push_back({path, std::string("labels starting with ") + kLabelPrefix +
                                  " are driftless's own markers"});
    }
  }
}

void NormalizeLabels(Value& spec, std::vector<FieldError>& errors) {
  StringMap(spec, "labels", errors, true);
}

void NormalizeNetwork(Value& spec, std::vector<FieldError>& errors) {
  CheckName(spec, "network", errors);
  SetDefault(spec, "driver", Value::String("bridge"));
  if (const Value* s = spec.Find("subnet"); s != nullptr && s->is_string()) {
    const std::string& text = s->as_string();
    size_t slash = text.find('/');
    bool ok = slash != std::string::npos && slash > 0;
    if (ok) {
      std::string bits = text.substr(slash + 1);
      ok = !bits.empty() && bits.size() <= 3 &&
           std::all_of(bits.begin(), bits.end(), [](char c) { return c >= '0' && c <= '9'; }) &&
           std::stoi(bits) <= 128;
    }
    if (!ok) errors.push_back({"subnet", "a subnet is written in CIDR form: \"10.89.1.0/24\""});
  }
  NormalizeLabels(spec, errors);
}

void NormalizeVolume(Value& spec, std::vector<FieldError>& errors) {
  CheckName(spec, "volume", errors);
  SetDefault(spec, "driver", Value::String("local"));
  NormalizeLabels(spec, errors);
}

void NormalizePorts(Value& spec, std::vector<FieldError>& errors) {
  Value* ports = spec.Find("ports");
  if (ports == nullptr) return;
  std::set<std::string> seen;
  Value::List out;
  for (size_t i = 0; i < ports->as_list().size(); ++i) {
    const Value& p = ports->as_list()[i];
    const std::string path = "ports." + std::to_string(i);
    if (!p.is_string()) {
      errors.push_back({path, "a port is a string such as \"8080:80\""});
      continue;
    }
    std::string why;
    std::string canonical = CanonicalPort(p.as_string(), &why);
    if (canonical.empty()) {
      errors.push_back({path, why});
      continue;
    }
    PortParts parts = SplitPort(canonical);
    if (!seen.insert(parts.host_ip + " " + parts.host_port + "/" +
                     parts.container_port.substr(parts.container_port.find('/') + 1))
             .second) {
      errors.push_back({path, "host port " + parts.host_port + " is published twice"});
      continue;
    }
    out.push_back(Like(Value::String(canonical), p));
  }
  std::sort(out.begin(), out.end(),
            [](const Value& a, const Value& b) { return a.as_string() < b.as_string(); });
  *ports = Like(Value::MakeList(std::move(out)), *ports);
}

void NormalizeMounts(Value& spec, std::vector<FieldError>& errors) {
  Value* mounts = spec.Find("mounts");
  if (mounts == nullptr) return;
  Value::List out;
  std::set<std::string> targets;
  for (size_t i = 0; i < mounts->as_list().size(); ++i) {
    const Value& m = mounts->as_list()[i];
    const std::string path = "mounts." + std::to_string(i);
    if (!m.is_object()) {
      errors.push_back({path,
                        "a mount is a map: {volume: NAME or bind: /host/path, target: "
                        "/path, read_only: false}"});
      continue;
    }
    Value n = Value::MakeObject();
    bool ok = true;
    for (const auto& [k, v] : m.as_object()) {
      if (k != "volume" && k != "bind" && k != "target" && k != "read_only") {
        errors.push_back({path + "." + k, "unknown mount field (volume, bind, target, read_only)"});
        ok = false;
      }
    }
    const Value* volume = m.Find("volume");
    const Value* bind = m.Find("bind");
    const Value* target = m.Find("target");
    const Value* ro = m.Find("read_only");
    if ((volume == nullptr) == (bind == nullptr)) {
      errors.push_back(
          {path, "a mount has either `volume` (a volume name) or `bind` (a host path)"});
      continue;
    }
    if (volume != nullptr) {
      if (!volume->is_string() || !ValidObjectName(volume->as_string())) {
        errors.push_back({path + ".volume", "must be a volume name"});
        ok = false;
      } else {
        n.Set("volume", *volume);
      }
    } else {
      std::string clean = bind->is_string() ? CleanAbsolutePath(bind->as_string()) : "";
      if (clean.empty()) {
        errors.push_back({path + ".bind", "must be an absolute path on the engine's host"});
        ok = false;
      } else {
        n.Set("bind", Like(Value::String(clean), *bind));
      }
    }
    std::string clean_target =
        target != nullptr && target->is_string() ? CleanAbsolutePath(target->as_string()) : "";
    if (clean_target.empty()) {
      errors.push_back({path + ".target", "must be an absolute path in the container"});
      ok = false;
    } else if (!targets.insert(clean_target).second) {
      errors.push_back({path + ".target", clean_target + " is mounted twice"});
      ok = false;
    } else {
      n.Set("target", Like(Value::String(clean_target), *target));
    }
    if (ro != nullptr && !ro->is_bool()) {
      errors.push_back({path + ".read_only", "must be true or false"});
      ok = false;
    }
    n.Set("read_only", Value::Bool(ro != nullptr && ro->is_bool() && ro->as_bool()));
    if (ok) out.push_back(Like(std::move(n), m));
  }
  std::sort(out.begin(), out.end(),
            [](const Value& a, const Value& b) { return Str(a, "target") < Str(b, "target"); });
  *mounts = Like(Value::MakeList(std::move(out)), *mounts);
}

void NormalizeHealthcheck(Value& spec, std::vector<FieldError>& errors) {
  Value* h = spec.Find("healthcheck");
  if (h == nullptr) return;
  for (const auto& [k, v] : h->as_object()) {
    if (k != "test" && k != "interval" && k != "retries") {
      errors.push_back({"healthcheck." + k, "unknown healthcheck field (test, interval, retries)"});
    }
  }
  Value n = Value::MakeObject();
  const Value* test = h->Find("test");
  Value::List t;
  if (test == nullptr) {
    errors.push_back({"healthcheck",
                      "a healthcheck needs `test`: a command (list) or a shell "
                      "line (string)"});
  } else if (test->is_string()) {
    t = {Value::String("CMD-SHELL"), Value::String(test->as_string())};
  } else if (test->is_list() && !test->as_list().empty()) {
    for (const Value& a : test->as_list()) {
      if (!a.is_scalar() || a.is_null()) {
        errors.push_back({"healthcheck.test", "must be a list of strings"});
        break;
      }
      t.push_back(Value::String(a.ScalarText()));
    }
    const std::string first = t.empty() ? "" : t[0].as_string();
    if (first != "CMD" && first != "CMD-SHELL" && first != "NONE") {
      t.insert(t.begin(), Value::String("CMD"));
    }
  } else {
    errors.push_back({"healthcheck.test", "must be a command (list) or a shell line (string)"});
  }
  n.Set("test", Value::MakeList(std::move(t)));
  int64_t interval = 30LL * 1000000000;
  if (const Value* i = h->Find("interval")) {
    std::optional<int64_t> d = i->is_string() ? ParseDuration(i->as_string()) : std::nullopt;
    if (!d || *d < 1000000) {
      errors.push_back(
          {"healthcheck.interval", "must be a duration such as \"10s\" (at least 1ms)"});
    } else {
      interval = *d;
    }
  }
  n.Set("interval", Value::String(FormatDuration(interval)));
  int64_t retries = 3;
  if (const Value* r = h->Find("retries")) {
    if (!r->is_int() || r->as_int() < 1) {
      errors.push_back({"healthcheck.retries", "must be a whole number of at least 1"});
    } else {
      retries = r->as_int();
    }
  }
  n.Set("retries", Value::Int(retries));
  *h = Like(std::move(n), *h);
}

void NormalizeContainer(Value& spec, std::vector<FieldError>& errors) {
  CheckName(spec, "container", errors);
  if (const Value* image = spec.Find("image"); image != nullptr && image->is_string()) {
    std::string ref = CanonicalImageRef(image->as_string());
    if (ref.empty()) {
      errors.push_back({"image", Quote(image->as_string()) + " is not an image reference"});
    } else {
      spec.Set("image", Like(Value::String(ref), *image));
    }
  }
  if (Value* c = spec.Find("command")) {
    for (auto& a : c->as_list()) {
      if (!a.is_scalar() || a.is_null()) {
        errors.push_back({"command", "must be a list of strings"});
        break;
      }
      if (!a.is_string()) a = Like(Value::String(a.ScalarText()), a);
    }
  }
  StringMap(spec, "env", errors, false);
  NormalizeLabels(spec, errors);
  NormalizePorts(spec, errors);
  NormalizeMounts(spec, errors);
  if (Value* n = spec.Find("networks")) {
    std::vector<std::string> names;
    for (const Value& v : n->as_list()) {
      if (!v.is_string() || !ValidObjectName(v.as_string())) {
        errors.push_back({"networks", "must be a list of network names"});
        names.clear();
        break;
      }
      names.push_back(v.as_string());
    }
    std::sort(names.begin(), names.end());
    names.erase(std::unique(names.begin(), names.end()), names.end());
    Value::List list;
    for (auto& s : names) list.push_back(Value::String(std::move(s)));
    *n = Like(Value::MakeList(std::move(list)), *n);
  }
  if (const Value* r = spec.Find("restart"); r != nullptr) {
    std::string canonical = r->is_string() ? CanonicalRestart(r->as_string()) : "";
    if (canonical.empty()) {
      errors.push_back({"restart",
                        "must be no, always, unless-stopped, on-failure or "
                        "on-failure:N"});
    } else {
      spec.Set("restart", Like(Value::String(canonical), *r));
    }
  }
  SetDefault(spec, "restart", Value::String("no"));
  if (const Value* w = spec.Find("workdir"); w != nullptr && w->is_string()) {
    std::string clean = CleanAbsolutePath(w->as_string());
    if (clean.empty()) {
      errors.push_back({"workdir", "must be an absolute path in the container"});
    } else {
      spec.Set("workdir", Like(Value::String(clean), *w));
    }
  }
  NormalizeHealthcheck(spec, errors);
  if (const Value* w = spec.Find("wait_healthy"); w != nullptr) {
    bool ok = w->is_bool() || (w->is_string() && ParseDuration(w->as_string()).has_value());
    if (!ok) {
      errors.push_back({"wait_healthy", "must be true, false or a timeout such as \"2m\""});
    }
  }
  if (const Value* s = spec.Find("state"); s != nullptr) {
    if (!s->is_string() || (s->as_string() != "running" && s->as_string() != "stopped")) {
      errors.push_back({"state", "must be running or stopped"});
    }
  }
  SetDefault(spec, "state", Value::String("running"));
  SetDefault(spec, "init", Value::Bool(false));
  if (const Value* t = spec.Find("stop_timeout");
      t != nullptr && (!t->is_int() || t->as_int() < 0)) {
    errors.push_back({"stop_timeout", "must be a whole number of seconds (0 or more)"});
  }
  SetDefault(spec, "stop_timeout", Value::Int(10));
}

void NormalizeImage(const ContainerTarget& t, Value& spec, const provider::ReadRepoFile& read_file,
                    std::vector<FieldError>& errors) {
  const Value* ref = spec.Find("ref");
  std::string canonical =
      ref != nullptr && ref->is_string() ? CanonicalImageRef(ref->as_string()) : "";
  if (ref != nullptr && (canonical.empty() || StartsWith(canonical, "sha256:") ||
                         canonical.find(':') == std::string::npos)) {
    errors.push_back({"ref", "must be an image name with a tag, such as \"localhost/app:1.4\""});
    return;
  }
  if (ref != nullptr) spec.Set("ref", Like(Value::String(canonical), *ref));
  const Value* source = spec.Find("source");
  if (source == nullptr || !source->is_string()) return;
  Result<std::string> bytes = read_file(source->as_string());
  if (!bytes.ok()) {
    errors.push_back({"source", bytes.error().message});
    return;
  }
  Result<ImageArchive> archive = InspectArchive(*bytes, canonical);
  if (!archive.ok()) {
    errors.push_back({"source", source->as_string() + ": " + archive.error().message});
    return;
  }
  spec.Set("id", Value::String(archive->id));
  t.RememberSource(archive->id, std::move(*bytes));
}

}  // namespace

Result<Value> ContainerTarget::Normalize(const std::string& kind, const Value& spec,
                                         const provider::ReadRepoFile& read_file,
                                         std::vector<FieldError>& errors) const {
  Value out = spec;
  if (!out.is_object()) return MakeError("spec must be a mapping");
  if (kind == kImageKind) {
    NormalizeImage(*this, out, read_file, errors);
  } else if (kind == kNetworkKind) {
    NormalizeNetwork(out, errors);
  } else if (kind == kVolumeKind) {
    NormalizeVolume(out, errors);
  } else if (kind == kContainerKind) {
    NormalizeContainer(out, errors);
  } else if (kind == kKubeKind) {
    NormalizeKube(parse_yaml_, out, read_file, errors);
  } else {
    return MakeError("the container provider has no kind " + kind);
  }
  if (!errors.empty()) return MakeError("invalid spec");
  return out;
}

}  // namespace driftless::providers::container
