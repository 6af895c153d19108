// Reading declarations from a Git commit against reading the same files from a folder.
//
//   driftless-source-bench [--sizes 1000,10000] [--runs 5] [--out FILE.md]
//
// For each N it writes the synthetic repository twice, as N YAML files of one document and as
// N/1000 files of 1,000 documents, commits it with git, and times in this process (median of
// --runs, min-max): listing and reading every file (the raw cost), and LoadDeclarations (read +
// parse + check), from the folder (DirectorySource) and from the commit (GitRepository
// Snapshot: the tree walk and blob reads, without a checkout). Opening the repository is timed
// too, since every command pays it once. Ratio = commit / folder.

#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "config/loader.h"
#include "providers/builtin.h"
#include "repo_gen.h"
#include "source/git.h"
#include "source/source.h"

namespace driftless::bench {
namespace {

namespace fs = std::filesystem;

struct Figure {
  double median = 0, min = 0, max = 0;
};

Figure Time(int runs, const std::function<void()>& fn) {
  std::vector<double> t;
  for (int i = 0; i < runs; ++i) {
    auto start = std::chrono::steady_clock::now();
    fn();
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(t.begin(), t.end());
  return {t[t.size() / 2], t.front(), t.back()};
}

std::string Ms(const Figure& f) {
  char buf[96];
  std::snprintf(buf, sizeof buf, "%.1f ms (%.1f–%.1f)", f.median * 1e3, f.min * 1e3, f.max * 1e3);
  return buf;
}

void Die(const std::string& what) {
  std::fprintf(stderr, "driftless-source-bench: %s\n", what.c_str());
  std::exit(1);
}

size_t ReadAll(const source::Source& src) {
  Result<std::vector<std::string>> files = src.ListFiles();
  if (!files.ok()) Die(files.error().message);
  size_t bytes = 0;
  for (const auto& f : *files) {
    Result<std::string> b = src.ReadFile(f);
    if (!b.ok()) Die(b.error().message);
    bytes += b->size();
  }
  return bytes;
}

size_t Load(const source::Source& src, const provider::Registry& registry) {
  Diagnostics diags;
  config::Declarations d = config::LoadDeclarations(src, registry, diags);
  if (diags.HasErrors()) Die(diags.ToString());
  return d.resources.size();
}

int Main(int argc, char** argv) {
  std::vector<size_t> sizes = {1000, 10000};
  int runs = 5;
  std::string out;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--sizes" && i + 1 < argc) {
      sizes.clear();
      std::string list = argv[++i];
      size_t start = 0;
      while (start < list.size()) {
        size_t comma = list.find(',', start);
        sizes.push_back(std::stoul(list.substr(start, comma - start)));
        if (comma == std::string::npos) break;
        start = comma + 1;
      }
    } else if (a == "--runs" && i + 1 < argc) {
      runs = std::max(1, std::atoi(argv[++i]));
    } else if (a == "--out" && i + 1 < argc) {
      out = argv[++i];
    } else {
      std::fprintf(stderr,
                   "usage: driftless-source-bench [--sizes 1000,10000] [--runs 5] "
                   "[--out FILE.md]\n");
      return a == "--help" ? 0 : 2;
    }
  }
  provider::Registry registry;
  providers::RegisterBuiltinProviders(registry);
  fs::path work =
      fs::temp_directory_path() / ("driftless-source-bench." + std::to_string(getpid()));
  std::string table =
      "| N | files | operation | folder | commit | commit / folder |\n"
      "| ---: | ---: | --- | ---: | ---: | ---: |\n";
  for (size_t n : sizes) {
    for (size_t per_file : {size_t{1}, size_t{1000}}) {
      fs::path dir = work / (std::to_string(n) + "-" + std::to_string(per_file));
      RepoOptions options;
      options.resources = n;
      options.docs_per_file = per_file;
      if (std::string err = WriteRepo(dir.string(), options); !err.empty()) Die(err);
      std::string git = "cd '" + dir.string() +
                        "' && git -c init.defaultBranch=main init -q && git add -A && "
                        "git -c user.name=b -c user.email=b@b commit -q -m bench";
      if (std::system(git.c_str()) != 0) Die("git failed in " + dir.string());
      source::DirectorySource folder(dir.string());
      source::GitRepository::Options go;
      go.fetch = false;
      auto repo = source::GitRepository::Open(dir.string(), go);
      if (!repo.ok()) Die(repo.error().message);
      auto head = (*repo)->Resolve("main");
      if (!head.ok()) Die(head.error().message);
      auto snap = [&] {
        auto s = (*repo)->Snapshot(head->id);
        if (!s.ok()) Die(s.error().message);
        return std::move(*s);
      };
      const size_t files = folder.ListFiles()->size();
      if (ReadAll(folder) != ReadAll(*snap()) || Load(folder, registry) != n ||
          Load(*snap(), registry) != n) {
        Die("the commit and the folder differ");
      }
      Figure open = Time(runs, [&] {
        auto r = source::GitRepository::Open(dir.string(), go);
        if (!r.ok()) Die(r.error().message);
        auto s = (*r)->Snapshot(head->id);
        if (!s.ok()) Die(s.error().message);
      });
      Figure read_folder = Time(runs, [&] { ReadAll(folder); });
      Figure read_commit = Time(runs, [&] { ReadAll(*snap()); });
      Figure load_folder = Time(runs, [&] { Load(folder, registry); });
      Figure load_commit = Time(runs, [&] { Load(*snap(), registry); });
      auto row = [&](const std::string& op, const Figure& a, const Figure& b) {
        char ratio[32];
        std::snprintf(ratio, sizeof ratio, "%.2f×", b.median / a.median);
        table += "| " + std::to_string(n) + " | " + std::to_string(files) + " | " + op + " | " +
                 Ms(a) + " | " + Ms(b) + " | " + ratio + " |\n";
      };
      row("list + read every file (commit: snapshot made each run)", read_folder, read_commit);
      row("load declarations (read, parse, check)", load_folder, load_commit);
      table += "| " + std::to_string(n) + " | " + std::to_string(files) +
               " | open the repository + snapshot of the commit | | " + Ms(open) + " | |\n";
    }
  }
  fs::remove_all(work);
  std::printf("%s", table.c_str());
  if (!out.empty()) {
    std::FILE* f = std::fopen(out.c_str(), "w");
    if (f == nullptr) Die("cannot write " + out);
    std::fputs(table.c_str(), f);
    std::fclose(f);
  }
  return 0;
}

}  // namespace
}  // namespace driftless::bench

int main(int argc, char** argv) { return driftless::bench::Main(argc, argv); }
