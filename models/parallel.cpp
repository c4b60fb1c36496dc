#include "models/parallel.h"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <exception>

namespace keel::models {

void parallel_chunks(int64_t begin, int64_t end, int64_t grain, int threads,
                     const std::function<void(int64_t, int64_t)>& f) {
  if (begin >= end) return;
  const int64_t n = end - begin;
  grain = std::max<int64_t>(1, grain);
  const int64_t chunks = std::min<int64_t>(threads, (n + grain - 1) / grain);
  if (chunks <= 1 || omp_in_parallel()) {
    f(begin, end);
    return;
  }
  const int64_t size = (n + chunks - 1) / chunks;
  std::atomic_flag failed = ATOMIC_FLAG_INIT;
  std::exception_ptr error;
#pragma omp parallel for num_threads(static_cast<int>(chunks)) schedule(static, 1)
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

}  // namespace keel::models
