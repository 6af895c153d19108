// driftless-gen-repo DIR N [--chains K] [--files-per-doc D]
//
// Writes a synthetic repository of N file.file resources into DIR (see repo_gen.h). Plan or
// apply it with `--var root=FOLDER`.

#include <cstdio>
#include <cstdlib>
#include <string>

#include "repo_gen.h"

namespace {

void Usage() {
  std::fprintf(stderr,
               "usage: driftless-gen-repo DIR N [--chains K] [--files-per-doc D]\n"
               "  DIR              an empty or missing folder\n"
               "  N                number of file.file resources (1 to 1000000)\n"
               "  --chains K       each resource depends_on the previous one, in chains of K\n"
               "                   (default 10; 0 or 1: no depends_on)\n"
               "  --files-per-doc D  YAML documents per file under res/ (default 1000)\n");
}

bool ParseCount(const char* text, size_t& out) {
  if (text == nullptr || *text == '\0') return false;
  char* end = nullptr;
  unsigned long long v = std::strtoull(text, &end, 10);
  if (*end != '\0' || text[0] == '-') return false;
  out = static_cast<size_t>(v);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir;
  bool have_n = false;
  driftless::bench::RepoOptions options;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      Usage();
      return 0;
    }
    if (arg == "--chains" || arg == "--files-per-doc") {
      size_t& field = arg == "--chains" ? options.chain : options.docs_per_file;
      if (i + 1 >= argc || !ParseCount(argv[i + 1], field)) {
        std::fprintf(stderr, "error: %s needs a whole number\n", arg.c_str());
        return 1;
      }
      ++i;
      continue;
    }
    if (!arg.empty() && arg[0] == '-') {
      std::fprintf(stderr, "error: unknown option %s\n", arg.c_str());
      Usage();
      return 1;
    }
    if (dir.empty()) {
      dir = arg;
    } else if (!have_n) {
      if (!ParseCount(argv[i], options.resources)) {
        std::fprintf(stderr, "error: N must be a whole number, not %s\n", argv[i]);
        return 1;
      }
      have_n = true;
    } else {
      std::fprintf(stderr, "error: unexpected argument %s\n", arg.c_str());
      return 1;
    }
  }
  if (dir.empty() || !have_n) {
    Usage();
    return 1;
  }
  if (std::string err = driftless::bench::WriteRepo(dir, options); !err.empty()) {
    std::fprintf(stderr, "error: %s\n", err.c_str());
    return 1;
  }
  std::printf("Wrote %zu resources to %s.\n", options.resources, dir.c_str());
  return 0;
}
