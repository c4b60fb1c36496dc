// What keel runs on: versions, BLAS, threads — for `keel version` and the start-up log line.
#pragma once

#include <string>

namespace keel::cli {

/// "OpenBLAS (...; 2 threads)", "reference BLAS (...) -- SLOW ...", ...
std::string blas_description();
/// One line: keel, LibTorch, CUDA, NCCL, BLAS, threads.
std::string system_summary();
/// Sets LibTorch's intra-op threads: `requested` if > 0, else every hardware thread unless
/// OMP_NUM_THREADS is set (tests set it to 1).
void init_threads(int requested);
/// Best-of-`reps` fp32 n x n matmul throughput.
double measure_matmul_gflops(int n, int reps);

}  // namespace keel::cli
