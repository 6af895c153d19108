#include "providers/container/inspect.h"

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <vector>

#include "base/strings.h"
#include "providers/container/fields.h"
#include "providers/container/image_archive.h"

namespace driftless::providers::container {

using value::Value;

namespace {

const Value& Member(const Value& v, std::string_view key) {
  static const Value kNull;
  const Value* m = v.Find(key);
  return m != nullptr ? *m : kNull;
}

std::string Text(const Value& v, std::string_view key) {
  const Value& m = Member(v, key);
  return m.is_string() ? m.as_string() : "";
}

// "K=V" entries as a map (the first '=' splits).
std::vector<std::pair<std::string, std::string>> EnvPairs(const Value& list) {
  std::vector<std::pair<std::string, std::string>> out;
  if (!list.is_list()) return out;
  for (const Value& e : list.as_list()) {
    if (!e.is_string()) continue;
    const std::string& s = e.as_string();
    size_t eq = s.find('=');
    if (eq == std::string::npos) {
      out.emplace_back(s, "");
    } else {
      out.emplace_back(s.substr(0, eq), s.substr(eq + 1));
    }
  }
  return out;
}

Value StringList(std::vector<std::string> items) {
  std::sort(items.begin(), items.end());
  Value::List l;
  for (auto& s : items) l.push_back(Value::String(std::move(s)));
  return Value::MakeList(std::move(l));
}

Value Strings(const Value& list) {
  Value::List l;
  if (list.is_list()) {
    for (const Value& v : list.as_list()) {
      if (v.is_string()) l.push_back(v);
    }
  }
  return Value::MakeList(std::move(l));
}

std::string ShortId(const std::string& id) {
  std::string s = StartsWith(id, "sha256:") ? id.substr(7) : id;
  return s.substr(0, 12);
}

Value LiveImage(const Value& inspect, const Value& config, const Value& declared,
                const std::string& declared_image_id) {
  const std::string want = Text(declared, "image");
  const std::string image_id = Text(inspect, "Image");
  if (!want.empty() && !declared_image_id.empty() && image_id == declared_image_id) {
    return Value::String(want);
  }
  std::string name = CanonicalImageRef(Text(config, "Image"));
  if (name.empty()) name = image_id;
  if (name == want) {
    // The same name, but it names another image now (loaded again since).
    return Value::String(want + " (image " + ShortId(image_id) + ", not the one " + want +
                         (declared_image_id.empty() ? " named then" : " names now") + ")");
  }
  return Value::String(name);
}

Value LiveEnv(const Value& config, const Value& image_config, const Value& declared) {
  const Value* want = declared.Find("env");
  std::map<std::string, std::string> image_env;
  for (auto& [k, v] : EnvPairs(Member(image_config, "Env"))) image_env[k] = v;
  const std::string hostname = Text(config, "Hostname");
  Value out = Value::MakeObject();
  for (auto& [k, v] : EnvPairs(Member(config, "Env"))) {
    const bool declared_key = want != nullptr && want->Find(k) != nullptr;
    if (!declared_key) {
      auto it = image_env.find(k);
      if (it != image_env.end() && it->second == v) continue;
      if (EngineAddedEnv(k, v, hostname)) continue;
    }
    out.Set(k, Value::String(v));
  }
  return out;
}

Value LivePorts(const Value& host) {
  std::vector<std::string> ports;
  const Value& bindings = Member(host, "PortBindings");
  if (bindings.is_object()) {
    for (const auto& [cport, list] : bindings.as_object()) {
      if (!list.is_list()) continue;
      for (const Value& b : list.as_list()) {
        if (!b.is_object()) continue;
        ports.push_back(PortFromBinding(cport, Text(b, "HostIp"), Text(b, "HostPort")));
      }
    }
  }
  return StringList(std::move(ports));
}

Value LiveMounts(const Value& inspect, const Value& image_config, const Value& declared) {
  std::set<std::string> declared_targets, image_volumes;
  if (const Value* m = declared.Find("mounts"); m != nullptr && m->is_list()) {
    for (const Value& d : m->as_list()) declared_targets.insert(Text(d, "target"));
  }
  if (const Value& v = Member(image_config, "Volumes"); v.is_object()) {
    for (const auto& [path, ignored] : v.as_object()) image_volumes.insert(CleanAbsolutePath(path));
  }
  std::vector<Value> out;
  const Value& mounts = Member(inspect, "Mounts");
  if (mounts.is_list()) {
    for (const Value& m : mounts.as_list()) {
      if (!m.is_object()) continue;
      const std::string type = Text(m, "Type");
      const std::string target = CleanAbsolutePath(Text(m, "Destination"));
      if (image_volumes.count(target) && !declared_targets.count(target)) continue;
      const Value& rw = Member(m, "RW");
      Value n = Value::MakeObject();
      if (type == "volume") {
        n.Set("volume", Value::String(Text(m, "Name")));
      } else if (type == "bind") {
        n.Set("bind", Value::String(CleanAbsolutePath(Text(m, "Source"))));
      } else {
        n.Set("type", Value::String(type));  // tmpfs and others: not declarable, so drift
      }
      n.Set("target", Value::String(target));
      n.Set("read_only", Value::Bool(rw.is_bool() && !rw.as_bool()));
      out.push_back(std::move(n));
    }
  }
  std::sort(out.begin(), out.end(),
            [](const Value& a, const Value& b) { return Text(a, "target") < Text(b, "target"); });
  return Value::MakeList(std::move(out));
}

Value LiveRestart(const Value& host) {
  const Value& p = Member(host, "RestartPolicy");
  std::string name = Text(p, "Name");
  if (name.empty()) name = "no";
  if (name == "on-failure") {
    const Value& n = Member(p, "MaximumRetryCount");
    if (n.is_int() && n.as_int() > 0) name += ":" + std::to_string(n.as_int());
  }
  return Value::String(name);
}

std::optional<Value> LiveHealthcheck(const Value& config) {
  const Value& h = Member(config, "Healthcheck");
  const Value& test = Member(h, "Test");
  if (!test.is_list() || test.as_list().empty()) return std::nullopt;
  Value out = Value::MakeObject();
  out.Set("test", Strings(test));
  const Value& interval = Member(h, "Interval");
  int64_t ns = 0;
  if (interval.is_int()) {
    ns = interval.as_int();
  } else if (interval.is_double() && interval.as_double() > 0 && interval.as_double() < 9e18) {
    ns = static_cast<int64_t>(interval.as_double());
  }
  out.Set("interval", Value::String(FormatDuration(ns > 0 ? ns : 30LL * 1000000000)));
  const Value& retries = Member(h, "Retries");
  out.Set("retries", Value::Int(retries.is_int() && retries.as_int() > 0 ? retries.as_int() : 3));
  return out;
}

Value LiveState(const Value& inspect) {
  const Value& state = Member(inspect, "State");
  const Value& running = Member(state, "Running");
  const Value& paused = Member(state, "Paused");
  if (paused.is_bool() && paused.as_bool()) return Value::String("paused");
  return Value::String(running.is_bool() && running.as_bool() ? "running" : "stopped");
}

std::string LiveIp(const Value& inspect) {
  const Value& settings = Member(inspect, "NetworkSettings");
  const Value& networks = Member(settings, "Networks");
  if (networks.is_object()) {
    for (const auto& [name, n] : networks.as_object()) {  // sorted by name
      std::string ip = Text(n, "IPAddress");
      if (!ip.empty()) return ip;
    }
  }
  return Text(settings, "IPAddress");
}

}  // namespace

bool EngineAddedEnv(const std::string& name, const std::string& value,
                    const std::string& hostname) {
  if (name == "container") return value == "podman";
  if (name == "TERM") return value == "xterm";
  if (name == "HOSTNAME") return value == hostname;
  if (name == "PATH") return value == kRootfsPath;
  return false;
}

Value ReportedLabels(const Value* live, const Value* inherited, const Value* declared,
                     const Value& markers) {
  bool all_markers = live != nullptr && live->is_object();
  if (all_markers) {
    for (const auto& [k, v] : markers.as_object()) {
      const Value* l = live->Find(k);
      if (l == nullptr || *l != v) all_markers = false;
    }
  }
  Value out = Value::MakeObject();
  if (live == nullptr || !live->is_object()) return out;
  for (const auto& [k, v] : live->as_object()) {
    const bool declared_key = declared != nullptr && declared->Find(k) != nullptr;
    if (!declared_key) {
      if (all_markers && markers.Find(k) != nullptr) continue;
      const Value* from_image =
          inherited != nullptr && inherited->is_object() ? inherited->Find(k) : nullptr;
      if (from_image != nullptr && *from_image == v) continue;
    }
    out.Set(k, Value::String(v.ScalarText()));
  }
  return out;
}

Value LiveContainer(const Value& inspect, const Value& image_config, const Value& declared,
                    const std::string& declared_image_id, const Value& markers) {
  const Value& config = Member(inspect, "Config");
  const Value& host = Member(inspect, "HostConfig");
  Value out = Value::MakeObject();
  std::string name = Text(inspect, "Name");
  if (StartsWith(name, "/")) name.erase(0, 1);
  out.Set("name", Value::String(name));
  out.Set("image", LiveImage(inspect, config, declared, declared_image_id));
  out.Set("command", Strings(Member(config, "Cmd")));
  out.Set("env", LiveEnv(config, image_config, declared));
  const Value& labels = Member(config, "Labels");
  out.Set("labels", ReportedLabels(&labels, &Member(image_config, "Labels"),
                                   declared.Find("labels"), markers));
  out.Set("ports", LivePorts(host));
  out.Set("mounts", LiveMounts(inspect, image_config, declared));
  std::vector<std::string> networks;
  if (const Value& n = Member(Member(inspect, "NetworkSettings"), "Networks"); n.is_object()) {
    for (const auto& [k, v] : n.as_object()) networks.push_back(k);
  }
  out.Set("networks", StringList(std::move(networks)));
  out.Set("restart", LiveRestart(host));
  out.Set("user", Value::String(Text(config, "User")));
  out.Set("workdir", Value::String(CleanAbsolutePath(Text(config, "WorkingDir")).empty()
                                       ? "/"
                                       : CleanAbsolutePath(Text(config, "WorkingDir"))));
  if (std::optional<Value> h = LiveHealthcheck(config)) out.Set("healthcheck", std::move(*h));
  out.Set("state", LiveState(inspect));
  const Value& init = Member(host, "Init");
  out.Set("init", Value::Bool(init.is_bool() && init.as_bool()));
  const Value& timeout = Member(config, "StopTimeout");
  out.Set("stop_timeout", Value::Int(timeout.is_int() ? timeout.as_int() : 10));
  out.Set("id", Value::String(Text(inspect, "Id")));
  out.Set("ip", Value::String(LiveIp(inspect)));
  return out;
}

Value LiveNetwork(const Value& inspect, const Value& declared, const Value& markers) {
  Value out = Value::MakeObject();
  out.Set("name", Value::String(Text(inspect, "Name")));
  out.Set("driver", Value::String(Text(inspect, "Driver")));
  const Value& configs = Member(Member(inspect, "IPAM"), "Config");
  if (configs.is_list() && !configs.as_list().empty()) {
    out.Set("subnet", Value::String(Text(configs.as_list()[0], "Subnet")));
  }
  out.Set("labels",
          ReportedLabels(&Member(inspect, "Labels"), nullptr, declared.Find("labels"), markers));
  out.Set("id", Value::String(Text(inspect, "Id")));
  return out;
}

Value LiveVolume(const Value& inspect, const Value& declared, const Value& markers) {
  Value out = Value::MakeObject();
  out.Set("name", Value::String(Text(inspect, "Name")));
  out.Set("driver", Value::String(Text(inspect, "Driver")));
  out.Set("labels",
          ReportedLabels(&Member(inspect, "Labels"), nullptr, declared.Find("labels"), markers));
  out.Set("id", Value::String(Text(inspect, "Name")));
  return out;
}

}  // namespace driftless::providers::container
