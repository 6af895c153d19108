#pragma once

#include <string>

#include "engine/workspace.h"

namespace driftless::cli {

using engine::Workspace;

/// Options of `driftless watch`.
struct WatchFlags {
  std::string env;           ///< set by Workspace::Select
  double interval = 300;     ///< seconds between full scans (the safety net), `--interval`
  int debounce_ms = 100;     ///< a burst of events within this is one check, `--debounce`
  double run_for = 0;        ///< stop after this many seconds (0: until interrupted), `--for`
  int flap_limit = 3;        ///< reverts within flap_window that make a resource flapping
  double flap_window = 600;  ///< seconds
};

/// Watches the environment for drift until interrupted (or `run_for`): events on standard
/// output, one JSON object per line; enforcement per policy. Returns the exit code.
int RunWatch(Workspace& ws, const WatchFlags& flags);

}  // namespace driftless::cli
