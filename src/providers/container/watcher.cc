#include "providers/container/watcher.h"

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <set>
#include <thread>

#include "base/strings.h"
#include "providers/container/container_target.h"
#include "providers/container/fields.h"
#include "providers/container/health.h"

namespace driftless::providers::container {

using value::Value;

bool ParseEvent(const std::string& line, EngineEvent* out) {
  Result<Value> v = value::ParseJson(line);
  if (!v.ok() || !v->is_object()) return false;
  out->type = Str(*v, "Type");
  out->action = Str(*v, "Action");
  if (out->action.empty()) out->action = Str(*v, "status");
  out->health = Str(*v, "HealthStatus");
  out->attributes.clear();
  out->id.clear();
  out->name.clear();
  if (const Value* actor = v->Find("Actor"); actor != nullptr && actor->is_object()) {
    out->id = Str(*actor, "ID");
    if (const Value* a = actor->Find("Attributes"); a != nullptr && a->is_object()) {
      for (const auto& [k, val] : a->as_object()) {
        if (val.is_scalar() && !val.is_null()) out->attributes[k] = val.ScalarText();
      }
    }
  }
  if (out->id.empty()) out->id = Str(*v, "id");
  auto name = out->attributes.find("name");
  if (name != out->attributes.end()) out->name = name->second;
  const Value* t = v->Find("timeNano");
  if (t == nullptr || !t->is_number()) t = v->Find("time");
  out->time_nano = 0;
  if (t != nullptr && t->is_int()) {
    const int64_t n = t->as_int();
    if (v->Find("timeNano") != nullptr) {
      out->time_nano = n;
    } else if (n >= 0 && n < INT64_MAX / 1000000000LL) {
      out->time_nano = n * 1000000000LL;  // seconds (Docker's "time")
    }
  }
  return !out->type.empty() && !out->action.empty();
}

bool RelevantAction(const std::string& type, const std::string& action) {
  static const std::set<std::string> kContainer = {
      "create", "start", "die",     "died",    "stop",   "kill",          "remove", "destroy",
      "rename", "pause", "unpause", "restart", "update", "health_status", "oom"};
  static const std::set<std::string> kImage = {"tag",  "untag",           "remove", "delete",
                                               "load", "loadfromarchive", "import", "pull"};
  static const std::set<std::string> kVolume = {"create", "remove", "destroy", "prune"};
  static const std::set<std::string> kNetwork = {"create", "remove", "destroy", "connect",
                                                 "disconnect"};
  if (type == "container") return kContainer.count(action) > 0;
  if (type == "image") return kImage.count(action) > 0;
  if (type == "volume") return kVolume.count(action) > 0;
  if (type == "network") return kNetwork.count(action) > 0;
  return false;
}

std::vector<WatchedObject> WatchedObjects(const std::vector<provider::WatchItem>& items) {
  std::vector<WatchedObject> out;
  for (const provider::WatchItem& item : items) {
    WatchedObject o;
    o.address = item.address;
    o.kind = item.kind;
    const std::string resource_name = item.address.substr(item.address.find('/') + 1);
    o.name = item.kind == kImageKind ? SpecString(item.attrs, "ref")
                                     : SpecString(item.attrs, "name", resource_name);
    o.id = SpecString(item.attrs, "id");
    o.image = SpecString(item.attrs, "image");
    if (const Value* v = item.attrs.Find("volumes"); v != nullptr && v->is_list()) {
      for (const Value& name : v->as_list()) {
        if (name.is_string()) o.volumes.push_back(name.as_string());
      }
    }
    if (const Value* h = item.attrs.Find("healthcheck"); h != nullptr && h->is_object()) {
      o.probe_interval_ns = ParseDuration(SpecString(*h, "interval", "30s")).value_or(0);
    }
    out.push_back(std::move(o));
  }
  return out;
}

std::vector<std::string> AddressesFor(const std::vector<WatchedObject>& objects,
                                      const EngineEvent& e, const std::string& project,
                                      const std::string& environment) {
  std::set<std::string> hit;
  auto attr = [&](const char* key) {
    auto it = e.attributes.find(key);
    return it == e.attributes.end() ? std::string() : it->second;
  };
  const std::string marked = attr(kLabelResource);
  const bool ours =
      !marked.empty() && attr(kLabelProject) == project && attr(kLabelEnvironment) == environment;
  auto same_id = [&](const WatchedObject& o) {
    if (o.id.empty() || e.id.empty()) return false;
    std::string a = StartsWith(o.id, "sha256:") ? o.id.substr(7) : o.id;
    std::string b = StartsWith(e.id, "sha256:") ? e.id.substr(7) : e.id;
    return a == b;
  };
  for (const WatchedObject& o : objects) {
    bool h = false;
    if (e.type == "container") {
      if (o.kind == kContainerKind)
        h = (ours && marked == o.address) || o.name == e.name || same_id(o);
      if (o.kind == kKubeKind) h = ours && marked == o.address;
    } else if (e.type == "image") {
      // Podman names the image by its ref; a container's declared image may name it.
      if (o.kind == kImageKind) h = o.name == e.name || same_id(o) || e.name.empty();
      if (o.kind == kContainerKind) h = !o.image.empty() && (o.image == e.name || e.name.empty());
    } else if (e.type == "volume") {
      const std::string name = e.name.empty() ? e.id : e.name;
      if (o.kind == kVolumeKind) h = o.name == name;
      if (o.kind == kKubeKind) {
        for (const auto& v : o.volumes) h = h || v == name;
      }
    } else if (e.type == "network") {
      if (o.kind == kNetworkKind) h = o.name == e.name || same_id(o);
    }
    if (h) hit.insert(o.address);
  }
  return {hit.begin(), hit.end()};
}

namespace {

using Clock = std::chrono::steady_clock;

int64_t UnixNanos() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

std::string SinceParam(int64_t ns) {
  char buf[48];
  std::snprintf(buf, sizeof(buf), "%lld.%09lld", static_cast<long long>(ns / 1000000000LL),
                static_cast<long long>(ns % 1000000000LL));
  return buf;
}

class EngineWatcher final : public provider::Watcher {
 public:
  EngineWatcher(const ContainerTarget& t, std::vector<WatchedObject> objects)
      : t_(t), objects_(std::move(objects)) {}

