#pragma once

#include "provider/provider.h"

namespace driftless::providers {

/// Registers every built-in provider. The one place where providers are listed.
void RegisterBuiltinProviders(provider::Registry& registry);

}  // namespace driftless::providers
