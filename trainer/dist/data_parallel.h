// Data-parallel learner of colocated placement: every rank holds a full replica of the policy and
// its own rows of the global batch; denominators, gradients and step scalars are summed over the
// ranks so that W ranks take the same optimizer steps as one process on the whole batch (within
// fp32 rounding of the summation order; tests/trainer/dist/data_parallel_test.cpp).
// Deliberately not here: sharded optimizers (ZeRO / FSDP), overlap of the all-reduce with the
// backward pass, and the learner loop itself (trainer/learner/rl_update.h calls the hooks).
//
// Wiring in `keel train` (colocated, W = cfg.derived.learner_ranks, r = comm.rank()):
//   * start: build policy + optimizer on every rank with the same seed, then
//     replicate_parameters(comm, policy.parameters()) so every rank holds rank 0's weights.
//     Again after a resume or a rollback (every rank loads the same checkpoint, optimizer state
//     included: AdamW moments must be equal on all ranks for the replicas to stay equal).
//   * rollout: of the step's P = batch.prompts_per_step global prompts, rank r takes
//     [r*P/W, (r+1)*P/W) (whole groups, so group-wise advantages stay rank-local), samples them
//     with a per-rank seed (e.g. seed + 1000003 * r), scores them and computes advantages.
//   * update: RlUpdateOptions u; u.mini_batch_size = batch.mini_batch_size / W (micro_batch_size
//     unchanged: it is per rank already); auto hooks = learner_hooks(comm, {dist.bucket_mb});
//     u.dp = &hooks; rl_update(...) on the rank's own rows. rl_update's metrics come back reduced
//     (actor/*); rollout / reward metrics are per rank: all_reduce_metrics(comm, m, kMean) (or
//     kSum for counts) on every rank before logging.
//   * only rank 0 logs, writes metrics files and checkpoints.
//   * every rank must pass rl_update the same number of rows (the collectives pair up per
//     mini-batch): a filter that drops groups per rank (group_filter) has to equalise first.
//     Batch-wide statistics outside the learner (advantage whitening of gae / reinforce_pp,
//     the adaptive KL controller's current_kl) are rank-local unless reduced as well.
// The equivalence: rank r's mini-batch k is rows [k*M/W, (k+1)*M/W) of its own rows, so one
// process reproduces W ranks when its mini-batch k is the concatenation over r of those rows
// (dp_single_process_order() gives that row order for tests and checks).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "trainer/dist/communicator.h"
#include "trainer/learner/data_parallel_hooks.h"
#include "trainer/learner/loss_agg.h"

namespace keel::dist {

/// Every rank's `params` (same dtypes and shapes in the same order on all ranks, on
/// comm.device()) receive root's values, in place, bit-exact; autograd is not involved (the
/// parameters may require grad). A rank whose list differs from root's makes every rank throw.
/// Uses weight_sync.h's bucketed broadcast.
void replicate_parameters(Communicator& comm, const std::vector<at::Tensor>& params, int root = 0,
                          double bucket_mb = 64);

struct GradReduceStats {
  int64_t buckets = 0;         ///< all_reduce calls on gradient data (one per bucket)
  int64_t elements = 0;        ///< gradient elements reduced
  int64_t reduced_params = 0;  ///< parameters with a gradient on at least one rank
};

/// Sums every parameter's .grad over the ranks, in place. A gradient undefined on some ranks but
/// defined on another counts as zero there and is defined (as the sum) on every rank afterwards;
/// one undefined on every rank stays undefined (an optimizer then skips it, as in one process).
/// Gradients are streamed, in parameter order, through one buffer of bucket_bytes (per dtype
/// run): a tensor larger than a bucket spans several, a bucket may hold many tensors; one
/// all_reduce(SUM) per bucket, plus one small all_reduce of the "defined" flags per call.
/// `params`: the same list (dtypes, shapes, order) on every rank, on comm.device().
GradReduceStats all_reduce_gradients(Communicator& comm, const std::vector<at::Tensor>& params,
                                     int64_t bucket_bytes = int64_t{64} << 20);

/// All-reduces a map of scalar metrics in place (kSum or kMean over the ranks), in double. The
/// key sets must be equal on all ranks; otherwise every rank throws keel::Error naming the keys
/// that differ from rank 0's (checked with a hash first, so the common case costs one small
/// all_gather more than the all_reduce).
void all_reduce_metrics(Communicator& comm, std::map<std::string, double>& metrics, ReduceOp op);

/// Sums AggCounts (tokens, seqs) over the ranks in place: the global denominators of every
/// loss_agg mode (token-mean: tokens; seq-mean-*: seqs; seq-mean-token-mean's per-row lengths
/// are rank-local because a row never spans ranks; p3o's pair count is seqs / 2).
void all_reduce_agg_counts(Communicator& comm, learner::AggCounts& counts);

struct DataParallelOptions {
  double bucket_mb = 64;  ///< gradient bucket size in MiB (dist.bucket_mb)
};

/// The hooks rl_update calls (RlUpdateOptions::dp) over `comm`: reduce_counts =
/// all_reduce_agg_counts, reduce_gradients = all_reduce_gradients, reduce_scalars = one
/// all_reduce of both maps (sum / mean) after a key check. `comm` must outlive the hooks.
learner::DataParallelHooks learner_hooks(Communicator& comm, const DataParallelOptions& opt = {});

/// Row order for one process to reproduce W ranks: given the ranks' batches concatenated
/// rank-major (rank r's rows at [r*rows_per_rank, (r+1)*rows_per_rank)), the i-th entry is the
/// index of the row one process must see i-th, so that its mini-batch k (of W*mini_per_rank rows)
/// is rank 0's mini-batch k, then rank 1's, ... rows_per_rank % mini_per_rank must be 0.
std::vector<int64_t> dp_single_process_order(int64_t rows_per_rank, int64_t mini_per_rank, int world);

}  // namespace keel::dist