  Status Start() {
    // Events from a moment before: a change made between the engine's last check and this
    // connection is replayed (a hint too many is only a check).
    since_ns_ = UnixNanos() - 2000000000LL;
    Status s = Connect();
    if (!s.ok()) return s;
    for (const WatchedObject& o : objects_) {
      if (o.kind == kNetworkKind) networks_.insert(o.name);
    }
    if (!networks_.empty()) {
      Status p = PollNetworks(nullptr);
      if (!p.ok()) return p;
    }
    const bool probe = !t_.Traits().runs_healthchecks;
    const Clock::time_point now = Clock::now();
    for (const WatchedObject& o : objects_) {
      if (probe && o.kind == kContainerKind && o.probe_interval_ns > 0) {
        probes_.push_back({o.name, std::chrono::nanoseconds(o.probe_interval_ns),
                           now + std::chrono::nanoseconds(o.probe_interval_ns)});
      }
    }
    if (!probes_.empty()) {
      std::fprintf(stderr,
                   "note: %s does not run healthchecks (Podman without systemd): driftless runs "
                   "the declared probes of %zu container(s) itself while it watches\n",
                   t_.Describe().c_str(), probes_.size());
    }
    return Status::Ok();
  }

  Status Wait(int timeout_ms, std::vector<provider::WatchHint>* changed, bool* lost) override {
    const Clock::time_point deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    std::set<std::string> hints;
    while (true) {
      Clock::time_point now = Clock::now();
      if (!networks_.empty() && now >= next_network_poll_) {
        if (!PollNetworks(&hints).ok()) *lost = true;
        next_network_poll_ = now + std::chrono::seconds(1);
      }
      RunDueProbes(now);
      if (!stream_ && now >= next_connect_) {
        if (Connect().ok()) {
          *lost = true;  // events may have been missed while disconnected
        } else {
          next_connect_ = now + std::chrono::seconds(1);
        }
      }
      Clock::time_point until = deadline;
      if (!networks_.empty()) until = std::min(until, next_network_poll_);
      for (const Probe& p : probes_) until = std::min(until, p.next);
      if (!stream_) until = std::min(until, next_connect_);
      int ms = static_cast<int>(std::max<int64_t>(
          0, std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count()));
      if (stream_) {
        std::vector<std::string> lines;
        std::string error;
        bool open = stream_->Poll(ms, &lines, &error);
        for (const auto& line : lines) Handle(line, &hints);
        if (!open) {
          stream_.reset();
          if (!Connect().ok()) {
            next_connect_ = Clock::now() + std::chrono::seconds(1);
            *lost = true;
          }
        }
      } else if (ms > 0) {
        std::this_thread::sleep_for(std::chrono::milliseconds(ms));
      }
      if (!hints.empty() || *lost || Clock::now() >= deadline) break;
    }
    for (const auto& a : hints) changed->push_back({a, ""});
    return Status::Ok();
  }

