#pragma once

// The test Podman service (scripts/podman-test-server.sh, started by ctest as the `podman`
// fixture for tests declared with PODMAN): its endpoint, the busybox images it built, and the
// podman command line on its storage. A test that needs the service fails (never skips) when it
// is not there.

#include <string>
#include <vector>

namespace driftless::test {

/// The service's endpoint ("unix:///tmp/dl-pm.XXXXXX/podman.sock"), read from
/// $DRIFTLESS_TEST_PODMAN_DIR/endpoint; "" (and a test failure recorded) when there is none.
std::string PodmanEndpoint();

/// The socket path of PodmanEndpoint().
std::string PodmanSocket();

/// The busybox root filesystem tarball the fixture made (/bin/busybox and its applet links).
std::string BusyboxRootfs();
/// The same as an image archive (podman save of localhost/busybox:fixture, PATH set).
std::string BusyboxImageArchive();

/// NAME=VALUE lines that make the podman command line use the service's storage
/// (CONTAINERS_CONF, CONTAINERS_STORAGE_CONF).
std::vector<std::string> PodmanEnv();

/// The outcome of a podman command.
struct PodmanResult {
  int exit_code = -1;
  std::string out;  ///< standard output and standard error
};

/// Runs `podman ARGS...` on the service's storage and waits for it.
PodmanResult Podman(const std::vector<std::string>& args);

/// A loopback TCP port that was free a moment ago (the kernel's choice for port 0), for a
/// container's published port: a container cannot take port 0 and report it back. The port is
/// claimed for this process's life (an flock other test processes respect), so that no other
/// test publishes on it while a test has its container removed.
int FreeLoopbackPort();

/// A name unique to this process and call ("<prefix>-<pid>-<n>"): tests run in parallel on one
/// service.
std::string UniquePodmanName(const std::string& prefix);

}  // namespace driftless::test
