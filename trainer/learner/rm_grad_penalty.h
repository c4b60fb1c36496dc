// Discriminator-style reward model with a gradient penalty (spec/rewards.md D6 and A6; Blondé,
// Strasser, Kalousis, "Lipschitzness Is All You Need To Tame Off-policy Generative Adversarial
// Imitation Learning", arXiv 2006.16785): chosen responses play the expert, rejected ones the agent,
// D = σ(score), and
//
//   L_D = BCE(D(expert), 1) + BCE(D(agent), 0) + λ · E_ẑ[ max(0, ‖∇_ẑ f(ẑ)‖₂ − k)² ],  f = D or the logit
//   ẑ   = ε·z_expert + (1−ε)·z_agent,  ε ~ U(0, 1) per pair        ("wgan" interpolation)
//
// (two-sided: (‖∇f‖ − k)²). The reward the policy then sees is r = −log(1 − D) = softplus(score)
// (the reward_model scheme's normalize: minimax). Pure functions over tensors and a scoring
// callable; which inputs z are (the input embeddings for a text RM) is the caller's business.
// Deliberately not here: the Bradley–Terry loss (rm_loss.h), DRAGAN / NAGARD perturbations.
//
// Shape legend: B pairs (= interpolates), ... the per-sample input dims (for a text RM [T, H]).
#pragma once

#include <functional>

#include <torch/types.h>

namespace keel::learner {

struct GradPenaltyOptions {
  double lambda = 10.0;   ///< λ (the authors' grad_pen_scale)
  double target = 1.0;    ///< k (grad_pen_targ): the Lipschitz constant aimed at
  bool one_sided = true;  ///< max(0, ‖∇‖ − k)² (true) or (‖∇‖ − k)² (false)
};

/// Per-sample penalty [B] from gradient norms [B]: λ·max(0, n − k)² or λ·(n − k)².
torch::Tensor grad_penalty_from_norms(const torch::Tensor& grad_norms, const GradPenaltyOptions& opt);

/// Per-pair discriminator loss [B] for scores (logits) of expert [B] and agent [B] samples:
/// BCE(σ(s_e), 1) + BCE(σ(s_a), 0) = softplus(−s_e) + softplus(s_a).
torch::Tensor discriminator_loss_per_pair(const torch::Tensor& expert_scores, const torch::Tensor& agent_scores);

struct InterpolatedGradPenalty {
  torch::Tensor penalty;     ///< [B] λ·(...)², differentiable w.r.t. whatever score_fn closes over
  torch::Tensor grad_norms;  ///< [B] ‖∇_ẑ f(ẑ)‖₂ per sample (detached)
};

/// Interpolates ẑ = ε·z_expert + (1−ε)·z_agent (z [B, ...] detached, ε [B] in [0, 1]), evaluates
/// f = score_fn(ẑ) [B], takes ∇_ẑ Σ f with create_graph (so the penalty backpropagates into the
/// parameters score_fn uses: double backward), and returns the penalty per sample.
/// ‖g‖₂ is computed as sqrt(Σ g² + 1e-12) (finite gradient at g = 0).
InterpolatedGradPenalty interpolated_grad_penalty(const std::function<torch::Tensor(const torch::Tensor&)>& score_fn,
                                                  const torch::Tensor& z_expert, const torch::Tensor& z_agent,
                                                  const torch::Tensor& eps, const GradPenaltyOptions& opt);

}  // namespace keel::learner
