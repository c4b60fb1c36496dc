// keel: the thin entry point. Everything lives in trainer_core; see trainer/cli/app.cpp.
#include "trainer/cli/app.h"
#include "trainer/common/startup_env.h"

int main(int argc, char** argv) {
  keel::startup::use_fast_library_settings(argv);  // may re-run this program once; see startup_env.h
  return keel::cli::run_cli(argc, argv);
}
