// The learner's data-parallel hooks: the three points of an update where W ranks, each holding
// its own rows of the global batch, must agree. rl_update calls them when RlUpdateOptions::dp is
// set; trainer/dist/data_parallel.h builds them over a Communicator (learner_hooks()).
//
// Deliberately a set of plain callbacks: trainer/learner never sees a communicator, c10d or
// trainer/dist, and a null pointer means one process (the update is then exactly the
// single-process one).
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "trainer/learner/loss_agg.h"

namespace keel::learner {

struct DataParallelHooks {
  /// Sums a mini-batch's aggregation counts over the ranks, in place, before any loss of that
  /// mini-batch is computed: every rank's AggContext then holds the GLOBAL denominators, each
  /// rank's loss is its share of the global mean, and the SUM of the ranks' gradients is the
  /// gradient of the whole mini-batch.
  std::function<void(AggCounts& counts)> reduce_counts;
  /// Sums the parameters' gradients over the ranks, in place (undefined ones count as zero),
  /// after the backward passes of a mini-batch and before clipping.
  std::function<void(const std::vector<at::Tensor>& params)> reduce_gradients;
  /// Reduces one optimizer step's scalars in place before the numerics guard and the metrics see
  /// them, so every rank takes the same skip / rollback decision: `sum` entries (additive shares
  /// such as actor/loss, actor/pg_loss) are summed over the ranks, `mean` entries (rates averaged
  /// over micro-batches, actor/grad_norm) averaged. Key sets must match across ranks.
  std::function<void(std::map<std::string, double>& sum, std::map<std::string, double>& mean)> reduce_scalars;
};

}  // namespace keel::learner
