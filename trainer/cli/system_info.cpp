// See system_info.h.
#include "trainer/cli/system_info.h"

#include <dlfcn.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <thread>

#include <torch/torch.h>

#include "models/compat.h"
#include "models/fused_cpu_kernels.h"
#include "base/log.h"
#include "base/startup_env.h"

namespace keel::cli {

std::string blas_description() {
  // OpenBLAS exports openblas_get_config / openblas_get_num_threads when it is the loaded BLAS.
  using ConfigFn = char* (*)();
  using ThreadsFn = int (*)();
  if (auto cfg = reinterpret_cast<ConfigFn>(dlsym(RTLD_DEFAULT, "openblas_get_config"))) {
    auto th = reinterpret_cast<ThreadsFn>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
    const std::string note = startup::library_env_note();
    return fmt::format("OpenBLAS ({}; {} threads{}{})", cfg(), th ? th() : -1, note.empty() ? "" : "; keel set ", note);
  }
  if (dlsym(RTLD_DEFAULT, "mkl_get_max_threads")) return "Intel MKL";
  // Fall back to what the dynamic linker mapped.
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    if (line.find("libblas.so") != std::string::npos || line.find("libcblas.so") != std::string::npos)
      return "reference BLAS (" + line.substr(line.find('/')) + ") -- SLOW: run scripts/setup.sh to select OpenBLAS";
  }
  return "unknown";
}

std::string kernel_path_description() {
  const auto isa = models::kernels::active_isa();
  return fmt::format("{}{}; this CPU runs {}", models::kernels::isa_name(isa),
                     isa == models::kernels::best_isa() ? "" : " (forced by KEEL_ISA)",
                     models::kernels::supported_isa_names());
}

std::string system_summary() {
  return fmt::format("keel {} | LibTorch {} | CUDA {} ({} device(s)) | NCCL {} | BLAS: {} | intra-op threads {} | "
                     "CPU kernels: {}",
                     KEEL_VERSION, compat::torch_version(), compat::cuda_available() ? "yes" : "no",
                     compat::cuda_device_count(), compat::nccl_available() ? "yes" : "no", blas_description(),
                     at::get_num_threads(), kernel_path_description());
}

double measure_matmul_gflops(int n, int reps) {
  torch::NoGradGuard ng;
  auto a = torch::randn({n, n});
  auto b = torch::randn({n, n});
  auto c = torch::matmul(a, b);  // warm-up
  double best = 0;
  for (int i = 0; i < reps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    c = torch::matmul(a, b);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, 2.0 * n * n * static_cast<double>(n) / s / 1e9);
  }
  return best;
}

void init_threads(int requested) {
  const int hardware = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (requested > hardware) {
    // More intra-op threads than hardware threads only contend (1000 on 2 cores: a step ~50x slower).
    log::warn("run.threads {} is more than this machine's {} hardware threads: using {}", requested, hardware, hardware);
    requested = hardware;
  }
  if (requested > 0) {
    // run.threads bounds BLAS too: OpenBLAS-pthread's pool ignores ATen's setting, and a run on
    // 1 thread whose matmuls split over 2 rounds differently under some OpenBLAS kernels (its
    // Haswell ones, pinned by OPENBLAS_CORETYPE) than the same run with another rank layout.
    at::set_num_threads(requested);
    compat::set_blas_threads(requested);
  } else if (!std::getenv("OMP_NUM_THREADS")) {
    // LibTorch defaults to physical cores (1 on a 2-vCPU VM); BLAS and ATen scale to all threads.
    at::set_num_threads(static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  }
}

}  // namespace keel::cli
