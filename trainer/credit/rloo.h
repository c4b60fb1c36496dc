// RLOO leave-one-out baseline (spec §3.1; Ahmadian et al. 2024, verl compute_rloo_outcome_advantage):
// a_n = R_n − mean of the other K−1 rewards of its group = (R_n − mean_g)·K/(K−1); no std.
// Groups of one follow advantage.singleton: error (spec: K ≥ 2, OpenRLHF), zero (verl vectorized:
// a = 0) or raw (verl's loop form: no baseline, no rescale, a = R). Deliberately not here: the loss.
#pragma once

#include <ATen/core/Tensor.h>

#include "trainer/credit/advantage.h"

namespace keel::credit {

/// Leave-one-out scores of x [N] per group, in float64 and returned in x's dtype (exactly 0 for a
/// group of equal values); a group of one follows opts.singleton as above. → [N]
at::Tensor rloo_scores(const at::Tensor& x, const at::Tensor& group_ids, const AdvantageOptions& opts, const char* who);

/// Estimator "rloo": singleton. returns = advantages.
AdvantageOutput advantage_rloo(const AdvantageInputs& in, const AdvantageOptions& opts);

}  // namespace keel::credit
