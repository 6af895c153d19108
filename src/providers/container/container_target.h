#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "provider/provider.h"
#include "providers/container/engine_client.h"

// Internal to the container provider: the target class, the schemas and what the kinds share.

namespace driftless::providers::container {

inline constexpr char kImageKind[] = "container.image";
inline constexpr char kNetworkKind[] = "container.network";
inline constexpr char kVolumeKind[] = "container.volume";
inline constexpr char kContainerKind[] = "container.container";
inline constexpr char kKubeKind[] = "container.kube";

/// The labels that mark every object driftless makes: its project, environment and address.
inline constexpr char kLabelPrefix[] = "io.driftless.";
inline constexpr char kLabelProject[] = "io.driftless.project";
inline constexpr char kLabelEnvironment[] = "io.driftless.environment";
inline constexpr char kLabelResource[] = "io.driftless.resource";

/// The API versions spoken: Docker Engine API v1.41 (Podman 4.3 serves it) and libpod's.
inline constexpr char kApi[] = "/v1.41";
inline constexpr char kLibpod[] = "/v4.0.0/libpod";

/// Parses YAML text into its documents (Kubernetes manifests); given by the registration so
/// that the provider itself links only provider/, value/ and base/.
using ParseYamlFn = std::function<Result<std::vector<value::Value>>(const std::string& text,
                                                                    const std::string& file)>;

/// The schemas of the kinds, declared as data.
const std::vector<provider::ResourceSchema>& ContainerSchemas();

/// One resource as the kinds see it.
struct Object {
  std::string address;  ///< "container.container/web"
  std::string name;     ///< the object's name: spec.name, else the resource's name
  const value::Value& spec;
};

/// What the engine is, probed once.
struct EngineTraits {
  bool podman = false;
  /// False for Podman without systemd: it never runs healthchecks by itself, so driftless runs
  /// the declared probe through the libpod healthcheck endpoint.
  bool runs_healthchecks = true;
};

class ContainerTarget;

/// Reading and writing one kind.
struct KindOps {
  Result<std::optional<value::Value>> (*read)(const ContainerTarget& t, const Object& o);
  Result<value::Value> (*create)(ContainerTarget& t, const Object& o, bool adopt);
  Result<value::Value> (*update)(ContainerTarget& t, const Object& o, const value::Value& prior);
  Status (*remove)(ContainerTarget& t, const Object& o);
};

KindOps ImageOps();
KindOps NetworkOps();
KindOps VolumeOps();
KindOps ContainerOps();
KindOps KubeOps();

/// The string member `key` of a spec, or `fallback`.
std::string SpecString(const value::Value& spec, std::string_view key,
                       const std::string& fallback = "");
/// A member's string, or "" (for the engine's answers).
std::string Str(const value::Value& v, std::string_view key);
/// An object value of string labels from `labels` with `extra` added.
value::Value LabelsJson(const value::Value* labels, const value::Value& extra);

/// A container engine reached through one endpoint.
class ContainerTarget final : public provider::Target {
 public:
  ContainerTarget(std::string target_name, Endpoint endpoint, ParseYamlFn parse_yaml);

  void SetContext(const provider::TargetContext& context) override;
  Result<value::Value> Normalize(const std::string& kind, const value::Value& spec,
                                 const provider::ReadRepoFile& read_file,
                                 std::vector<provider::FieldError>& errors) const override;
  Result<std::optional<value::Value>> Read(const provider::ResourceRequest& req) const override;
  Result<value::Value> Create(const provider::ResourceRequest& req, bool adopt) override;
  Result<value::Value> Update(const provider::ResourceRequest& req,
                              const value::Value& prior) override;
  Status Delete(const provider::ResourceRequest& prior) override;
  std::string Describe() const override;
  std::string UpdateOperation(const std::string& kind, const value::Value& live,
                              const value::Value& planned) const override;
  /// The engine's event stream (watcher.h).
  Result<std::unique_ptr<provider::Watcher>> Watch(
      const std::vector<provider::WatchItem>& items) override;

  const EngineClient& client() const { return *client_; }
  const std::string& target_name() const { return target_name_; }
  const provider::TargetContext& context() const { return context_; }
  const ParseYamlFn& parse_yaml() const { return parse_yaml_; }

  /// The marker labels of `address`.
  value::Value Markers(const std::string& address) const;
  /// Whether `labels` (an engine object's) carry the marker of `address` in this project and
  /// environment.
  bool Marked(const value::Value* labels, const std::string& address) const;
  /// The labels filter ({"label": [...]}) that selects the objects of `address` (by the
  /// resource label: check the rest with Marked).
  std::string MarkerFilter(const std::string& address) const;

  /// Probes the engine once (GET /_ping, libpod info).
  EngineTraits Traits() const;

  /// The bytes of an image source read by Normalize, by the image id they give.
  void RememberSource(const std::string& id, std::string bytes) const;
  std::optional<std::string> SourceBytes(const std::string& id) const;

  /// The image configuration ("Config" of its inspect) of image `id`; cached, since an image
  /// id names immutable content.
  Result<value::Value> ImageConfig(const std::string& id) const;

 private:
  std::string target_name_;
  std::unique_ptr<EngineClient> client_;
  ParseYamlFn parse_yaml_;
  provider::TargetContext context_;
  mutable std::mutex mu_;
  mutable std::optional<EngineTraits> traits_;
  mutable std::map<std::string, std::string> sources_;
  mutable std::map<std::string, value::Value> image_configs_;
};

}  // namespace driftless::providers::container
