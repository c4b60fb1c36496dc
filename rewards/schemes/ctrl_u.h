// Ctrl-U — uncertainty-aware reward weighting (spec rewards.md B6; Zhang et al., arXiv 2410.11236,
// repo grenoble-zhang/Ctrl-U train/ctrlu-reward.py):
//   u = λ_u · KL(p2 ‖ p1) over the class dimension, p = softmax(logits) of two evaluations
//   L_rew_w = mean(L_rew · exp(−u)) over the active elements,  L = s(step)·L_rew_w + mean(u)
//   s(step) = min(1, step / warmup_steps) · grad_scale
// LLM transfer (the spec's INTERPRETATION): two judgements of one response; u = KL of their label
// distributions, or |r1 − r2|²/2 for scalar rewards; reward = r̄ · exp(−λ_u·u).
//
// Legend: [*] any leading shape, C classes.
#pragma once

#include <cstdint>
#include <string>

#include <ATen/core/Tensor.h>

namespace keel::config {
class Reader;
}

namespace keel::rewards {

struct CtrlUOptions {
  std::string method = "kl_two_pass";  ///< kl_two_pass | scalar_sq
  double scale = 1.0;                  ///< λ_u (u_scale)
  double grad_scale = 0.1;             ///< reward-loss scale after warm-up
  int64_t warmup_steps = 0;            ///< 0 = no warm-up
};

/// u [*] = scale · Σ_c softmax(o2)_c (log_softmax(o2)_c − log_softmax(o1)_c); logits [*, C].
at::Tensor ctrlu_kl_uncertainty(const at::Tensor& logits1, const at::Tensor& logits2, double scale);
/// u [*] = scale · (r1 − r2)²/2 for two scalar evaluations.
at::Tensor ctrlu_scalar_uncertainty(const at::Tensor& r1, const at::Tensor& r2, double scale);
/// Uncertainty-weighted reward r̄ · exp(−u) [*], r̄ = (r1 + r2)/2.
at::Tensor ctrlu_weighted_reward(const at::Tensor& r1, const at::Tensor& r2, const at::Tensor& u);
/// s(step) = min(1, step/warmup_steps)·grad_scale.
double ctrlu_loss_scale(int64_t step, const CtrlUOptions& o);
/// s(step)·mean(L_rew·exp(−u)) + mean(u) over `active` [*] bool (undefined = all); a scalar tensor.
at::Tensor ctrlu_reward_loss(const at::Tensor& loss_rew, const at::Tensor& u, const at::Tensor& active, int64_t step,
                             const CtrlUOptions& o);

void read_ctrlu_options(config::Reader& r, CtrlUOptions& o);

}  // namespace keel::rewards
