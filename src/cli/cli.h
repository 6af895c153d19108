#pragma once

namespace driftless::cli {

/// Runs the driftless command line. Returns the process exit code:
/// 0 success or no changes, 1 error, 2 changes or drift present (see --detailed-exitcode).
int Main(int argc, char** argv);

}  // namespace driftless::cli
