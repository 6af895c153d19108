#include "providers/container/container_provider.h"

#include <utility>

#include "base/strings.h"

namespace driftless::providers::container {
namespace {

using provider::FieldSchema;
using provider::FieldType;
using provider::ResourceSchema;

FieldSchema NameField(const std::string& what, bool force_new) {
  return {.name = "name",
          .type = FieldType::kString,
          .force_new = force_new,
          .description = "The " + what + "'s name on the engine; defaults to the resource's name." +
                         (force_new ? " A change replaces the " + what + "." : "")};
}

FieldSchema Labels(const std::string& what, bool force_new) {
  return {.name = "labels",
          .type = FieldType::kMap,
          .force_new = force_new,
          .description = "Labels of the " + what +
                         ", compared exactly when declared (a label added by hand is drift). "
                         "driftless adds io.driftless.project, io.driftless.environment and "
                         "io.driftless.resource to every object it makes."};
}

FieldSchema Id(const std::string& what) {
  return {.name = "id",
          .type = FieldType::kString,
          .computed = true,
          .description = "The " + what + "'s id on the engine."};
}

FieldSchema Config(const char* name, FieldType type, const std::string& description) {
  return {.name = name, .type = type, .force_new = true, .description = description};
}

std::vector<ResourceSchema> BuildSchemas() {
  std::vector<ResourceSchema> out;
  out.push_back(ResourceSchema{
      .kind = kImageKind,
      .description = "An image named `ref`, loaded from a tarball of the repository through "
                     "/images/load. Its id is the digest of its configuration, known from the "
                     "tarball at plan time and the same at every load.",
      .fields = {
          {.name = "ref",
           .type = FieldType::kString,
           .required = true,
           .force_new = true,
           .description = "The image's name with a tag (\"localhost/app:1.4\"; \":latest\" "
                          "when no tag is given)."},
          {.name = "source",
           .type = FieldType::kString,
           .description = "A tarball of the repository, uncompressed: an image archive "
                          "(`podman save`, `docker save`, OCI) or a root filesystem (made into "
                          "a one-layer image with a default PATH). Reported as drift when `ref` "
                          "names another image."},
          Id("image"),
      }});
  out.push_back(ResourceSchema{
      .kind = kNetworkKind,
      .description = "A network. Networks cannot change in place: any change replaces it "
                     "(which the engine refuses while containers use it).",
      .fields = {
          NameField("network", true),
          Config("driver", FieldType::kString, "The network driver (default bridge)."),
          Config("subnet", FieldType::kString,
                 "The subnet in CIDR form (\"10.89.7.0/24\"); chosen by the engine when absent "
                 "(and then not compared)."),
          Labels("network", true),
          Id("network"),
      }});
  out.push_back(ResourceSchema{
      .kind = kVolumeKind,
      .description = "A named volume. Volumes cannot change in place: a change replaces it "
                     "(its data is lost).",
      .fields = {
          NameField("volume", true),
          Config("driver", FieldType::kString, "The volume driver (default local)."),
          Labels("volume", true),
          Id("volume (its name)"),
      }});
  out.push_back(ResourceSchema{
      .kind = kContainerKind,
      .description = "A container. Only declared fields are compared, each against the "
                     "image's defaults overlaid by the declaration. A change of any field but "
                     "name and state recreates the container.",
      .fields = {
          NameField("container", false),
          Config("image", FieldType::kString,
                 "The image reference (\"${container.image.app.ref}\") or id. Reported as drift "
                 "when the container runs another image than the reference names now."),
          Config("command", FieldType::kList, "The command (arguments of the image's entrypoint)."),
          Config("env", FieldType::kMap,
                 "Environment variables. The image's and the engine's own (container, TERM, "
                 "HOSTNAME, PATH) are not reported unless declared; any other variable is drift."),
          Config("ports", FieldType::kList,
                 "Published ports: \"8080:80\", \"127.0.0.1:5432:5432/tcp\", \"[::1]:53:53/udp\"."),
          Config("mounts", FieldType::kList,
                 "Mounts: {volume: NAME or bind: /host/path, target: /path, read_only: false}."),
          Config("networks", FieldType::kList,
                 "The networks it is attached to, exactly (the engine's default network when "
                 "absent, not compared)."),
          Labels("container", true),
          Config("restart", FieldType::kString,
                 "no (default), always, unless-stopped, on-failure or on-failure:N."),
          Config("user", FieldType::kString,
                 "The user (and group) it runs as; the image's when absent."),
          Config("workdir", FieldType::kString, "The working directory; the image's when absent."),
          Config("healthcheck", FieldType::kMap,
                 "{test: [CMD, ...] or \"shell line\", interval: 30s, retries: 3}. Where the "
                 "engine does not run healthchecks (Podman without systemd) driftless runs the "
                 "probe itself while it applies (wait_healthy) and watches."),
          {.name = "wait_healthy",
           .type = FieldType::kAny,
           .description = "true or a timeout (\"2m\"; true is 2m): apply waits until the "
                          "container is healthy before its dependents, and fails with the last "
                          "probe's output when it is not by then.",
           .write_only = true},
          {.name = "state",
           .type = FieldType::kString,
           .description = "running (default) or stopped: started or stopped in place."},
          Config("init", FieldType::kBool,
                 "Runs a tiny init as PID 1 that forwards signals and reaps children (default "
                 "false): programs that ignore SIGTERM as PID 1 then stop at once."),
          Config("stop_timeout", FieldType::kInt,
                 "Seconds between SIGTERM and SIGKILL when stopping (default 10, always sent: "
                 "Podman's API would default to 0)."),
          Id("container"),
          {.name = "ip",
           .type = FieldType::kString,
           .computed = true,
           .description = "Its address on its first network (by name)."},
      }});
  out.push_back(ResourceSchema{
      .kind = kKubeKind,
      .description = "Kubernetes manifests (Pod, Deployment, ConfigMap, PersistentVolumeClaim) "
                     "run with Podman's play-kube, reconciled: pods no longer declared (a "
                     "Deployment scaled down) and volumes of claims no longer declared are "
                     "removed, and what runs is compared with the manifests.",
      .fields = {
          {.name = "source",
           .type = FieldType::kString,
           .description = "A YAML file of the repository holding the manifests.",
           .write_only = true},
          {.name = "manifests",
           .type = FieldType::kList,
           .description = "The manifests inline, instead of `source`.",
           .write_only = true},
          {.name = "pods",
           .type = FieldType::kMap,
           .description = "Derived from the manifests (not declared): each pod's containers "
                          "with their image and state. Deployments' pods are NAME-pod-0, ..."},
          {.name = "volumes",
           .type = FieldType::kList,
           .description = "Derived from the manifests (not declared): the claims' volumes."},
      }});
  return out;
}

class ContainerProvider final : public provider::Provider {
 public:
  explicit ContainerProvider(ParseYamlFn parse_yaml) : parse_yaml_(std::move(parse_yaml)) {}

