// keel: the thin entry point. Everything lives in trainer_core; see trainer/cli/app.cpp.
#include "trainer/cli/app.h"

int main(int argc, char** argv) { return keel::cli::run_cli(argc, argv); }
