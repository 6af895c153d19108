#include "providers/builtin.h"

#include "providers/file/file_provider.h"

namespace driftless::providers {

void RegisterBuiltinProviders(provider::Registry& registry) {
  registry.Register(file::NewFileProvider());
}

}  // namespace driftless::providers
