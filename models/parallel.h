// keel's intra-op parallel loop. ATen's at::parallel_for is a header template whose OpenMP
// backend exists only in code compiled with -fopenmp; keel's sources are not (one precompiled
// header for every target), so in keel's code at::parallel_for silently ran every range on the
// calling thread. This one file is compiled with OpenMP instead, against the libgomp that
// LibTorch itself uses, so its threads are ATen's own OpenMP pool.
#pragma once

#include <cstdint>
#include <functional>

namespace keel::models {

/// Calls f(b, e) over [begin, end) split as at::parallel_for's OpenMP backend splits it: at most
/// `threads` contiguous chunks, each of at least `grain` elements, on OpenMP threads. Runs
/// f(begin, end) on the calling thread when threads <= 1, when the range is at most one grain, or
/// inside a parallel region. An exception thrown by f is rethrown here (the first one).
void parallel_chunks(int64_t begin, int64_t end, int64_t grain, int threads,
                     const std::function<void(int64_t, int64_t)>& f);

/// parallel_chunks for short jobs that come in quick succession (the few-row linear layers of a
/// decode step, one every 20-200 us): the same chunks, run on keel's own helper threads, which
/// spin for kSpinMicros after each job before they sleep. A job that finds its helpers still
/// spinning starts at once; an OpenMP fork/join with passive waiting (what keel's processes run
/// with, startup_env.h) wakes each thread through the kernel, which on this project's VMs cost
/// more than the second thread saved. Helpers are started on first use (at most threads - 1 of
/// them); a call from a helper, or while another thread's job runs, runs inline. The bits do not
/// depend on which thread runs a chunk.
inline constexpr int kSpinMicros = 200;
void spinning_chunks(int64_t begin, int64_t end, int64_t grain, int threads,
                     const std::function<void(int64_t, int64_t)>& f);
/// How many of spinning_chunks' helpers are awake (spinning or working) now.
int spinning_helpers_awake();

/// False where this file was built without OpenMP (CMake found none): parallel_chunks then runs
/// every range on the calling thread.
bool parallel_chunks_run_in_parallel();

/// How many of `wanted` threads would each have a core to themselves: 1 + the CPUs this process
/// may run on (its affinity mask) that are not running anything now, at most `wanted`. "Now" is
/// the kernel's count of runnable threads (/proc/loadavg, which includes the calling thread),
/// less spinning_chunks' helpers awake at that moment (they yield their core to a job), sampled at
/// most every 2 ms; `wanted` where it cannot be read. For bandwidth-bound work that
/// is split only when another core is idle: a fork/join whose second thread waits for a busy
/// core costs a scheduler time slice.
int threads_with_idle_cores(int wanted);
/// The rule itself: clamp(1 + cpus - runnable, 1, wanted).
int threads_with_idle_cores(int wanted, int cpus, int runnable);

}  // namespace keel::models
