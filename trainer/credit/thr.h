// THR / NTHR token reweighting of GRPO advantages (spec §6; Deng et al., arXiv 2510.03669 and the
// same authors' NTHR). Token influence score s[t] = g[t]ᵀ·M⁺·h[t] with M⁺ = Σ over the group's
// correct tokens of g·hᵀ (g = prediction error on the group's vocabulary V*, h = final hidden
// state); anchor τ = β·min over correct responses of their mean score.
// INTERPRETATION (spec §6.2): the THR reweighting rule itself — the paper text was not readable.
// Deliberately not here: the old-policy forward pass that yields h and q (the learner runs it).
#pragma once

#include <utility>

#include <ATen/core/Tensor.h>

#include "trainer/credit/advantage.h"

namespace keel::credit {

/// Prediction errors restricted to each group's vocabulary V* (§6.1), from the sampled tokens and
/// the old policy's next-token probabilities. token_ids [N, T] int64, probs [N, T, V], mask [N, T].
/// Returns {g [N, T, U], vocab [U]}: column u is token id vocab[u] (U = the batch's distinct valid
/// token ids); g = onehot(y) − q on V*, exactly 0 in columns outside the row's group V* and on
/// masked tokens, so group-wise inner products equal the spec's per-group ones. Not renormalised.
/// (No frequency cap on |V*| yet — the spec suggests one for long outputs.)
std::pair<at::Tensor, at::Tensor> thr_prediction_errors(const at::Tensor& token_ids, const at::Tensor& probs,
                                                        const at::Tensor& mask, const at::Tensor& group_ids);

/// Influence scores s [N, T] (0 on masked tokens) from hidden [N, T, D] and pred_errors [N, T, U];
/// `positive` [N] bool marks the correct responses. Accumulates in float32 (or float64 if given).
at::Tensor thr_token_scores(const at::Tensor& hidden, const at::Tensor& pred_errors, const at::Tensor& mask,
                            const at::Tensor& group_ids, const at::Tensor& positive);

/// Estimator "thr": GRPO advantages (eps, norm_by_std, singleton, grpo.*) reweighted per token, thr.*:
///   reweight  A'[n,t] = A_n·(1 + p·sign(A_n)·sign(s)) where |s| > τ, else A_n
///   thr_only  A'[n,t] = A_n·[|s| > τ]
///   nthr      incorrect rows: A'[n,t] = η·A_n where s > τ, η = 2|0.5 − N⁺/G|
/// Groups without a correct or without an incorrect response keep plain A. Needs token_scores
/// [N, T], or hidden_states + pred_errors; correctness [N] optional (INTERPRETATION: default R ≥ correct_threshold).
AdvantageOutput advantage_thr(const AdvantageInputs& in, const AdvantageOptions& opts);

}  // namespace keel::credit
