// The teacher-forced learners' updates over fixed sequences: SFT (token-mean cross-entropy of the
// responses) and DPO (a registered DPO loss over chosen / rejected pairs against a frozen
// reference). Each call is one optimizer step over a mini-batch, micro-batched; loss denominators
// are the whole mini-batch's, so the gradient does not depend on the micro-batch split. Gradient
// clipping, the numerics guard and the scheduled learning rate as in rl_update. With
// SupervisedOptions::dp each rank passes its rows of the global mini-batch: token / pair counts,
// gradients and the guard's scalars are reduced over the ranks, so every rank takes the step one
// process would take on the whole mini-batch.
// Deliberately not here: data loading, tokenization, pair construction (the trainer builds the
// SequenceBatches), reward-model training (its own loss).
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "trainer/learner/data_parallel_hooks.h"
#include "trainer/learner/dpo_loss.h"
#include "trainer/learner/lr_schedule.h"
#include "trainer/learner/numerics_guard.h"
#include "trainer/learner/sequence_batch.h"

namespace torch::optim {
class Optimizer;
}
namespace keel::models {
class Transformer;
}

namespace keel::learner {

struct SupervisedOptions {
  int micro_batch_size = 16;  ///< rows (SFT) or pairs (DPO) per forward/backward
  bool padding_free = false;  ///< forwards over the rows' real tokens only (LogprobOptions::padding_free)
  int64_t max_tokens_per_micro_batch = 0;  ///< > 0: micro-batches also capped in real tokens (a DPO pair's two rows count)
  double grad_clip = 1.0;     ///< 0 = off (the norm is still measured)
  LrScheduleOptions lr;
  const DataParallelHooks* dp = nullptr;  ///< several ranks, each with its rows (null: one process)
};

struct StepResult {
  std::map<std::string, double> metrics;
  bool stepped = false;   ///< an optimizer step was taken (not skipped by the guard)
  bool rollback = false;  ///< the guard asked for a rollback
};

/// Sums the gradients of `params` over the ranks (dp, when set) and clips them
/// (reduce_and_clip_gradients), asks the guard, and on kOk sets the scheduled LR, steps the (AdamW)
/// optimizer and advances opt_step. Gradients are zeroed afterwards either way.
/// metrics: actor/grad_norm, actor/lr (when stepped).
StepResult guarded_step(const std::vector<at::Tensor>& params, torch::optim::Optimizer& optimizer, double loss,
                        double grad_clip, const LrScheduleOptions& lr, NumericsGuard& guard, int64_t& opt_step,
                        const DataParallelHooks* dp = nullptr);

/// One SFT step: loss = −Σ log p(response tokens) / (response tokens in the mini-batch).
/// metrics: sft/loss, sft/tokens, actor/grad_norm, actor/lr.
StepResult sft_update(models::Transformer& policy, torch::optim::Optimizer& optimizer, const SequenceBatch& batch,
                      const SupervisedOptions& o, NumericsGuard& guard, int64_t& opt_step);

/// One DPO step over pairs (chosen.rows(i), rejected.rows(i)) sharing prompts. `reference` null =
/// reference-free. metrics: the loss's (actor/dpo_loss, rewards/*), actor/grad_norm, actor/lr.
StepResult dpo_update(models::Transformer& policy, models::Transformer* reference, torch::optim::Optimizer& optimizer,
                      const SequenceBatch& chosen, const SequenceBatch& rejected, const DpoLossFn& loss_fn,
                      const DpoOptions& dpo, const SupervisedOptions& o, NumericsGuard& guard, int64_t& opt_step);

}  // namespace keel::learner
