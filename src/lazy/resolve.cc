#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>
#include <mutex>

#include "lazy/lazy.h"

namespace driftless::lazy {

void* Resolve(const char* soname, const char* package, const char* name) {
  // dlopen counts references: opening an opened library again only returns its handle.
  void* handle = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    std::fprintf(stderr, "driftless: cannot load %s, which this command needs (package %s): %s\n",
                 soname, package, dlerror());
    std::_Exit(70);
  }
  void* fn = dlsym(handle, name);
  if (fn == nullptr) {
    std::fprintf(stderr, "driftless: %s has no function %s (package %s too old?)\n", soname, name,
                 package);
    std::_Exit(70);
  }
  return fn;
}

}  // namespace driftless::lazy
