#pragma once

#include <string>
#include <vector>

#include "provider/provider.h"
#include "providers/container/container_target.h"

// container.kube: Kubernetes manifests (Pod, Deployment, ConfigMap, PersistentVolumeClaim) run
// by Podman's play-kube API, reconciled by driftless: `podman kube play` only creates, so pods
// that are no longer declared (a Deployment scaled from 2 to 1) and volumes of claims no longer
// declared are removed here, and what runs is compared with what the manifests say.

namespace driftless::providers::container {

/// Checks the manifests (`manifests:` inline, or the YAML file `source:`) and adds what they
/// mean as compared fields: `pods` (name -> containers -> image and state "running") and
/// `volumes` (the claims' names). `manifests` then holds the documents either way.
void NormalizeKube(const ParseYamlFn& parse_yaml, value::Value& spec,
                   const provider::ReadRepoFile& read_file,
                   std::vector<provider::FieldError>& errors);

/// The documents to play for `address` (JSON, "---"-separated): the pods' and deployments'
/// templates labelled with `markers`, claims left out (driftless makes their volumes).
std::string PlayDocuments(const value::Value& manifests, const value::Value& markers);

/// The live `pods` value from a libpod container list (GET /libpod/containers/json) of the
/// resource's containers; `image_ids` maps each declared image reference to the id it names now
/// (without "sha256:"), so that a container runs "the declared image" or is reported with its
/// own.
value::Value LivePods(const value::Value& containers, const value::Value& declared_pods,
                      const std::vector<std::pair<std::string, std::string>>& image_ids);

}  // namespace driftless::providers::container
