// The learner's update over one RolloutBatch: K epochs x mini-batches x micro-batches of
// teacher-forced log-probs, policy loss (a registered PolicyLossFn), backward, gradient clipping,
// the numerics guard and an AdamW step with the scheduled learning rate. Loss denominators are
// taken over the whole mini-batch (AggContext), so the gradient does not depend on the split.
// Several ranks: RlUpdateOptions::dp (data_parallel_hooks.h, built by trainer/dist/data_parallel.h)
// makes the denominators global, sums gradients before clipping and reduces the guard's scalars.
// Deliberately not here: rollout, rewards, credit (already in the batch), any communicator.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "trainer/learner/data_parallel_hooks.h"
#include "trainer/learner/lr_schedule.h"
#include "trainer/learner/numerics_guard.h"
#include "trainer/learner/policy_loss.h"
#include "trainer/rollout/rollout_batch.h"

namespace torch::optim {
class Optimizer;
}
namespace keel::models {
class Transformer;
}

namespace keel::learner {

struct RlUpdateOptions {
  int epochs = 1;
  int mini_batch_size = 64;      ///< rows per optimizer step
  int micro_batch_size = 16;     ///< rows per forward/backward
  double grad_clip = 1.0;        ///< 0 = off (the norm is still measured)
  double temperature = 1.0;      ///< the sampler's temperature (log-probs are recomputed under it)
  PolicyLossOptions loss;
  LrScheduleOptions lr;
  /// Data-parallel ranks: null = one process. With W ranks each rank passes its own rows and
  /// mini_batch_size = global mini-batch / W (trainer/dist/data_parallel.h). Not owned.
  const DataParallelHooks* dp = nullptr;
};

struct RlUpdateResult {
  std::map<std::string, double> metrics;  ///< actor/*, perf/* (averaged over optimizer steps)
  int64_t optimizer_steps = 0;            ///< steps taken (skipped ones excluded)
  bool rollback = false;                  ///< the numerics guard asked for a rollback
};

/// Runs the update. `opt_step` is the global optimizer-step counter (drives the LR schedule and
/// is advanced for each step taken).
RlUpdateResult rl_update(models::Transformer& policy, torch::optim::Optimizer& optimizer,
                         const rollout::RolloutBatch& batch, const PolicyLossFn& loss_fn, const RlUpdateOptions& o,
                         NumericsGuard& guard, int64_t& opt_step);

}  // namespace keel::learner
