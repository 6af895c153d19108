#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

// Image tarballs of the repository (container.image's `source`): what they are, the image id
// the engine will give them, and the archive that /images/load takes. Image ids are content
// digests (of the image's configuration), so they are known at plan time and stable across
// loads: the same tarball always gives the same id.

namespace driftless::providers::container {

/// One regular file of a tar archive.
struct TarEntry {
  std::string name;       ///< without a leading "./"
  std::string_view data;  ///< into the archive's bytes
};

/// The regular files of an uncompressed tar archive (ustar, GNU long names, pax paths).
/// Errors name the offset; a gzip/xz/zstd-compressed tarball is refused with a hint.
Result<std::vector<TarEntry>> ReadTar(std::string_view bytes);

/// Appends one regular file to a tar archive being built (ustar; names up to 100 bytes).
void AppendTarFile(std::string& out, const std::string& name, std::string_view data);
/// Ends a tar archive being built.
void FinishTar(std::string& out);

/// What a tarball holds.
enum class ArchiveKind {
  kDockerArchive,  ///< `podman save` / `docker save`: manifest.json, a config, layers
  kOciArchive,     ///< oci-layout, index.json, blobs/sha256/...
  kRootfs,         ///< anything else: a root filesystem, made into a one-layer image
};

/// A tarball read for loading.
struct ImageArchive {
  ArchiveKind kind = ArchiveKind::kRootfs;
  std::string id;  ///< "sha256:<64 hex>": the image id the engine gives it
};

/// The default configuration of an image made from a root filesystem: PATH as Docker sets it.
inline constexpr char kRootfsPath[] =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Inspects a tarball; for archives holding several images, `ref` picks the one tagged with it
/// (else the only one). Errors say what is wrong with the tarball.
Result<ImageArchive> InspectArchive(std::string_view bytes, const std::string& ref);

/// The image configuration (JSON, canonical) of a root filesystem tarball: one layer,
/// `kRootfsPath`, the architecture of this build. Its SHA-256 is the image id.
std::string RootfsConfig(std::string_view rootfs_tar);

/// A docker-archive holding the root filesystem as the one layer of image `ref` (what
/// /images/load takes). Deterministic.
std::string RootfsArchive(std::string_view rootfs_tar, const std::string& ref);

/// The architecture of this build in OCI terms ("amd64", "arm64", ...).
std::string_view BuildArchitecture();

}  // namespace driftless::providers::container
