// CMO — Correlation-Weighted Multi-Reward Optimization (spec rewards.md B4; Wi, Kim, Kim, arXiv
// 2603.18528, repo TheDarkKnight-21th/CMO flow_grpo/stat_tracking.py, branch "gdpo" + attr_binding).
// Produces advantages, not rewards (the spec asks for an advantage estimator `cmo`):
//   1. per prompt and concept k: A_ik = (r_ik − mean_i r_ik)/sqrt(var_i r_ik + 1e-8)  (population var,
//      padded entries (value −1) left out of mean / var)
//   2. ρ = Pearson correlation (K×K) of the concept columns across the G rollouts, NaN -> 0
//   3. b_k = (Σ_j ρ_kj − 1)/(K − 1);  b_k := 1 if concept k has std ≤ min_std in the group
//   4. w = softmax((1 − b)/τ);  A_i = Σ_k w_k A_ik   (attr_binding; else the plain sum Σ_k A_ik)
//   5. every advantage of the batch re-standardised: (A − mean)/(std + 1e-8)  (population std)
// Correlation weighting is skipped for a group with any padded entry; INTERPRETATION: that group
// falls back to the plain sum, and padded entries contribute A_ik = 0.
// Not here: the per-time-step variant (one [N, K] call per step does it).
//
// Legend: N rollouts (G per prompt), K concept rewards.
#pragma once

#include <ATen/core/Tensor.h>

namespace keel::config {
class Reader;
}

namespace keel::rewards {

struct CmoOptions {
  double temperature = 0.5;   ///< τ
  double min_std = 1e-6;      ///< a concept with no more spread than this gets b_k = 1
  double pad_value = -1.0;    ///< marks a missing concept reward
  bool attr_binding = true;   ///< false = plain sum of per-concept advantages (GDPO)
  bool batch_standardize = true;
  double eps = 1e-8;          ///< in the variance and the final standardisation
};

struct CmoResult {
  at::Tensor advantages;  ///< [N]
  at::Tensor weights;     ///< [Gp, K] concept weights per prompt (dense group order; uniform 1 where skipped)
};

/// rewards [N, K], group_ids [N] int64.
CmoResult cmo_advantages(const at::Tensor& rewards, const at::Tensor& group_ids, const CmoOptions& o);

void read_cmo_options(config::Reader& r, CmoOptions& o);

}  // namespace keel::rewards
