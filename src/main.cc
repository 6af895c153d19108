#include <cstdio>
#include <cstdlib>

#include "cli/cli.h"

int main(int argc, char** argv) {
  int code = driftless::cli::Main(argc, argv);
#ifndef DRIFTLESS_SANITIZE
  // Everything is written and committed by now: skip freeing a large heap piece by piece.
  std::fflush(nullptr);
  std::_Exit(code);
#else
  return code;  // let LeakSanitizer see the heap
#endif
}
