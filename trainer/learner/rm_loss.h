// Reward-model training losses of spec/rewards.md group D (D1, D2): the Bradley–Terry pairwise
// loss with its Reg / margin / label-smoothing variants, and the preference strength of a pair
// measured by an ensemble of reward models. Pure functions over score tensors — the model, the
// tokenizer and the optimizer are the trainer's business (trainer/cli/cmd_train_rm.cpp).
// Deliberately not here: ODIN's two-head loss (D3, rm_odin_loss.h), ONI's online classifiers (D4),
// the gradient-penalised discriminator (D6, rm_grad_penalty.h).
//
// Shape legend: B preference pairs, M ensemble members.
#pragma once

#include <cstdint>

#include <torch/types.h>

#include "trainer/learner/loss_output.h"

namespace keel::learner {

struct RmLossOptions {
  /// α of label smoothing (Secrets of RLHF II eq. 5): −[(1−α)·logσ(z) + α·logσ(z')], see bt_loss. In [0, 0.5).
  double label_smoothing = 0.0;
  /// λ of the PAR repo's "Reg" variant: + λ·(r_c² + r_r²) per pair (PAR default 0.005; 0 = off).
  double reg_lambda = 0.0;
};

struct RmLossInputs {
  torch::Tensor chosen_rewards;    ///< [B] r(x, y_c), the reward head at the last real token
  torch::Tensor rejected_rewards;  ///< [B] r(x, y_r)
  /// [B] per-pair margin m (Llama 2 discrete margins, or the ensemble strength μ̂ for the adaptive
  /// margin); undefined = no margin.
  torch::Tensor margins;
  /// The loss is Σ_pairs ℓ / denominator; 0 = B (a plain mean). Micro-batched training passes
  /// the mini-batch's pair count so that the micro-batch losses sum to the mini-batch mean.
  double denominator = 0;
};

/// Per-pair Bradley–Terry loss [B] (spec D1), Δ = r_c − r_r:
///   ℓ = −(1−α)·logσ(Δ − m) − α·logσ(−Δ − m) + λ·(r_c² + r_r²)
/// [interp] with both a margin and label smoothing, the smoothed ("swapped") term is the BT loss of
/// the swapped pair with the same margin, −logσ(r_r − r_c − m); the spec gives the two variants only
/// separately (they agree with it whenever m = 0 or α = 0). logσ is computed as −softplus(−z).
torch::Tensor bt_loss_per_pair(const RmLossInputs& in, const RmLossOptions& opt);

/// Σ bt_loss_per_pair / denominator, plus metrics over this batch's pairs:
///   rm/loss (this batch's contribution), rm/accuracy (fraction with r_c > r_r),
///   rm/margin_mean (mean r_c − r_r), rm/chosen_mean, rm/rejected_mean.
LossOutput bt_loss(const RmLossInputs& in, const RmLossOptions& opt);

/// Preference strength of each pair from M reward models (spec D2, Secrets of RLHF II):
/// d_{i,m} = r_m(x, y_c) − r_m(x, y_r); μ̂_i = mean_m d_{i,m}; σ̂_i = population std over m.
struct PreferenceStrength {
  torch::Tensor mean;  ///< [B] μ̂ (< 0: likely mislabelled; the adaptive margin of D1)
  torch::Tensor std;   ///< [B] σ̂ (population: divides by M)
};

/// chosen [M, B], rejected [M, B] -> μ̂, σ̂ [B]. M >= 1 (σ̂ = 0 for M = 1).
PreferenceStrength preference_strength(const torch::Tensor& chosen, const torch::Tensor& rejected);

}  // namespace keel::learner
