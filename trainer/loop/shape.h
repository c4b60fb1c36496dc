// Stage shape: the scored batch's rewards turned into what credit reads. Reads b.rewards,
// b.response_mask (and for kl.in_reward b.old_logprobs, b.ref_logprobs and the KL controller);
// fills b.rewards (+ the DAPO overlong penalty when overlong.enable), b.token_rewards (the sequence
// reward on each row's last response token) and reward/accuracy, overlong and KL metrics; returns
// the KL-in-reward token term for credit. Advances the KL controller.
#pragma once

#include <ATen/core/Tensor.h>

#include "trainer/metrics/metrics.h"
#include "trainer/rollout/rollout_batch.h"

namespace keel::loop {

struct RunState;

/// What shape() hands to credit beside the batch.
struct Shaped {
  at::Tensor kl_rewards;  ///< [B, T] the KL-in-reward term −β·KL_t (kl.in_reward), else undefined
};

Shaped shape(RunState& s, rollout::RolloutBatch& b, metrics::Metrics& m);

}  // namespace keel::loop
