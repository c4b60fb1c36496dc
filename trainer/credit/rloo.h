// RLOO leave-one-out baseline (spec §3.1; Ahmadian et al. 2024, verl compute_rloo_outcome_advantage):
// a_n = R_n − mean of the other K−1 rewards of its group = (R_n − mean_g)·K/(K−1); no std.
// Groups of one are an error (spec: K ≥ 2). Deliberately not here: the loss.
#pragma once

#include <ATen/core/Tensor.h>

#include "trainer/credit/advantage.h"

namespace keel::credit {

/// Leave-one-out scores of x [N] per group; throws for a group of one. → [N]
at::Tensor rloo_scores(const at::Tensor& x, const at::Tensor& group_ids, const char* who);

/// Estimator "rloo". returns = advantages.
AdvantageOutput advantage_rloo(const AdvantageInputs& in, const AdvantageOptions& opts);

}  // namespace keel::credit
