// ODIN reward-model loss (spec/rewards.md D3; Chen et al. 2024 "ODIN: Disentangled Reward Mitigates
// Hacking in RLHF", as used by the PAR repo's baselines): the reward model carries two scalar heads
// on the same last-token hidden state, quality r_Q and length r_L. The Bradley–Terry loss trains
// their sum; two extra terms push response length into r_L and out of r_Q:
//
//   L = BT(r_Q + r_L)  +  w_len · ( |ρ(r_Q, len)| − ρ(r_L, len) )  +  w_orth · |cos(w_Q, w_L)|
//
// ρ is the Pearson correlation over the batch's chosen + rejected responses (2B values), len the
// response length in tokens, w_Q / w_L the two heads' weight vectors. Only r_Q is used at RL time.
// Pure functions over tensors; the model and the heads' storage are the trainer's business
// (trainer/cli/cmd_train_rm.cpp). Deliberately not here: the plain BT loss (rm_loss.h).
//
// Shape legend: B preference pairs, H hidden size, n values of a correlation.
#pragma once

#include <torch/types.h>

#include "trainer/learner/loss_output.h"
#include "trainer/learner/rm_loss.h"

namespace keel::learner {

struct OdinLossOptions {
  /// Weight of |ρ(r_Q, len)| − ρ(r_L, len) (the PAR repo's reward_odin_L, default 1.0).
  double length_weight = 1.0;
  /// Weight of the heads' orthogonality penalty |cos(w_Q, w_L)| (PAR's reward_odin_O, default 1.0).
  double ortho_weight = 1.0;
  /// Margin / label smoothing / Reg of the BT term, applied to r_Q + r_L.
  RmLossOptions bt;
};

struct OdinLossInputs {
  torch::Tensor chosen_quality;    ///< [B] r_Q(x, y_c)
  torch::Tensor rejected_quality;  ///< [B] r_Q(x, y_r)
  torch::Tensor chosen_length;     ///< [B] r_L(x, y_c)
  torch::Tensor rejected_length;   ///< [B] r_L(x, y_r)
  torch::Tensor chosen_tokens;     ///< [B] response length of y_c in tokens (any real dtype)
  torch::Tensor rejected_tokens;   ///< [B] response length of y_r in tokens
  torch::Tensor quality_head;      ///< [H] or [1, H] w_Q (the saved score.weight)
  torch::Tensor length_head;       ///< [H] or [1, H] w_L
  torch::Tensor margins;           ///< [B] or undefined, as RmLossInputs::margins
  /// The BT term is Σ_pairs ℓ / denominator (0 = B), as RmLossInputs::denominator.
  double denominator = 0;
  /// Factor on the correlation and orthogonality terms. [interp] micro-batched training computes ρ
  /// over each micro-batch (not the whole mini-batch, as PAR does over its global batch) and passes
  /// micro/mini here, so the terms sum to one mini-batch's worth; identical when micro == mini.
  double term_scale = 1.0;
};

/// ρ(x, y) = Σ (x−x̄)(y−ȳ) / sqrt(Σ(x−x̄)² · Σ(y−ȳ)² + 1e-16): x, y [n] -> []. The 1e-16 keeps a
/// constant x or y (ρ = 0) finite and differentiable. n >= 1.
torch::Tensor pearson_correlation(const torch::Tensor& x, const torch::Tensor& y);

/// |w_Q · w_L| / (max(‖w_Q‖, 1e-8) · max(‖w_L‖, 1e-8)) -> []. [interp] the spec says only
/// "orthogonality penalty"; this is the form of ODIN's released two-head model (RLHFlow's
/// re-implementation): the absolute cosine of the row-normalised head weights.
torch::Tensor head_orthogonality(const torch::Tensor& quality_head, const torch::Tensor& length_head);

/// The ODIN loss above. Metrics: rm/loss (total contribution), rm/accuracy, rm/margin_mean,
/// rm/chosen_mean, rm/rejected_mean (all of r_Q + r_L, as bt_loss), rm/quality_accuracy (r_Q alone),
/// odin/quality_length_corr ρ(r_Q, len), odin/length_head_corr ρ(r_L, len), odin/head_cosine.
LossOutput odin_loss(const OdinLossInputs& in, const OdinLossOptions& opt);

}  // namespace keel::learner
