#include "providers/container/image_archive.h"

#include <algorithm>
#include <cstring>

#include "base/hash.h"
#include "base/strings.h"
#include "value/value.h"

namespace driftless::providers::container {

using value::Value;

namespace {

constexpr size_t kBlock = 512;

std::string_view Field(std::string_view header, size_t offset, size_t size) {
  std::string_view f = header.substr(offset, size);
  size_t nul = f.find('\0');
  return nul == std::string_view::npos ? f : f.substr(0, nul);
}

// A numeric header field: octal text, or base-256 when its first byte has the high bit set.
bool Number(std::string_view header, size_t offset, size_t size, uint64_t* out) {
  std::string_view f = header.substr(offset, size);
  uint64_t n = 0;
  if (!f.empty() && (static_cast<unsigned char>(f[0]) & 0x80)) {
    for (size_t i = 1; i < f.size(); ++i) {
      if (n >> 55) return false;
      n = (n << 8) | static_cast<unsigned char>(f[i]);
    }
    *out = n;
    return true;
  }
  bool digits = false;
  for (char c : f) {
    if (c == ' ' && !digits) continue;
    if (c == '\0' || c == ' ') break;
    if (c < '0' || c > '7') return false;
    if (n >> 60) return false;
    n = n * 8 + static_cast<uint64_t>(c - '0');
    digits = true;
  }
  *out = n;
  return true;
}

bool ChecksumOk(std::string_view header) {
  uint64_t stored = 0;
  if (!Number(header, 148, 8, &stored)) return false;
  uint64_t sum = 0;
  for (size_t i = 0; i < kBlock; ++i) {
    sum += (i >= 148 && i < 156) ? static_cast<unsigned char>(' ')
                                 : static_cast<unsigned char>(header[i]);
  }
  return sum == stored;
}

bool AllZero(std::string_view block) {
  return std::all_of(block.begin(), block.end(), [](char c) { return c == '\0'; });
}

std::string CleanName(std::string_view name) {
  while (StartsWith(name, "./")) name.remove_prefix(2);
  while (!name.empty() && name[0] == '/') name.remove_prefix(1);
  return std::string(name);
}

// The `path` record of a pax extended header ("LEN path=VALUE\n" records), or "".
std::string PaxPath(std::string_view data) {
  while (!data.empty()) {
    size_t space = data.find(' ');
    if (space == std::string_view::npos) break;
    size_t len = 0;
    for (size_t i = 0; i < space; ++i) {
      if (data[i] < '0' || data[i] > '9') return "";
      len = len * 10 + static_cast<size_t>(data[i] - '0');
      if (len > data.size()) return "";
    }
    if (len <= space + 1 || len > data.size()) return "";
    std::string_view record = data.substr(space + 1, len - space - 2);  // without the newline
    if (StartsWith(record, "path=")) return std::string(record.substr(5));
    data.remove_prefix(len);
  }
  return "";
}

std::string_view Compression(std::string_view b) {
  auto starts = [&](std::string_view magic) { return StartsWith(b, magic); };
  if (starts("\x1f\x8b")) return "gzip";
  if (starts(std::string_view("\xfd\x37\x7a\x58\x5a\x00", 6))) return "xz";
  if (starts("\x28\xb5\x2f\xfd")) return "zstd";
  if (starts("BZh")) return "bzip2";
  return "";
}

void Octal(char* field, size_t size, uint64_t n) {
  // size - 1 digits and a NUL.
  std::memset(field, '0', size - 1);
  field[size - 1] = '\0';
  for (size_t i = size - 1; i > 0 && n > 0; --i) {
    field[i - 1] = static_cast<char>('0' + (n & 7));
    n >>= 3;
  }
}

const TarEntry* FindEntry(const std::vector<TarEntry>& entries, std::string_view name) {
  for (const auto& e : entries)
    if (e.name == name) return &e;
  return nullptr;
}

std::string Member(const Value& v, std::string_view key) {
  const Value* m = v.Find(key);
  return m != nullptr && m->is_string() ? m->as_string() : "";
}

bool IsDigest(std::string_view d) {
  if (!StartsWith(d, "sha256:") || d.size() != 71) return false;
  return std::all_of(d.begin() + 7, d.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

Result<ImageArchive> DockerArchive(const std::vector<TarEntry>& entries, std::string_view manifest,
                                   const std::string& ref) {
  Result<Value> m = value::ParseJson(manifest);
  if (!m.ok() || !m->is_list() || m->as_list().empty()) {
    return MakeError("manifest.json of the image archive is not a list of images");
  }
  const Value* chosen = nullptr;
  for (const Value& image : m->as_list()) {
    const Value* tags = image.Find("RepoTags");
    if (tags == nullptr || !tags->is_list()) continue;
    for (const Value& t : tags->as_list()) {
      if (t.is_string() && t.as_string() == ref) chosen = &image;
    }
  }
  if (chosen == nullptr) {
    if (m->as_list().size() > 1) {
      return MakeError("the image archive holds " + std::to_string(m->as_list().size()) +
                       " images and none is tagged " + Quote(ref));
    }
    chosen = &m->as_list()[0];
  }
  if (!chosen->is_object()) return MakeError("manifest.json of the image archive is malformed");
  const std::string config = Member(*chosen, "Config");
  const TarEntry* c = FindEntry(entries, CleanName(config));
  if (config.empty() || c == nullptr) {
    return MakeError("manifest.json names the configuration " + Quote(config) +
                     ", which is not in the archive");
  }
  if (const Value* layers = chosen->Find("Layers"); layers != nullptr && layers->is_list()) {
    for (const Value& l : layers->as_list()) {
      if (!l.is_string() || FindEntry(entries, CleanName(l.as_string())) == nullptr) {
        return MakeError("manifest.json names the layer " +
                         Quote(l.is_string() ? l.as_string() : "?") +
                         ", which is not in the archive");
      }
    }
  }
  return ImageArchive{ArchiveKind::kDockerArchive, "sha256:" + Sha256Hex(c->data)};
}

Result<ImageArchive> OciArchive(const std::vector<TarEntry>& entries, std::string_view index,
                                const std::string& ref) {
  auto blob = [&](const std::string& digest) -> const TarEntry* {
    if (!IsDigest(digest)) return nullptr;
    return FindEntry(entries, "blobs/sha256/" + digest.substr(7));
  };
  Result<Value> idx = value::ParseJson(index);
  const Value* manifests = idx.ok() ? idx->Find("manifests") : nullptr;
  if (manifests == nullptr || !manifests->is_list() || manifests->as_list().empty()) {
    return MakeError("index.json of the OCI archive lists no image");
  }
  const std::string tag = ref.substr(ref.rfind(':') + 1);
  const Value* chosen = nullptr;
  for (const Value& d : manifests->as_list()) {
    const Value* a = d.Find("annotations");
    if (a == nullptr) continue;
    const std::string name = Member(*a, "org.opencontainers.image.ref.name");
    if (name == ref || name == tag) chosen = &d;
  }
  if (chosen == nullptr) {
    if (manifests->as_list().size() > 1) {
      return MakeError("the OCI archive holds " + std::to_string(manifests->as_list().size()) +
                       " images and none is named " + Quote(ref));
    }
    chosen = &manifests->as_list()[0];
  }
  const TarEntry* mb = blob(Member(*chosen, "digest"));
  if (mb == nullptr) return MakeError("index.json names a manifest that is not in the archive");
  Result<Value> manifest = value::ParseJson(mb->data);
  const Value* config = manifest.ok() ? manifest->Find("config") : nullptr;
  const std::string digest = config != nullptr ? Member(*config, "digest") : "";
  const TarEntry* cb = blob(digest);
  if (cb == nullptr) {
    return MakeError("the image manifest names a configuration that is not in the archive");
  }
  if ("sha256:" + Sha256Hex(cb->data) != digest) {
    return MakeError("the configuration blob of the OCI archive does not match its digest");
  }
  return ImageArchive{ArchiveKind::kOciArchive, digest};
}

}  // namespace

Result<std::vector<TarEntry>> ReadTar(std::string_view bytes) {
  if (std::string_view c = Compression(bytes); !c.empty()) {
    return MakeError("the tarball is " + std::string(c) +
                     "-compressed; store it uncompressed (for example `gunzip` it)");
  }
  std::vector<TarEntry> out;
  std::string long_name;
  size_t at = 0;
  bool ended = false;
  while (at + kBlock <= bytes.size()) {
    std::string_view header = bytes.substr(at, kBlock);
    if (AllZero(header)) {
      ended = true;
      break;
    }
    if (!ChecksumOk(header)) {
      return MakeError(at == 0 ? "not a tar archive"
                               : "the tar archive is corrupt at byte " + std::to_string(at));
    }
    uint64_t size = 0;
    if (!Number(header, 124, 12, &size) || size > bytes.size()) {
      return MakeError("the tar archive has a bad size at byte " + std::to_string(at));
    }
    const size_t data_at = at + kBlock;
    if (data_at + size > bytes.size()) {
      return MakeError("the tar archive is truncated (an entry at byte " + std::to_string(at) +
                       " runs past its end)");
    }
    std::string_view data = bytes.substr(data_at, size);
    const char type = header[156];
    std::string name;
    if (!long_name.empty()) {
      name = std::move(long_name);
      long_name.clear();
    } else {
      std::string_view prefix = Field(header, 345, 155);
      std::string_view magic = header.substr(257, 6);
      name = std::string(Field(header, 0, 100));
      if (magic == std::string_view("ustar\0", 6) && !prefix.empty()) {
        name = std::string(prefix) + "/" + name;
      }
    }
    if (type == 'L') {
      long_name = std::string(Field(data, 0, data.size()));
    } else if (type == 'x') {
      long_name = PaxPath(data);
    } else if (type == '0' || type == '\0' || type == '7') {
      out.push_back({CleanName(name), data});
    }
    at = data_at + (size + kBlock - 1) / kBlock * kBlock;
  }
  if (!ended && at != bytes.size()) {
    return MakeError(bytes.size() < kBlock ? "not a tar archive (too short)"
                                           : "the tar archive is truncated");
  }
  if (out.empty() && at == 0) return MakeError("not a tar archive (empty)");
  return out;
}

void AppendTarFile(std::string& out, const std::string& name, std::string_view data) {
  char h[kBlock];
  std::memset(h, 0, sizeof(h));
  std::memcpy(h, name.data(), std::min<size_t>(name.size(), 100));
  Octal(h + 100, 8, 0644);
  Octal(h + 108, 8, 0);
  Octal(h + 116, 8, 0);
  Octal(h + 124, 12, data.size());
  Octal(h + 136, 12, 0);
  h[156] = '0';
  std::memcpy(h + 257, "ustar", 6);
  std::memcpy(h + 263, "00", 2);
  std::memset(h + 148, ' ', 8);
  unsigned sum = 0;
  for (char c : h) sum += static_cast<unsigned char>(c);
  Octal(h + 148, 7, sum);
  h[155] = ' ';
  out.append(h, sizeof(h));
  out.append(data);
  out.append((kBlock - data.size() % kBlock) % kBlock, '\0');
}

void FinishTar(std::string& out) { out.append(2 * kBlock, '\0'); }

std::string_view BuildArchitecture() {
#if defined(__x86_64__)
  return "amd64";
#elif defined(__aarch64__)
  return "arm64";
#elif defined(__arm__)
  return "arm";
#elif defined(__powerpc64__)
  return "ppc64le";
#elif defined(__s390x__)
  return "s390x";
#elif defined(__riscv)
  return "riscv64";
#else
  return "amd64";
#endif
}

std::string RootfsConfig(std::string_view rootfs_tar) {
  Value config = Value::MakeObject();
  config.Set("architecture", Value::String(std::string(BuildArchitecture())));
  config.Set("os", Value::String("linux"));
  Value env = Value::MakeList({Value::String(std::string("PATH=") + kRootfsPath)});
  config.Set("config", Value::MakeObject({{"Env", std::move(env)}}));
  Value diff_ids = Value::MakeList({Value::String("sha256:" + Sha256Hex(rootfs_tar))});
  config.Set("rootfs", Value::MakeObject(
                           {{"diff_ids", std::move(diff_ids)}, {"type", Value::String("layers")}}));
  return value::ToJson(config);
}

std::string RootfsArchive(std::string_view rootfs_tar, const std::string& ref) {
  const std::string config = RootfsConfig(rootfs_tar);
  const std::string config_name = Sha256Hex(config) + ".json";
  const std::string layer_name = Sha256Hex(rootfs_tar) + ".tar";
  Value entry = Value::MakeObject();
  entry.Set("Config", Value::String(config_name));
  entry.Set("Layers", Value::MakeList({Value::String(layer_name)}));
  entry.Set("RepoTags", Value::MakeList({Value::String(ref)}));
  const std::string manifest = value::ToJson(Value::MakeList({std::move(entry)}));
  std::string out;
  out.reserve(rootfs_tar.size() + 8 * kBlock + config.size() + manifest.size());
  AppendTarFile(out, "manifest.json", manifest);
  AppendTarFile(out, config_name, config);
  AppendTarFile(out, layer_name, rootfs_tar);
  FinishTar(out);
  return out;
}

Result<ImageArchive> InspectArchive(std::string_view bytes, const std::string& ref) {
  Result<std::vector<TarEntry>> entries = ReadTar(bytes);
  if (!entries.ok()) return entries.error();
  if (const TarEntry* m = FindEntry(*entries, "manifest.json")) {
    return DockerArchive(*entries, m->data, ref);
  }
  if (FindEntry(*entries, "oci-layout") != nullptr) {
    const TarEntry* index = FindEntry(*entries, "index.json");
    if (index == nullptr) return MakeError("the OCI archive has no index.json");
    return OciArchive(*entries, index->data, ref);
  }
  return ImageArchive{ArchiveKind::kRootfs, "sha256:" + Sha256Hex(RootfsConfig(bytes))};
}

}  // namespace driftless::providers::container
