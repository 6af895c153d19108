#pragma once

#include <memory>

#include "base/diagnostics.h"
#include "cli/workspace.h"
#include "notify/dispatcher.h"

namespace driftless::cli {

/// The notification dispatcher for the declarations evaluated last (ws.environment(), which
/// must be set), or nullptr when `notify:` declares no sink. Problems of `notify:` go to diags
/// with driftless.yaml:line:col; the result is then an error.
Result<std::unique_ptr<notify::Dispatcher>> MakeDispatcher(Workspace& ws, Diagnostics& diags);

/// Checks the `notify:` list of `decls` (for `validate`); problems go to diags.
void CheckSinks(const config::Declarations& decls, Diagnostics& diags);

/// `driftless notify status [--json]`: per sink, delivered / pending / failing counts, the last
/// error and the next attempt, from the state's outbox.
int RunNotifyStatus(Workspace& ws);

}  // namespace driftless::cli
