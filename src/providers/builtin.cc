#include "providers/builtin.h"

#include "providers/file/file_provider.h"
#include "providers/postgres/postgres_provider.h"

namespace driftless::providers {

void RegisterBuiltinProviders(provider::Registry& registry) {
  registry.Register(file::NewFileProvider());
  registry.Register(postgres::NewPostgresProvider());
}

}  // namespace driftless::providers
