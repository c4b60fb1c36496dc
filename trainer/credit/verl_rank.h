// VERL — Velocity-Exploiting Rank-Learning advantage shaping (spec §12; arXiv 2509.23808;
// hf618/VERL compute_advantage): response-level hidden-state metrics (effective rank ER, its
// velocity ERV and acceleration ERA), their relative deviations from EMA baselines carried across
// steps, a bounded non-negative bonus A = A0 + min(relu(aux), |A0|/κ) on a GRPO or GAE base.
// Unlike the released code, aux is computed whenever add_adv or add_reward is set (spec §12.3).
// Deliberately not here: the rollout pass that returns hidden states.
#pragma once

#include <array>
#include <cstdint>

#include <ATen/core/Tensor.h>

#include "trainer/credit/advantage.h"

namespace keel::credit {

/// State keys (AdvantageOutput::state): EMA baselines of ER, ERV, ERA and of the mean task reward.
inline constexpr const char* kVerlMidEr = "verl_rank/mid_er";
inline constexpr const char* kVerlMidErv = "verl_rank/mid_erv";
inline constexpr const char* kVerlMidEra = "verl_rank/mid_era";
inline constexpr const char* kVerlEmaPerf = "verl_rank/ema_perf";

/// ER from singular values σ [k]: p = σ/(Σσ + 1e-8), ER = exp(−Σ p·log(p + 1e-8)).
double effective_rank_from_singular_values(const at::Tensor& sigma);
/// ER of hidden states H [L, D] after centring the rows (ER of an empty H is 0).
double effective_rank(const at::Tensor& hidden);
/// {ER, ERV, ERA} of one response H [L, D] (§12.1): keep the last max_seq_len rows; E_k = ER of the
/// prefixes ending at t = s, 2s, … < L; diff_k = E_k − mean(E_0..E_{k−1}) (k ≥ 1),
/// diff2_k = diff_k − diff_{k−1} (k ≥ 2); ERV = mean diff, ERA = mean diff2 (0 when empty).
std::array<double, 3> rank_metrics(const at::Tensor& hidden, int64_t stride, int64_t max_seq_len);
/// rank_metrics of every row's valid tokens: hidden [N, T, D], mask [N, T] → [N, 3] float64
/// (ER, ERV, ERA); empty rows give 0.
at::Tensor response_rank_metrics(const at::Tensor& hidden, const at::Tensor& mask, int64_t stride, int64_t max_seq_len);

/// aux (§12.2) from deviations dev_* (already clamped to ±5): tend = sigmoid(gain·dev_era),
/// aux = scale·(tanh(dev_er)·tend + tanh(dev_erv)·(1 − tend)). Tensors of equal shape.
at::Tensor verl_rank_aux(const at::Tensor& dev_er, const at::Tensor& dev_erv, const at::Tensor& dev_era, double gain,
                         double scale);
/// A = A0 + min(relu(aux), |A0|/κ) (§12.3). a0 [N, T], aux [N] (or broadcastable).
at::Tensor verl_rank_shape(const at::Tensor& a0, const at::Tensor& aux, double kappa);

/// Estimator "verl_rank": verl.* plus the base estimator's options. rank_metrics [N, 3], or
/// hidden_states [N, T, D] to compute them; values when verl.base is gae. No aux on the first step
/// (empty state). The returned state holds the EMA baselines updated with this batch's means.
AdvantageOutput advantage_verl_rank(const AdvantageInputs& in, const AdvantageOptions& opts);

}  // namespace keel::credit
