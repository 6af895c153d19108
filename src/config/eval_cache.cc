#include "config/eval_cache.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "base/file_util.h"
#include "base/hash.h"
#include "config/evaluate.h"

namespace driftless::config {

namespace {

// Raised whenever what an entry holds, or how it is used, changes.
constexpr std::string_view kMagic = "DRIFTLESS-EVAL-CACHE 1\n";

void PutU32(std::string& out, uint32_t v) {
  char b[4];
  std::memcpy(b, &v, 4);
  out.append(b, 4);
}
void PutU64(std::string& out, uint64_t v) {
  char b[8];
  std::memcpy(b, &v, 8);
  out.append(b, 8);
}
void PutStr(std::string& out, std::string_view s) {
  PutU32(out, static_cast<uint32_t>(s.size()));
  out.append(s);
}

// Reads what the Put functions wrote; any overrun makes it !ok for good.
struct Reader {
  std::string_view data;
  bool ok = true;
  bool Take(size_t n, const char** at) {
    if (!ok || data.size() < n) {
      ok = false;
      return false;
    }
    *at = data.data();
    data.remove_prefix(n);
    return true;
  }
  uint32_t U32() {
    const char* at = nullptr;
    uint32_t v = 0;
    if (Take(4, &at)) std::memcpy(&v, at, 4);
    return v;
  }
  uint64_t U64() {
    const char* at = nullptr;
    uint64_t v = 0;
    if (Take(8, &at)) std::memcpy(&v, at, 8);
    return v;
  }
  std::string_view View() {
    uint32_t n = U32();
    const char* at = nullptr;
    if (!Take(n, &at)) return {};
    return {at, n};
  }
  std::string Str() { return std::string(View()); }
};

// Reads exactly `size` bytes at `offset`.
bool ReadAt(int fd, uint64_t offset, uint64_t size, std::string* out) {
  out->resize(size);
  size_t done = 0;
  while (done < size) {
    ssize_t n = pread(fd, out->data() + done, size - done, static_cast<off_t>(offset + done));
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

// The policy as the loader made it (project defaults under the document's own keys) from the
// one evaluation merged with the environment's defaults: the keys the document set are kept.
Policy LoaderPolicy(const Policy& merged, const Policy& project_defaults) {
  return MergePolicy(project_defaults, merged);
}

void PutPolicy(std::string& out, const Policy& p) {
  out.push_back(static_cast<char>(p.drift));
  out.push_back(static_cast<char>((p.create_only ? 1 : 0) | (p.prevent_destroy ? 2 : 0) |
                                  (p.adopt ? 4 : 0) | (p.paused ? 8 : 0)));
  out.push_back(static_cast<char>(p.upgrade));
  PutU32(out, p.set);
  PutU32(out, static_cast<uint32_t>(p.ignore.size()));
  for (const auto& i : p.ignore) PutStr(out, i);
  PutStr(out, p.step_field);
  PutStr(out, p.step_by);
}

bool ReadPolicy(Reader& in, Policy& p) {
  const char* at = nullptr;
  if (!in.Take(3, &at)) return false;
  if (at[0] < 0 || at[0] > 2 || at[2] < 0 || at[2] > 1) return false;
  p.drift = static_cast<Policy::Drift>(at[0]);
  p.create_only = (at[1] & 1) != 0;
  p.prevent_destroy = (at[1] & 2) != 0;
  p.adopt = (at[1] & 4) != 0;
  p.paused = (at[1] & 8) != 0;
  p.upgrade = static_cast<Policy::Upgrade>(at[2]);
  p.set = static_cast<uint16_t>(in.U32());
  uint32_t n = in.U32();
  if (!in.ok || n > in.data.size()) return false;
  for (uint32_t i = 0; i < n; ++i) p.ignore.push_back(in.Str());
  p.step_field = in.Str();
  p.step_by = in.Str();
  return in.ok;
}

// A value in a compact binary form, exact (types, numbers and member order kept): a type byte,
// then its payload. Faster to read back than JSON by several times.
void PutValue(std::string& out, const value::Value& v) {
  using T = value::Value::Type;
  out.push_back(static_cast<char>(v.type()));
  switch (v.type()) {
    case T::kNull:
    case T::kUnknown:
      break;
    case T::kBool:
      out.push_back(v.as_bool() ? 1 : 0);
      break;
    case T::kInt:
      PutU64(out, static_cast<uint64_t>(v.as_int()));
      break;
    case T::kDouble: {
      uint64_t bits = 0;
      double d = v.as_double();
      std::memcpy(&bits, &d, 8);
      PutU64(out, bits);
      break;
    }
    case T::kString:
      PutStr(out, v.as_string());
      break;
    case T::kList:
      PutU32(out, static_cast<uint32_t>(v.as_list().size()));
      for (const auto& item : v.as_list()) PutValue(out, item);
      break;
    case T::kObject:
      PutU32(out, static_cast<uint32_t>(v.as_object().size()));
      for (const auto& [k, item] : v.as_object()) {
        PutStr(out, k);
        PutValue(out, item);
      }
      break;
  }
}

bool ReadValue(Reader& in, value::Value& v, int depth = 0) {
  using T = value::Value::Type;
  const char* at = nullptr;
  if (depth > 200 || !in.Take(1, &at)) return false;
  switch (static_cast<T>(*at)) {
    case T::kNull:
      v = value::Value();
      return true;
    case T::kUnknown:
      return false;  // never cached
    case T::kBool:
      if (!in.Take(1, &at)) return false;
      v = value::Value::Bool(*at != 0);
      return true;
    case T::kInt:
      v = value::Value::Int(static_cast<int64_t>(in.U64()));
      return in.ok;
    case T::kDouble: {
      uint64_t bits = in.U64();
      double d = 0;
      std::memcpy(&d, &bits, 8);
      v = value::Value::Double(d);
      return in.ok;
    }
    case T::kString:
      v = value::Value::String(in.Str());
      return in.ok;
    case T::kList: {
      uint32_t n = in.U32();
      if (!in.ok || n > in.data.size()) return false;
      value::Value::List items(n);
      for (auto& item : items)
        if (!ReadValue(in, item, depth + 1)) return false;
      v = value::Value::MakeList(std::move(items));
      return true;
    }
    case T::kObject: {
      uint32_t n = in.U32();
      if (!in.ok || n > in.data.size()) return false;
      v = value::Value::MakeObject();
      value::Value::Object& members = v.as_object();
      members.resize(n);
      for (size_t i = 0; i < n; ++i) {
        members[i].first = in.Str();
        if (!ReadValue(in, members[i].second, depth + 1)) return false;
        // Written from a Value, whose members are sorted (so not sorted again here); anything
        // else is damage.
        if (i > 0 && !(members[i - 1].first < members[i].first)) return false;
      }
      return true;
    }
  }
  return false;
}

}  // namespace

EvalCache::~EvalCache() {
  if (fd_ >= 0) close(fd_);
}

std::string EvalCache::EngineIdentity(std::string_view version) {
  std::string id = std::string(kMagic.substr(0, kMagic.size() - 1)) + " " + std::string(version);
  struct stat st {};
  if (stat("/proc/self/exe", &st) == 0) {
    id += " " + std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino) + ":" +
          std::to_string(st.st_size) + ":" + std::to_string(st.st_mtim.tv_sec) + "." +
          std::to_string(st.st_mtim.tv_nsec);
  } else {
    id += " unknown-executable";
  }
  return id;
}

std::unique_ptr<EvalCache> EvalCache::Open(const std::string& path, const std::string& engine) {
  std::unique_ptr<EvalCache> cache(new EvalCache());
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return cache;
  std::string head;
  if (!ReadAt(fd, 0, kMagic.size() + 4, &head) ||
      std::string_view(head).substr(0, kMagic.size()) != kMagic) {
    close(fd);
    return cache;
  }
  uint32_t header_size = 0;
  std::memcpy(&header_size, head.data() + kMagic.size(), 4);
  std::string header;
  if (header_size > (64u << 20) || !ReadAt(fd, kMagic.size() + 4, header_size, &header)) {
    close(fd);
    return cache;
  }
  Reader in{header};
  std::string_view body = in.View();
  std::string_view check = in.View();
  if (!in.ok || Sha256Hex(body) != check) {
    close(fd);
    return cache;
  }
  Reader h{body};
  if (h.Str() != engine) {
    close(fd);
    return cache;
  }
  cache->project_hash_ = h.Str();
  cache->context_ = h.Str();
  uint32_t n = h.U32();
  std::vector<Entry> entries;
  for (uint32_t i = 0; h.ok && i < n; ++i) {
    Entry e;
    e.path = h.Str();
    e.bytes_hash = h.Str();
    e.offset = h.U64();
    e.size = h.U64();
    e.section_hash = h.Str();
    entries.push_back(std::move(e));
  }
  if (!h.ok) {
    close(fd);
    return std::unique_ptr<EvalCache>(new EvalCache());
  }
  std::sort(entries.begin(), entries.end(),
            [](const Entry& a, const Entry& b) { return a.path < b.path; });
  cache->entries_ = std::move(entries);
  cache->fd_ = fd;
  return cache;
}

bool EvalCache::Lookup(const std::string& path, const std::string& bytes_hash,
                       std::string* section) const {
  auto it = std::lower_bound(entries_.begin(), entries_.end(), path,
                             [](const Entry& e, const std::string& p) { return e.path < p; });
  if (it == entries_.end() || it->path != path || it->bytes_hash != bytes_hash) return false;
  if (it->size > (1u << 30) || !ReadAt(fd_, it->offset, it->size, section)) return false;
  if (Sha256Hex(*section) != it->section_hash) return false;  // damaged: evaluated afresh
  return true;
}

bool EvalCache::Materialize(std::string_view section, const std::string& path,
                            std::vector<Resource>& out) {
  Reader in{section};
  uint32_t n = in.U32();
  if (!in.ok || n > section.size()) return false;
  // Made in place (a Resource is large: moving 10,000 of them again costs more than reading
  // them); taken back when the entry turns out damaged.
  const size_t first = out.size();
  out.reserve(first + n);
  auto damaged = [&] {
    out.resize(first);
    return false;
  };
  for (uint32_t i = 0; i < n; ++i) {
    Resource& r = out.emplace_back();
    r.kind = in.Str();
    r.name = in.Str();
    r.target = in.Str();
    r.moved_from = in.Str();
    r.pos.file = path;
    r.pos.line = in.U32();
    r.pos.column = in.U32();
    uint32_t deps = in.U32();
    if (!in.ok || deps > in.data.size()) return damaged();
    for (uint32_t d = 0; d < deps; ++d) {
      r.depends_on.push_back(in.Str());
      SourcePos pos{path, 0, 0};
      pos.line = in.U32();
      pos.column = in.U32();
      r.depends_on_pos.push_back(std::move(pos));
    }
    if (!ReadPolicy(in, r.policy)) return damaged();
    if (!ReadValue(in, r.spec) || !r.spec.is_object()) return damaged();
    r.cached_spec_hash = in.Str();
    if (!in.ok) return damaged();
    r.spec_evaluated = true;
    r.address.reserve(r.kind.size() + 1 + r.name.size());
    r.address.append(r.kind).append("/").append(r.name);
  }
  if (!in.data.empty()) return damaged();
  return true;
}

Result<EvalCache::WriteStats> EvalCache::Write(const std::string& path, const std::string& engine,
                                               const Declarations& decls, const Environment& env,
                                               const EvalCache* previous) {
  WriteStats stats;
  // The resources of each file, by the file's index in decls.files.
  std::vector<std::vector<size_t>> by_file(decls.files.size());
  std::vector<char> cacheable(decls.files.size(), 1);
  auto file_index = [&](const std::string& p) -> long {
    auto it =
        std::lower_bound(decls.files.begin(), decls.files.end(), p,
                         [](const DeclaredFile& f, const std::string& x) { return f.path < x; });
    if (it == decls.files.end() || it->path != p) return -1;
    return it - decls.files.begin();
  };
  for (size_t f = 0; f < decls.files.size(); ++f) cacheable[f] = decls.files[f].clean;
  for (size_t i = 0; i < env.resources().size(); ++i) {
    const EvaluatedResource& er = env.resources()[i];
    const Resource& r = *er.decl;
    long f = file_index(r.pos.file);
    if (f < 0) continue;
    by_file[static_cast<size_t>(f)].push_back(i);
    const value::Value& spec = env.CacheableSpec(i);
    if (!r.spec_released || r.depends_on_released || r.reads_source || er.spec_hash.empty() ||
        spec.ContainsUnknown() || spec.ContainsSensitive()) {
      cacheable[static_cast<size_t>(f)] = 0;
    }
  }
  size_t fresh = 0, reused = 0;
  for (size_t f = 0; f < decls.files.size(); ++f) {
    if (!cacheable[f] || by_file[f].empty()) continue;
    if (decls.files[f].from_cache) {
      ++reused;
    } else {
      ++fresh;
    }
  }
  const bool same_context = previous != nullptr && previous->context() == env.CacheContext() &&
                            previous->project_hash() == decls.project_hash;
  if (same_context && fresh == 0 && reused == previous->size()) return stats;  // as read

  // One string per file's section, written as they are: one string of them all grew by doubling
  // and was copied once more behind the header, the peak of a first plan after a large apply
  // (80 MB of 250 at 100,000 resources).
  std::vector<std::string> sections;
  size_t sections_size = 0;
  std::string index;
  uint32_t entries = 0;
  for (size_t f = 0; f < decls.files.size(); ++f) {
    if (!cacheable[f] || by_file[f].empty()) continue;
    std::string& section = sections.emplace_back();
    PutU32(section, static_cast<uint32_t>(by_file[f].size()));
    for (size_t i : by_file[f]) {
      const EvaluatedResource& er = env.resources()[i];
      const Resource& r = *er.decl;
      PutStr(section, r.kind);
      PutStr(section, r.name);
      PutStr(section, r.target);
      PutStr(section, r.moved_from);
      PutU32(section, r.pos.line);
      PutU32(section, r.pos.column);
      // Explicit dependencies only (EvalOptions::keep_depends_on); their exact positions were
      // freed by the loader, so a later message about one names the resource's own line.
      PutU32(section, static_cast<uint32_t>(r.depends_on.size()));
      for (const auto& d : r.depends_on) {
        PutStr(section, d);
        PutU32(section, r.pos.line);
        PutU32(section, r.pos.column);
      }
      PutPolicy(section, LoaderPolicy(r.policy, decls.project.defaults));
      PutValue(section, env.CacheableSpec(i));
      PutStr(section, env.CacheableSpecHash(i));
    }
    PutStr(index, decls.files[f].path);
    PutStr(index, decls.files[f].bytes_hash);
    PutU64(index, sections_size);  // relative to the sections; fixed below
    PutU64(index, section.size());
    PutStr(index, Sha256Hex(section));
    sections_size += section.size();
    ++entries;
  }
  // The header: engine, project hash, context, the entries (offsets made absolute), checked.
  std::string body;
  PutStr(body, engine);
  PutStr(body, decls.project_hash);
  PutStr(body, env.CacheContext());
  PutU32(body, entries);
  const size_t index_at = body.size();
  body += index;
  // Offsets are absolute: magic, header size, header (body and its check), then the sections.
  const uint64_t header_size = 4 + body.size() + 4 + 64;
  const uint64_t base = kMagic.size() + 4 + header_size;
  {
    Reader in{std::string_view(body).substr(index_at)};
    size_t pos = index_at;
    for (uint32_t e = 0; e < entries; ++e) {
      std::string_view p = in.View();
      std::string_view h = in.View();
      pos += 4 + p.size() + 4 + h.size();
      uint64_t rel = in.U64();
      rel += base;
      std::memcpy(body.data() + pos, &rel, 8);
      pos += 8;
      in.U64();
      pos += 8;
      std::string_view sh = in.View();
      pos += 4 + sh.size();
    }
  }
  std::string head(kMagic);
  PutU32(head, static_cast<uint32_t>(header_size));
  PutStr(head, body);
  PutStr(head, Sha256Hex(body));
  std::vector<std::string_view> pieces{head};
  pieces.insert(pieces.end(), sections.begin(), sections.end());
  size_t slash = path.rfind('/');
  if (slash != std::string::npos) {
    Status made = MakeDirs(path.substr(0, slash), 0700);
    if (!made.ok()) return made.error();
  }
  Status written = WriteFileAtomic(path, pieces, 0600);
  if (!written.ok()) return written.error();
  stats.files = entries;
  stats.written = true;
  return stats;
}

}  // namespace driftless::config
