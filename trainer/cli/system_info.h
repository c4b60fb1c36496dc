// What keel runs on: versions, BLAS, threads — for `keel version` and the start-up log line.
#pragma once

#include <string>

namespace keel::cli {

/// "OpenBLAS (...; 2 threads)", "reference BLAS (...) -- SLOW ...", ...
std::string blas_description();
/// "avx512; this CPU runs avx512,avx2,baseline", with " (forced by KEEL_ISA)" after the path when
/// it is not the widest (models/fused_cpu_kernels.h active_isa).
std::string kernel_path_description();
/// One line: keel, LibTorch, CUDA, NCCL, BLAS, threads, CPU kernels.
std::string system_summary();
/// Sets LibTorch's intra-op threads: `requested` if > 0 (capped, with a warning, at the hardware
/// threads), else every hardware thread unless OMP_NUM_THREADS is set (tests set it to 1).
void init_threads(int requested);
/// Best-of-`reps` fp32 n x n matmul throughput.
double measure_matmul_gflops(int n, int reps);

}  // namespace keel::cli