  size_t WatchCount() const override { return 1 + (networks_.empty() ? 0 : 1) + probes_.size(); }

 private:
  struct Probe {
    std::string container;
    std::chrono::nanoseconds interval;
    Clock::time_point next;
  };

  Status Connect() {
    Value filters = Value::MakeObject(
        {{"type", Value::MakeList({Value::String("container"), Value::String("image"),
                                   Value::String("volume"), Value::String("network")})}});
    Result<std::unique_ptr<LineStream>> s =
        t_.client().Stream(std::string(kApi) + "/events?since=" + SinceParam(since_ns_) +
                           "&filters=" + UrlEncode(value::ToJson(filters)));
    if (!s.ok()) return s.error();
    stream_ = std::move(*s);
    return Status::Ok();
  }

  void Handle(const std::string& line, std::set<std::string>* hints) {
    EngineEvent e;
    if (!ParseEvent(line, &e)) return;
    if (e.time_nano > since_ns_) since_ns_ = e.time_nano;
    if (!RelevantAction(e.type, e.action)) return;
    if (e.action == "health_status") {
      // Every probe sends one: only a change of the status is news.
      std::string& last = health_[e.id];
      if (last == e.health) return;
      last = e.health;
    }
    for (auto& a : AddressesFor(objects_, e, t_.context().project, t_.context().environment))
      hints->insert(std::move(a));
  }

  // One list of networks: a hint for each watched network whose digest changed.
  Status PollNetworks(std::set<std::string>* hints) {
    Result<Value> got = t_.client().Json("GET", std::string(kApi) + "/networks");
    if (!got.ok()) return got.error();
    std::map<std::string, std::string> now;
    if (got->is_list()) {
      for (const Value& n : got->as_list()) {
        const std::string name = Str(n, "Name");
        if (!networks_.count(name)) continue;
        Value digest = Value::MakeObject();
        for (const char* k : {"Id", "Driver", "Labels", "IPAM"}) {
          if (const Value* v = n.Find(k)) digest.Set(k, *v);
        }
        now[name] = value::ToJson(digest);
      }
    }
    if (hints != nullptr) {
      for (const WatchedObject& o : objects_) {
        if (o.kind != kNetworkKind) continue;
        auto a = network_digests_.find(o.name);
        auto b = now.find(o.name);
        bool same = (a == network_digests_.end()) == (b == now.end()) &&
                    (a == network_digests_.end() || a->second == b->second);
        if (!same) hints->insert(o.address);
      }
    }
    network_digests_ = std::move(now);
    return Status::Ok();
  }

  void RunDueProbes(Clock::time_point now) {
    for (Probe& p : probes_) {
      if (now < p.next) continue;
      (void)RunHealthcheck(t_, p.container);  // a stopped container is the scan's business
      p.next = Clock::now() + p.interval;
    }
  }

  const ContainerTarget& t_;
  std::vector<WatchedObject> objects_;
  std::unique_ptr<LineStream> stream_;
  int64_t since_ns_ = 0;
  Clock::time_point next_connect_{};
  std::set<std::string> networks_;
  std::map<std::string, std::string> network_digests_;
  Clock::time_point next_network_poll_{};
  std::vector<Probe> probes_;
  std::map<std::string, std::string> health_;
};

}  // namespace

Result<std::unique_ptr<provider::Watcher>> WatchEngine(const ContainerTarget& t,
                                                       std::vector<WatchedObject> objects) {
  auto w = std::make_unique<EngineWatcher>(t, std::move(objects));
  Status s = w->Start();
  if (!s.ok()) return s.error();
  return std::unique_ptr<provider::Watcher>(std::move(w));
}

Result<std::unique_ptr<provider::Watcher>> ContainerTarget::Watch(
    const std::vector<provider::WatchItem>& items) {
  if (items.empty()) return std::unique_ptr<provider::Watcher>();
  return WatchEngine(*this, WatchedObjects(items));
}

}  // namespace driftless::providers::container
