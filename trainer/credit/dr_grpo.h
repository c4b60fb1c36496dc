// Dr. GRPO advantage (spec §2.2; Liu et al. 2025, arXiv 2503.20783): a_n = R_n − mean_g, no std
// division, so no per-question difficulty re-weighting. Its constant-normaliser aggregation
// (seq-mean-token-sum-norm) belongs to the loss side (trainer/learner/), not here.
#pragma once

#include "trainer/credit/advantage.h"

namespace keel::credit {

/// Estimator "dr_grpo": GRPO with norm_by_std forced off; advantage.singleton as grpo's (raw: a = R).
/// returns = advantages.
AdvantageOutput advantage_dr_grpo(const AdvantageInputs& in, const AdvantageOptions& opts);

}  // namespace keel::credit
