// main() of every GoogleTest binary: GoogleTest's own, after the library settings that keel's
// executable starts with too (base/startup_env.h), so tests run the math keel runs.
#include <gtest/gtest.h>

#include "base/startup_env.h"

int main(int argc, char** argv) {
  keel::startup::use_fast_library_settings(argv);
  testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
