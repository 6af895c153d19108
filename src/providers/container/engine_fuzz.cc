// libFuzzer entry point for everything the container provider parses from the engine or the
// repository: event lines, inspects turned into live values (containers, networks, volumes, pod
// lists), tarballs (image archives and root filesystems), manifests, and the text forms of
// ports, durations and image references. The first byte picks the parser. Besides not crashing,
// the text forms must be fixed points: what comes out parses to itself.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "providers/container/fields.h"
#include "providers/container/image_archive.h"
#include "providers/container/inspect.h"
#include "providers/container/kube.h"
#include "providers/container/watcher.h"

using namespace driftless::providers::container;
using driftless::value::Value;

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

Value Markers() {
  Value m = Value::MakeObject();
  m.Set(kLabelProject, Value::String("p"));
  m.Set(kLabelEnvironment, Value::String("e"));
  m.Set(kLabelResource, Value::String("container.container/web"));
  return m;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 8) {
    case 0: {
      EngineEvent e;
      if (ParseEvent(text, &e)) {
        std::vector<driftless::provider::WatchItem> items = {
            {"container.container/web", kContainerKind, Value::MakeObject()},
            {"container.kube/k", kKubeKind, Value::MakeObject()}};
        (void)AddressesFor(WatchedObjects(items), e, "p", "e");
      }
      break;
    }
    case 1: {
      auto v = driftless::value::ParseJson(text);
      if (v.ok()) {
        Value live = LiveContainer(*v, *v, *v, "sha256:x", Markers());
        Check(live.is_object() && live.Find("env") != nullptr);
        (void)LiveNetwork(*v, *v, Markers());
        (void)LiveVolume(*v, *v, Markers());
        (void)LivePods(*v, *v, {{"a:1", "x"}});
        (void)PlayDocuments(*v, Markers());
      }
      break;
    }
    case 2: {
      auto a = InspectArchive(text, "localhost/x:1");
      if (a.ok()) Check(a->id.rfind("sha256:", 0) == 0);
      break;
    }
    case 3: {
      std::string why;
      std::string port = CanonicalPort(text, &why);
      if (!port.empty()) {
        std::string again = CanonicalPort(port, &why);
        Check(again == port);
        PortParts p = SplitPort(port);
        Check(PortFromBinding(p.container_port, p.host_ip, p.host_port) == port);
      }
      break;
    }
    case 4: {
      auto ns = ParseDuration(text);
      if (ns) Check(ParseDuration(FormatDuration(*ns)) == *ns || *ns <= 0);
      break;
    }
    case 5: {
      std::string ref = CanonicalImageRef(text);
      if (!ref.empty()) Check(CanonicalImageRef(ref) == ref);
      (void)CanonicalRestart(text);
      std::string path = CleanAbsolutePath(text);
      if (!path.empty()) Check(CleanAbsolutePath(path) == path);
      break;
    }
    case 6: {
      auto v = driftless::value::ParseJson(text);
      if (v.ok()) {
        Value spec = Value::MakeObject();
        spec.Set("manifests", *v);
        if (!v->is_list()) break;
        std::vector<driftless::provider::FieldError> errors;
        NormalizeKube(nullptr, spec, nullptr, errors);
      }
      break;
    }
    case 7: {
      auto entries = ReadTar(text);
      if (entries.ok()) {
        std::string out;
        size_t kept = 0;
        for (const auto& e : *entries) {
          if (e.name.empty() || e.name.size() >= 100) continue;
          AppendTarFile(out, e.name, e.data);
          ++kept;
        }
        FinishTar(out);
        auto again = ReadTar(out);
        Check(kept == 0 || (again.ok() && again->size() == kept));
      }
      break;
    }
  }
  return 0;
}
