#pragma once

#include <string>

#include "value/value.h"

// The engine's answers (container, network and volume inspects, image configurations) turned
// into the live attributes Read reports, in the canonical form of Normalize. Pure functions of
// their inputs, so that what the engine mixes in is decided in one place (and tested there):
//
// - Env: the image's variables and those the engine adds (container=podman, TERM=xterm,
//   HOSTNAME=<the hostname>, a default PATH) are left out unless declared; anything else is
//   reported, so a variable added by hand is drift.
// - Labels: the image's labels (with the image's value) and driftless's own markers (when they
//   name this resource) are left out unless declared.
// - Mounts come from the top-level Mounts list (Podman leaves HostConfig.Mounts null and lists
//   them in Binds too); the image's anonymous volumes are left out unless declared.
// - Ports: an unset HostIp ("") and 0.0.0.0 both mean any address.
// - StopSignal ("15" on Podman, "SIGTERM" on Docker), Hostname, ExposedPorts, Entrypoint,
//   Ulimits, and every other field of the inspect are not reported: they are not managed.

namespace driftless::providers::container {

/// The engine's environment variables that are not the container's own when their value is
/// the engine's default: Podman's container=podman and TERM=xterm, HOSTNAME (the container's
/// hostname) and the default PATH (for images without one).
bool EngineAddedEnv(const std::string& name, const std::string& value, const std::string& hostname);

/// The live attributes of a container: `inspect` is GET /containers/{name}/json, `image_config`
/// the "Config" of its image, `declared` the normalized spec (which env and label keys are
/// declared), `declared_image_id` the id the declared image reference names now ("" when it
/// names nothing), `markers` the marker labels of this resource.
value::Value LiveContainer(const value::Value& inspect, const value::Value& image_config,
                           const value::Value& declared, const std::string& declared_image_id,
                           const value::Value& markers);

/// The live attributes of a network (GET /networks/{name}).
value::Value LiveNetwork(const value::Value& inspect, const value::Value& declared,
                         const value::Value& markers);

/// The live attributes of a volume (GET /volumes/{name}).
value::Value LiveVolume(const value::Value& inspect, const value::Value& declared,
                        const value::Value& markers);

/// Labels as reported: those of `live` without the `markers` (when all of them are there with
/// their values) and without `inherited` ones that keep their inherited value, unless declared.
value::Value ReportedLabels(const value::Value* live, const value::Value* inherited,
                            const value::Value* declared, const value::Value& markers);

}  // namespace driftless::providers::container
