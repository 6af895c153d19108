#pragma once

#include <memory>

#include "provider/provider.h"
#include "providers/container/container_target.h"

namespace driftless::providers::container {

/// The `container` provider: images, networks, volumes, containers and Kubernetes manifests
/// on a Docker Engine API (Docker, or Podman's compatible service) reached through a unix
/// socket or TCP (TLS with client files). `parse_yaml` reads the YAML files of
/// container.kube's `source`. See README.md beside this file and docs/containers.md.
std::unique_ptr<provider::Provider> NewContainerProvider(ParseYamlFn parse_yaml);

}  // namespace driftless::providers::container
