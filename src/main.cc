#include "cli/cli.h"

int main(int argc, char** argv) { return driftless::cli::Main(argc, argv); }
