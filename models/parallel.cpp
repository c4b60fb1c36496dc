#include "models/parallel.h"

#ifdef _OPENMP
#include <omp.h>
#endif
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <exception>

namespace keel::models {

void parallel_chunks(int64_t begin, int64_t end, int64_t grain, int threads,
                     const std::function<void(int64_t, int64_t)>& f) {
  if (begin >= end) return;
  const int64_t n = end - begin;
  grain = std::max<int64_t>(1, grain);
  const int64_t chunks = std::min<int64_t>(threads, (n + grain - 1) / grain);
#ifdef _OPENMP
  const bool nested = omp_in_parallel() != 0;
#else
  const bool nested = true;  // built without OpenMP (CMakeLists.txt warns): every range inline
#endif
  if (chunks <= 1 || nested) {
    f(begin, end);
    return;
  }
  const int64_t size = (n + chunks - 1) / chunks;
  std::atomic_flag failed = ATOMIC_FLAG_INIT;
  std::exception_ptr error;
#ifdef _OPENMP
#pragma omp parallel for num_threads(static_cast<int>(chunks)) schedule(static, 1)
#endif
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t b = begin + c * size, e = std::min(end, b + size);
    if (b >= e) continue;
    try {
      f(b, e);
    } catch (...) {
      if (!failed.test_and_set()) error = std::current_exception();
    }
  }
  if (error) std::rethrow_exception(error);
}

bool parallel_chunks_run_in_parallel() {
#ifdef _OPENMP
  return true;
#else
  return false;
#endif
}

int threads_with_idle_cores(int wanted, int cpus, int runnable) {
  return std::max(1, std::min(wanted, 1 + cpus - runnable));
}

namespace {

int allowed_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return 0;
  return CPU_COUNT(&set);
}

/// The runnable count of /proc/loadavg ("0.44 1.02 1.42 1/123 4567": the 1), or -1.
int runnable_threads() {
  std::FILE* f = std::fopen("/proc/loadavg", "r");
  if (f == nullptr) return -1;
  double l1 = 0, l5 = 0, l15 = 0;
  int running = -1, total = 0;
  const int got = std::fscanf(f, "%lf %lf %lf %d/%d", &l1, &l5, &l15, &running, &total);
  std::fclose(f);
  return got == 5 ? running : -1;
}

}  // namespace

int threads_with_idle_cores(int wanted) {
  if (wanted <= 1) return 1;
  static const int cpus = allowed_cpus();
  static std::atomic<int64_t> sampled_ns{0};
  static std::atomic<int> runnable{-1};
  const int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                          std::chrono::steady_clock::now().time_since_epoch()).count();
  if (now - sampled_ns.load(std::memory_order_relaxed) > 2'000'000) {
    runnable.store(runnable_threads(), std::memory_order_relaxed);
    sampled_ns.store(now, std::memory_order_relaxed);
  }
  const int r = runnable.load(std::memory_order_relaxed);
  if (cpus <= 0 || r < 1) return wanted;
  return threads_with_idle_cores(wanted, cpus, r);
}

}  // namespace keel::models
