// keel: the thin entry point. Everything lives in trainer_core; see trainer/cli/app.cpp.
#include "models/fused_cpu_kernels.h"
#include "trainer/cli/app.h"
#include "base/startup_env.h"

int main(int argc, char** argv) {
  keel::startup::use_fast_library_settings(argv);  // may re-run this program once; see startup_env.h
  keel::models::kernels::active_isa();              // a KEEL_ISA this CPU cannot run stops here, not mid-run
  return keel::cli::run_cli(argc, argv);
}
