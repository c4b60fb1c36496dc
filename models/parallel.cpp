#include "models/parallel.h"

#ifdef _OPENMP
#include <omp.h>
#endif
#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace keel::models {

namespace {
/// How many chunks both loops split n elements into: at most `threads`, each of >= `grain`.
int64_t chunk_count(int64_t n, int64_t grain, int threads) {
  grain = std::max<int64_t>(1, grain);
  return std::min<int64_t>(threads, (n + grain - 1) / grain);
}
}  // namespace

void parallel_chunks(int64_t begin, int64_t end, int64_t grain, int threads,
                     const std::function<void(int64_t, int64_t)>& f) {
  if (begin >= end) return;
  const int64_t n = end - begin;
  const int64_t chunks = chunk_count(n, grain, threads);
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

namespace {

/// spinning_chunks' helper threads, one job at a time. The caller hands chunk i (i >= 1) to helper
/// i through that helper's own slot (the range, then a ticket bump), runs chunk 0 itself, and
/// spins until `pending_` is 0. Between jobs a helper spins on its ticket for kSpinMicros, then
/// sleeps on `wake_`; the caller notifies only when some helper is asleep (the seq_cst order of
/// the caller's ticket bump and `asleep_` read against a helper's `asleep_` increment and ticket
/// read means one of the two sees the other).
class SpinPool {
 public:
  static SpinPool& get() {
    // Leaked on purpose: helpers may still spin while static destructors run at exit.
    static SpinPool* pool = new SpinPool;
    return *pool;
  }

  void run(int64_t begin, int64_t end, int64_t size, int chunks, const std::function<void(int64_t, int64_t)>& f) {
    std::unique_lock<std::mutex> busy(busy_, std::try_to_lock);
    if (!busy.owns_lock() || helper_flag() || forked_.load(std::memory_order_relaxed)) {
      f(begin, end);  // another thread's job is running, a nested call, or a forked child: inline
      return;
    }
    while (count_.load(std::memory_order_relaxed) < chunks - 1) start_helper();
    error_ = nullptr;
    pending_.store(chunks - 1, std::memory_order_relaxed);
    for (int i = 1; i < chunks; ++i) {
      Helper& h = *helpers_[static_cast<size_t>(i - 1)];
      h.job = &f;
      h.begin = begin + i * size;
      h.end = std::min(end, h.begin + size);
      h.ticket.fetch_add(1, std::memory_order_seq_cst);
    }
    if (asleep_.load(std::memory_order_seq_cst) > 0) {
      { std::lock_guard<std::mutex> l(sleep_); }
      wake_.notify_all();
    }
    std::exception_ptr mine;
    try {
      f(begin, std::min(end, begin + size));
    } catch (...) {
      mine = std::current_exception();
    }
    while (pending_.load(std::memory_order_acquire) > 0) cpu_relax();
    if (mine) std::rethrow_exception(mine);
    if (error_) std::rethrow_exception(error_);
  }

  int awake() const { return count_.load(std::memory_order_relaxed) - asleep_.load(std::memory_order_relaxed); }

 private:
  struct Helper {
    std::atomic<uint64_t> ticket{0};
    const std::function<void(int64_t, int64_t)>* job = nullptr;
    int64_t begin = 0, end = 0;
  };

  SpinPool() {
    pthread_atfork(nullptr, nullptr, [] { get().forked_.store(true); });  // a child has no helpers
  }

  static void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
  }

  static bool& helper_flag() {
    static thread_local bool is_helper = false;
    return is_helper;
  }

  void start_helper() {  // under busy_
    helpers_.push_back(std::make_unique<Helper>());
    Helper* h = helpers_.back().get();
    std::thread([this, h] { loop(*h); }).detach();
    count_.fetch_add(1, std::memory_order_relaxed);
  }

  void loop(Helper& h) {
    helper_flag() = true;
    uint64_t seen = 0;
    for (;;) {
      const auto spin_start = std::chrono::steady_clock::now();
      int polls = 0;
      while (h.ticket.load(std::memory_order_acquire) == seen) {
        cpu_relax();
        if (++polls < 64) continue;
        polls = 0;
        if (std::chrono::steady_clock::now() - spin_start < std::chrono::microseconds(kSpinMicros)) continue;
        std::unique_lock<std::mutex> l(sleep_);
        asleep_.fetch_add(1, std::memory_order_seq_cst);
        wake_.wait(l, [&] { return h.ticket.load(std::memory_order_seq_cst) != seen; });
        asleep_.fetch_sub(1, std::memory_order_seq_cst);
      }
      ++seen;  // the caller hands out one ticket per job and waits for it before the next
      try {
        if (h.begin < h.end) (*h.job)(h.begin, h.end);
      } catch (...) {
        std::lock_guard<std::mutex> l(error_lock_);
        if (!error_) error_ = std::current_exception();
      }
      pending_.fetch_sub(1, std::memory_order_release);
    }
  }

  std::mutex busy_;                               // one job at a time; guards helpers_
  std::vector<std::unique_ptr<Helper>> helpers_;  // stable addresses
  std::atomic<int> count_{0};
  std::atomic<int> pending_{0};
  std::atomic<int> asleep_{0};
  std::atomic<bool> forked_{false};
  std::mutex sleep_;
  std::condition_variable wake_;
  std::mutex error_lock_;
  std::exception_ptr error_;
};

}  // namespace

void spinning_chunks(int64_t begin, int64_t end, int64_t grain, int threads,
                     const std::function<void(int64_t, int64_t)>& f) {
  if (begin >= end) return;
  const int64_t n = end - begin;
  const int64_t chunks = chunk_count(n, grain, threads);
  if (chunks <= 1) {
    f(begin, end);
    return;
  }
  SpinPool::get().run(begin, end, (n + chunks - 1) / chunks, static_cast<int>(chunks), f);
}

int spinning_helpers_awake() { return SpinPool::get().awake(); }

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
    const int r = runnable_threads();
    runnable.store(r < 0 ? r : std::max(1, r - spinning_helpers_awake()), std::memory_order_relaxed);
    sampled_ns.store(now, std::memory_order_relaxed);
  }
  const int r = runnable.load(std::memory_order_relaxed);
  if (cpus <= 0 || r < 1) return wanted;
  return threads_with_idle_cores(wanted, cpus, r);
}

}  // namespace keel::models
