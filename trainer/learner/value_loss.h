// Clipped value (critic) loss of PPO (spec §1.3, verl compute_value_loss):
//   vclip = clamp(vpred, V_old − ε_v, V_old + ε_v);  ℓ = max((vpred − ret)², (vclip − ret)²);
//   L_V = 0.5·agg(ℓ, m, mode)
// with the same mini-batch-global aggregation as the policy losses (loss_agg.h).
//
// Deliberately not here: the critic model, GAE returns (trainer/credit/), the critic optimizer.
//
// Shape legend: N rows (samples), T padded response length.
#pragma once

#include <map>
#include <string>

#include <torch/types.h>

#include "trainer/learner/loss_agg.h"
#include "trainer/learner/loss_output.h"

namespace keel::learner {

struct ValueLossInputs {
  torch::Tensor values;         ///< [N, T] vpred of the critic being trained (requires grad)
  torch::Tensor values_old;     ///< [N, T] V_old, the critic's values at rollout time
  torch::Tensor returns;        ///< [N, T] value targets (GAE returns)
  torch::Tensor response_mask;  ///< [N, T] 1 on valid tokens
  AggContext agg;               ///< global denominators of the mini-batch
};

struct ValueLossOptions {
  double clip = 0.5;  ///< ε_v (verl critic.cliprange_value); <= 0 turns clipping off
  AggOptions agg;     ///< aggregation mode (config learner.loss_agg)
};

/// loss = 0.5·agg(ℓ) (this micro-batch's contribution); metrics critic/vf_loss (same value),
/// critic/vf_clipfrac (local mean of [clipped term > unclipped term]), critic/vpred_mean.
LossOutput value_loss(const ValueLossInputs& in, const ValueLossOptions& opts);

}  // namespace keel::learner
