// keel version: versions, devices, BLAS and threads (and optionally a matmul GFLOP/s probe).
#include <cstdlib>
#include <iostream>
#include <thread>

#include <torch/torch.h>

#include "models/compat.h"
#include "models/fused_cpu_kernels.h"
#include "trainer/cli/commands.h"
#include "base/startup_env.h"
#include "trainer/cli/system_info.h"

namespace keel::cli {

int run_version(const VersionArgs& a) {
  if (a.library_env) {  // scripts/test.sh exports these once, so that test binaries need not re-run
    for (const char* k : {"OPENBLAS_CORETYPE", "OMP_WAIT_POLICY"})
      if (const char* v = std::getenv(k); v != nullptr && *v != '\0') std::cout << "export " << k << "=" << v << "\n";
    return 0;
  }
  if (a.kernel_paths) {  // scripts/test.sh runs the kernel tests once per path
    for (auto isa : models::kernels::supported_isas()) std::cout << models::kernels::isa_name(isa) << "\n";
    return 0;
  }
  std::cout << "keel " << KEEL_VERSION << "\n"
            << "LibTorch " << compat::torch_version() << "\n"
            << "CUDA: " << (compat::cuda_available() ? "available" : "not available") << " ("
            << compat::cuda_device_count() << " device(s))\n"
            << "NCCL: " << (compat::nccl_available() ? "available" : "not available") << "\n"
            << "BLAS: " << blas_description() << "\n"
            << "intra-op threads: " << at::get_num_threads() << " (hardware threads: "
            << std::thread::hardware_concurrency() << ")\n"
            << "CPU kernels: " << kernel_path_description() << "\n";
  if (a.matmul) std::cout << fmt::format("fp32 matmul 2048x2048: {:.1f} GFLOP/s\n", measure_matmul_gflops(2048, 5));
  return 0;
}

}  // namespace keel::cli
