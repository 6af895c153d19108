#include "providers/builtin.h"

#include "providers/container/container_provider.h"
#include "providers/file/file_provider.h"
#include "providers/postgres/postgres_provider.h"
#include "yaml/yaml.h"

namespace driftless::providers {

namespace {

// Kubernetes manifests (container.kube's `source`) are read with the engine's YAML parser; the
// container provider itself links only provider/, value/ and base/.
Result<std::vector<value::Value>> ParseYamlDocuments(const std::string& text,
                                                     const std::string& file) {
  Diagnostics diags;
  std::vector<yaml::YamlDocument> docs = yaml::ParseYaml(text, file, diags);
  if (diags.HasErrors()) return MakeError(diags.ToString());
  std::vector<value::Value> out;
  out.reserve(docs.size());
  for (auto& d : docs) out.push_back(std::move(d.root));
  return out;
}

}  // namespace

void RegisterBuiltinProviders(provider::Registry& registry) {
  registry.Register(file::NewFileProvider());
  registry.Register(postgres::NewPostgresProvider());
  registry.Register(container::NewContainerProvider(ParseYamlDocuments));
}

}  // namespace driftless::providers
