#pragma once

#include <cstdint>
#include <string>

#include "base/result.h"

// Container health. Docker, and Podman under systemd, run a container's healthcheck on its
// interval by themselves. Podman without systemd (cgroupfs, as in CI containers) never does:
// the status stays "starting". There driftless runs the declared probe itself through libpod's
// healthcheck endpoint (GET /libpod/containers/{name}/healthcheck runs it once and records the
// result), while it waits for `wait_healthy` and while it watches.

namespace driftless::providers::container {

class ContainerTarget;

/// Runs the container's healthcheck once (libpod) and returns the status it leads to:
/// "healthy", "unhealthy" or "starting".
Result<std::string> RunHealthcheck(const ContainerTarget& t, const std::string& container);

/// Waits until container `name` is healthy: running its probe every `interval_ns` (at most
/// every second) where the engine does not run it, else reading the status the engine keeps.
/// Fails after `timeout_ns` with the last status and probe output, or at once when the
/// container stops.
Status WaitHealthy(const ContainerTarget& t, const std::string& name, int64_t interval_ns,
                   int64_t timeout_ns);

}  // namespace driftless::providers::container
