// The learner's update over one RolloutBatch: K epochs x mini-batches x micro-batches of
// teacher-forced log-probs, policy loss (a registered PolicyLossFn), backward, gradient clipping,
// the numerics guard and an AdamW step with the scheduled learning rate. Loss denominators are
// taken over the whole mini-batch (AggContext), so the gradient does not depend on the split.
// PPO's critic (value head or separate model) is trained in the same pass (CriticUpdate).
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
#include "trainer/learner/value_loss.h"
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
  bool padding_free = false;     ///< forwards over the rows' real tokens only (LogprobOptions::padding_free)
  int64_t max_tokens_per_micro_batch = 0;  ///< > 0: micro-batches also capped in real tokens (micro_batches())
  PolicyLossOptions loss;
  LrScheduleOptions lr;
  /// Data-parallel ranks: null = one process. With W ranks each rank passes its own rows and
  /// mini_batch_size = global mini-batch / W (trainer/dist/data_parallel.h). Not owned.
  const DataParallelHooks* dp = nullptr;
};

/// PPO's critic, trained in the same pass over the batch (batch.values = V_old, batch.returns =
/// targets). Shared (model == the policy, a value head on its trunk): one forward gives log-probs
/// and values and the loss is L_policy + vf_coef·L_V. Separate: its own forward, backward,
/// gradient clipping and optimizer step per mini-batch (verl's critic; vf_coef not applied).
struct CriticUpdate {
  models::Transformer* model = nullptr;
  torch::optim::Optimizer* optimizer = nullptr;  ///< separate critic only (null when shared)
  ValueLossOptions loss;
  double vf_coef = 0.5;
  LrScheduleOptions lr;                          ///< separate critic's schedule
  int64_t* opt_step = nullptr;                   ///< separate critic's optimizer-step counter
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
                         NumericsGuard& guard, int64_t& opt_step, const CriticUpdate* critic = nullptr);

}  // namespace keel::learner
