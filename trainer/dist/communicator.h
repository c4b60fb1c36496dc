// The communicator: the small interface through which the rest of keel talks to other ranks.
// Implemented over LibTorch's c10d (ProcessGroupGloo on CPU, ProcessGroupNCCL on CUDA builds) in
// communicator.cpp, the only place that sees c10d headers. It is deliberately not a general
// distributed framework: async collectives only where keel overlaps them (broadcast for bucketed
// weight sync, all-gather for sharded parameters' prefetch), no tensor-parallel helpers.
//
// Ranks in every call are ranks *of this communicator* (0 .. size()-1); global_ranks() maps them to
// world ranks. Every collective must be called by every member in the same order, as in c10d.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "trainer/dist/rendezvous.h"

namespace keel::config {
struct DistSection;
}

namespace keel::dist {

enum class ReduceOp { kSum, kMean };

/// An in-flight operation; wait() blocks until done and rethrows its error.
class CommWork {
 public:
  virtual ~CommWork() = default;
  virtual void wait() = 0;
};

class Communicator {
 public:
  virtual ~Communicator() = default;

  /// This process's rank in the communicator, and the number of members.
  virtual int rank() const = 0;
  virtual int size() const = 0;
  /// global_ranks()[i] = world rank of member i.
  virtual const std::vector<int>& global_ranks() const = 0;
  /// "gloo" or "nccl".
  virtual std::string backend() const = 0;
  /// Where tensors passed to this communicator must live (CPU for gloo, the rank's GPU for nccl).
  virtual at::Device device() const = 0;

  /// In place. kMean = sum / size() and needs a floating dtype. t: any shape, same on all ranks.
  virtual void all_reduce(at::Tensor& t, ReduceOp op) = 0;
  /// In place: every rank's `t` (same shape and dtype everywhere) receives root's values.
  virtual void broadcast(at::Tensor& t, int root) = 0;
  /// broadcast() started without waiting; `t` must be contiguous and stay alive until wait().
  virtual std::unique_ptr<CommWork> broadcast_async(at::Tensor& t, int root) = 0;
  /// Same shape and dtype on every rank; returns size() tensors, [i] = member i's `t`.
  virtual std::vector<at::Tensor> all_gather(const at::Tensor& t) = 0;
  /// Shapes (even ranks) may differ between members, dtypes may not; [i] = member i's `t`.
  virtual std::vector<at::Tensor> all_gather_varsize(const at::Tensor& t) = 0;
  /// all_gather into one buffer, started without waiting: out [size() * n] (contiguous, same dtype)
  /// receives member i's `t` [n] at [i*n, (i+1)*n) once wait() returns; both must stay alive until
  /// then. The default runs all_gather synchronously (the c10d communicator overrides it).
  virtual std::unique_ptr<CommWork> all_gather_into_async(const at::Tensor& t, at::Tensor& out);
  /// Reduce-scatter (sum): t [size() * n] on every member; returns this member's slice
  /// [rank()*n, (rank()+1)*n) of the sum over the members. `t` is scratch space: its contents are
  /// unspecified afterwards. The default all-reduces `t` in place and keeps the slice (right, with
  /// twice a ring reduce-scatter's traffic; Gloo has no reduce-scatter in LibTorch 1.13); the c10d
  /// communicator overrides it with NCCL's.
  virtual at::Tensor reduce_scatter(at::Tensor& t);
  /// Point to point of any shape: the receiver learns dtype and shape from a header sent first.
  virtual void send(const at::Tensor& t, int dst) = 0;
  virtual at::Tensor recv(int src) = 0;
  virtual void barrier() = 0;

  /// A sub-communicator of `ranks` (ranks of this communicator, distinct, any order; member i of
  /// the result is ranks[i]). Collective: every member of *this* communicator must call it with
  /// the same list, in the same order relative to other new_group() calls (as torch's new_group).
  /// Returns nullptr on ranks outside the list.
  virtual std::unique_ptr<Communicator> new_group(const std::vector<int>& ranks) = 0;
};

struct CommOptions {
  std::string backend = "auto";         ///< auto | gloo | nccl (auto: nccl when CUDA is usable)
  double timeout_s = 300;               ///< rendezvous and per-collective timeout
  /// Gloo's worker threads per process group: how many of its queued async operations run at once.
  /// keel issues every collective synchronously except weight sync's broadcasts (several in flight,
  /// to keep the transport busy): with Gloo's default of 2 threads, two of them ran at once and on
  /// this project's 2-core VMs competed with each other and the transport, holding 109.5M fp32
  /// parameters in 87 broadcasts to 0.71-0.74 of one raw broadcast; with 1 thread, 0.89-0.93
  /// (scripts/bench_weight_sync.sh).
  int gloo_threads = 1;
};

/// dist.backend / dist.timeout_s of the run config.
CommOptions comm_options(const config::DistSection& dist);

/// Rendezvous through a TCPStore at info.master_addr:master_port (rank 0 hosts it), then the
/// world communicator. Every rank announces itself in the store and waits for all others until
/// opt.timeout_s; if some never arrive it throws keel::Error listing the missing ranks (a rank
/// that cannot reach rank 0's store reports rank 0 as missing) — it never hangs. With several
/// ranks, each beats every second through the store; a collective that fails (a timeout, a peer
/// gone) names the ranks silent for over 3 s or behind in note_progress().
std::unique_ptr<Communicator> init_communicator(const RendezvousInfo& info, const CommOptions& opt);

/// A one-member communicator (no sockets): every collective is the identity.
std::unique_ptr<Communicator> make_single_process_communicator();

/// This rank's progress (the learner step it is in), published with its heartbeats: a failed
/// collective names the ranks that went silent or stayed behind (see init_communicator).
void note_progress(int64_t step);

}  // namespace keel::dist
