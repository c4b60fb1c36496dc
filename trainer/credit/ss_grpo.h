// SS-GRPO — stage-structured GRPO (spec §10.1; RubricEM, Li et al., arXiv 2605.10899 §3.3 eq. 1):
// each rollout is split into K tagged stages with a judge score per stage; the stage return is the
// stage's own score plus λ-weighted downstream scores, G_{i,k} = Σ_{j≥k} λ_{k,j} R_{i,j}, normalised
// per stage across the group's rollouts and given to that stage's tokens.
// Deliberately not here: stage tagging / judging (rewards side) and the loss.
#pragma once

#include <vector>

#include <ATen/core/Tensor.h>

#include "trainer/credit/advantage.h"

namespace keel::credit {

/// Stage returns G [N, K] = (R·present) · triu(Λ)ᵀ; lambda is row-major K×K.
at::Tensor ss_stage_returns(const at::Tensor& stage_rewards, const at::Tensor& present, const std::vector<double>& lambda);

/// Estimator "ss_grpo": needs stage_ids [N, T] and stage_rewards [N, K]; stage_present [N, K]
/// optional. eps, norm_by_std, ss.lambda (K must match). INTERPRETATION (spec): a missing stage
/// scores 0 in the returns and its rollout is left out of that stage's mean/std; a stage present
/// in only one rollout of a larger group gets 0. Statistics in float64: equal returns give exactly 0.
/// A group of one follows advantage.singleton: error throws, zero gives 0, raw gives each present
/// stage its own return without a baseline, G/(1+eps) (G without norm_by_std). Tokens with stage −1 get 0.
AdvantageOutput advantage_ss_grpo(const AdvantageInputs& in, const AdvantageOptions& opts);

}  // namespace keel::credit
