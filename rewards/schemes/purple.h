// Lipschitz reward preconditioning — PURPLE (spec rewards.md A6; Blondé, Strasser, Kalousis,
// arXiv 2006.16785): the learned "minimax" discriminator reward r = −log(1 − D) and its
// pessimistic down-scaling r̃_t = κ_t · r_t with 0 < κ_t ≤ 1. The paper's κ schedule was not
// retrieved: INTERPRETATION — κ is a constant, or decays linearly / exponentially from `kappa` to
// `kappa_min` over `decay_steps`. Not here: the discriminator's gradient penalty (group D).
//
// Legend: N rewards.
#pragma once

#include <cstdint>
#include <string>

#include <ATen/core/Tensor.h>

namespace keel::config {
class Reader;
}

namespace keel::rewards {

struct PurpleOptions {
  double kappa = 1.0;                 ///< κ at step 0, in (0, 1]
  std::string schedule = "constant";  ///< constant | linear | exponential
  double kappa_min = 1.0;             ///< κ reached after decay_steps (linear / exponential)
  int64_t decay_steps = 1;
};

/// r = −log(1 − D) [N] for discriminator outputs D [N] in [0, 1), computed as −log1p(−D).
at::Tensor discriminator_reward(const at::Tensor& d);
/// −log(1 − σ(logit)) = softplus(logit) [N], the stable form when the discriminator gives logits.
at::Tensor discriminator_reward_from_logits(const at::Tensor& logit);
/// κ at a training step.
double purple_kappa(int64_t step, const PurpleOptions& o);
/// κ · r [N].
at::Tensor purple_precondition(const at::Tensor& r, double kappa);

void read_purple_options(config::Reader& r, PurpleOptions& o);

}  // namespace keel::rewards
