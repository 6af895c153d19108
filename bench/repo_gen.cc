#include "repo_gen.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <system_error>

namespace driftless::bench {

namespace fs = std::filesystem;

namespace {

std::string Format(const char* pattern, size_t a) {
  char buf[64];
  std::snprintf(buf, sizeof buf, pattern, a);
  return buf;
}

std::string Index(size_t i) { return Format("%06zu", i); }

// Writes `bytes` to `path`, replacing it. "" on success.
std::string WriteFile(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return "cannot create " + path.string() + ": " + std::strerror(errno);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) return "cannot write " + path.string();
  return "";
}

std::string ProjectFile(const RepoOptions& options) {
  std::string out;
  out += "# Made by driftless-gen-repo: " + std::to_string(options.resources) +
         " file.file resources, " + std::to_string(options.docs_per_file) +
         " documents per file under res/";
  if (options.chain > 1) {
    out += ", linked by depends_on in chains of " + std::to_string(options.chain);
  }
  out += ".\n# The target root comes from the command line: --var root=FOLDER.\n";
  out += "project: bench\n";
  out += "include: [\"res/*.yaml\"]\n";
  out += "targets:\n";
  out += "  host: {provider: file, root: \"${var.root}\"}\n";
  return out;
}

void AppendDocument(size_t i, const RepoOptions& options, std::string& out) {
  out += "kind: file.file\n";
  out += "name: " + ResourceName(i) + "\n";
  out += "target: host\n";
  if (options.chain > 1 && i % options.chain != 0) {
    out += "depends_on: [file.file/" + ResourceName(i - 1) + "]\n";
  }
  out += "spec:\n";
  out += "  path: " + ResourcePath(i) + "\n";
  out += ContentLine(i) + "\n";
  out += "  mode: \"0644\"\n";
}

// The YAML double-quoted form of `text`, which holds printable ASCII and newlines only.
std::string Quoted(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '\n')
      out += "\\n";
    else if (c == '"' || c == '\\')
      out += std::string("\\") + c;
    else
      out += c;
  }
  return out + "\"";
}

}  // namespace

std::string ResourceName(size_t i) { return "f" + Index(i); }

std::string ResourcePath(size_t i) {
  return Format("d%03zu/", i / 1000) + ResourceName(i) + ".txt";
}

std::string ResourceContent(size_t i) {
  return "driftless benchmark file " + Index(i) + "\nmanaged by driftless; do not edit (" +
         Index(i) + ")\n";
}

std::string ResourceFile(size_t i, const RepoOptions& options) {
  size_t per_file = options.docs_per_file == 0 ? 1 : options.docs_per_file;
  return Format("res/r%04zu.yaml", i / per_file);
}

std::string ContentLine(size_t i) { return "  content: " + Quoted(ResourceContent(i)); }

std::string ChangedContentLine(size_t i) {
  return "  content: " + Quoted(ResourceContent(i) + "changed by the benchmark\n");
}

std::string WriteRepo(const std::string& dir, const RepoOptions& options) {
  if (options.resources == 0 || options.resources > kMaxResources) {
    return "the number of resources must be from 1 to " + std::to_string(kMaxResources);
  }
  if (options.docs_per_file == 0) return "--files-per-doc must be at least 1";
  std::error_code ec;
  fs::path root(dir);
  fs::create_directories(root, ec);
  if (ec) return "cannot create " + dir + ": " + ec.message();
  if (!fs::is_empty(root, ec) || ec) {
    return dir + " is not an empty folder; the generator writes only into an empty one";
  }
  fs::create_directories(root / "res", ec);
  if (ec) return "cannot create " + (root / "res").string() + ": " + ec.message();
  if (std::string err = WriteFile(root / "driftless.yaml", ProjectFile(options)); !err.empty()) {
    return err;
  }
  std::string doc;
  for (size_t first = 0; first < options.resources; first += options.docs_per_file) {
    size_t last = std::min(options.resources, first + options.docs_per_file);
    doc.clear();
    for (size_t i = first; i < last; ++i) {
      if (i != first) doc += "---\n";
      AppendDocument(i, options, doc);
    }
    if (std::string err = WriteFile(root / ResourceFile(first, options), doc); !err.empty()) {
      return err;
    }
  }
  return "";
}

}  // namespace driftless::bench