  std::string Name() const override { return "container"; }
  std::vector<ResourceSchema> Schemas() const override { return ContainerSchemas(); }
  std::vector<FieldSchema> TargetSchema() const override {
    return {{.name = "endpoint",
             .type = FieldType::kString,
             .required = true,
             .description = "unix:///run/podman/podman.sock, unix:///var/run/docker.sock or "
                            "tcp://host:port."},
            {.name = "tls_ca",
             .type = FieldType::kString,
             .description = "For tcp://: the CA certificate file that signs the engine's."},
            {.name = "tls_cert",
             .type = FieldType::kString,
             .description = "For tcp://: the client certificate file (with tls_key)."},
            {.name = "tls_key",
             .type = FieldType::kString,
             .description = "For tcp://: the client key file."}};
  }

  Result<std::unique_ptr<provider::Target>> Configure(const std::string& target_name,
                                                      const value::Value& settings) const override {
    std::string prefix = "target " + target_name + ": ";
    if (!settings.is_object()) return MakeError(prefix + "settings must be a map");
    auto text = [&](const char* key) { return SpecString(settings, key); };
    for (const auto& [key, v] : settings.as_object()) {
      if (key != "endpoint" && key != "tls_ca" && key != "tls_cert" && key != "tls_key") {
        return MakeError(prefix + "unknown setting \"" + key +
                         "\" for the container provider (it takes: endpoint, tls_ca, tls_cert, "
                         "tls_key)");
      }
      if (!v.is_string()) return MakeError(prefix + key + " must be a string");
    }
    if (text("endpoint").empty()) {
      return MakeError(prefix +
                       "the container provider needs `endpoint` (unix:///... or "
                       "tcp://host:port)");
    }
    Result<Endpoint> e =
        ParseEndpoint(text("endpoint"), text("tls_ca"), text("tls_cert"), text("tls_key"));
    if (!e.ok()) return MakeError(prefix + e.error().message);
    return std::unique_ptr<provider::Target>(
        std::make_unique<ContainerTarget>(target_name, std::move(*e), parse_yaml_));
  }

 private:
  ParseYamlFn parse_yaml_;
};

}  // namespace

const std::vector<ResourceSchema>& ContainerSchemas() {
  static const std::vector<ResourceSchema> schemas = BuildSchemas();
  return schemas;
}

std::unique_ptr<provider::Provider> NewContainerProvider(ParseYamlFn parse_yaml) {
  return std::make_unique<ContainerProvider>(std::move(parse_yaml));
}

}  // namespace driftless::providers::container
