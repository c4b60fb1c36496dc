// LossOutput: what every loss of the learner returns (policy, value and DPO losses alike).
#pragma once

#include <map>
#include <string>

#include <torch/types.h>

namespace keel::learner {

/// A scalar loss to call backward() on, plus metrics under namespaced keys (verl style:
/// "actor/pg_loss", "critic/vf_loss", "rewards/accuracies"). Loss-valued metrics are this
/// micro-batch's contribution (they sum to the mini-batch value); diagnostic metrics (clip
/// fractions, ppo_kl, entropy) are means over this micro-batch's valid tokens or rows.
struct LossOutput {
  torch::Tensor loss;                     ///< [] scalar, differentiable
  std::map<std::string, double> metrics;  ///< no logging in the math: the trainer logs these
};

}  // namespace keel::learner
