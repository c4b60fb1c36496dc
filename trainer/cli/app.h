// `keel <command>`: every subcommand is registered in app.cpp (one place); each command's work is
// a run_*() function in its own cmd_*.cpp.
#pragma once

namespace keel::cli {

/// Parses argv, runs the command, returns the process exit code. Never throws: keel::Error is
/// printed as "keel: error: ..." and gives exit code 1, bad usage exit code 2.
int run_cli(int argc, char** argv);

}  // namespace keel::cli
