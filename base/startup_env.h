// Library settings that must be in the environment before the libraries load. Two of them decide
// how fast keel's CPU math runs, and both are read once, by library constructors, before main():
//
// - OPENBLAS_CORETYPE. Debian's OpenBLAS (0.3.21, DYNAMIC_ARCH) picks its kernels from the CPU
//   model number, and a model it does not know falls back to "Prescott" (SSE3). On this project's
//   VMs (Intel family 6 model 207, Emerald Rapids, AVX-512) it does exactly that: a 2048^3 fp32
//   GEMM runs at 30-45 GFLOP/s on 2 cores instead of ~200-300 with the SkylakeX kernels.
// - OMP_WAIT_POLICY=passive. LibTorch's elementwise ops run on libgomp's threads, the GEMMs on
//   OpenBLAS-pthread's own threads, and both pools spin after their work: on a 2-core machine each
//   steals the cores the other needs next. Letting libgomp's idle threads sleep made a training
//   step 15% faster (bench/train_step_bench.cpp, lockstep A/B of the two settings, every pair
//   faster).
//
// keel's executables (the CLI, the tests, the benches) call use_fast_library_settings(argv) first
// in main(): when a setting is missing it sets it and runs the program again, once. A value the
// user set is never overridden; KEEL_KEEP_LIBRARY_ENV=1 turns all of this off.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace keel::startup {

/// The kernel set the loaded OpenBLAS uses ("Prescott", "SkylakeX", ...); "" when no OpenBLAS is
/// loaded (MKL, the CUDA wheels' LibTorch, or a binary without LibTorch).
std::string openblas_core();

/// The OpenBLAS core this CPU deserves when the loaded one is weaker ("SkylakeX" with AVX-512,
/// "Haswell" with AVX2 + FMA), or "" when the loaded one is fine or there is no OpenBLAS.
std::string better_openblas_core();

/// The (variable, value) pairs this process lacks: see the top of this file. Empty when nothing is
/// missing, when the user set the variables, or with KEEL_KEEP_LIBRARY_ENV=1.
std::vector<std::pair<std::string, std::string>> missing_library_env();

/// Sets missing_library_env() and re-executes this program (/proc/self/exe, the same argv) so that
/// the libraries load with it; records what it changed in KEEL_LIBRARY_ENV_SET. Returns only when
/// nothing is missing or the re-exec failed (then it warns on stderr and the program goes on).
void use_fast_library_settings(char** argv);

/// For logs: what use_fast_library_settings changed, e.g. "OPENBLAS_CORETYPE=SkylakeX (OpenBLAS
/// picked Prescott), OMP_WAIT_POLICY=passive"; "" when it changed nothing.
std::string library_env_note();

}  // namespace keel::startup
