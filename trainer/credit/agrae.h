// A-GRAE — asymmetric group-relative advantage estimation (spec §4; Yu et al., arXiv 2602.05548v3
// §5.1 eqs. 11–13; code Yu7-code/A-GRAE). GRPO advantages re-weighted per group by a curriculum
// that moves from easy to hard groups as the batch success rate ω rises, with positive
// (correct-trajectory) advantages attenuated by min(1, ω/α).
// Deliberately not replicated: the released code's grpo_weight annealing gate (a bug, §4 (c)).
#pragma once

#include "trainer/credit/advantage.h"

namespace keel::credit {

/// State key of the curriculum: the ω used this step (AdvantageOutput::state → next step's input).
inline constexpr const char* kAgraeOmegaKey = "agrae/omega";

/// Estimator "agrae": eps, norm_by_std (off = the Dr.GRPO base), agrae.*, and singleton as grpo's
/// (raw: the lone row's GRPO raw score R/(1+eps), then reweighted like any row; zero: 0).
///   ω_batch = mean R over all rows / r_max;  ω = momentum·ω_prev + (1−momentum)·ω_batch (ω_prev
///   from state, when present);  per group p = clamp(mean_g R / r_max, 0, 1);  A = GRPO score;
///   if 0 < p < 1:  paper  A ← (ω/2)·A/√p + ((1−ω)/2)·A/√(1−p)
///                  code   A ← (ω/2)·A/(√p+ε) + ((1−ω)/2)·A/(1−√p+ε)   (easy_term one_minus_sqrt_p)
///   if A > 0: A ← A·min(1, ω/α).
AdvantageOutput advantage_agrae(const AdvantageInputs& in, const AdvantageOptions& opts);

}  // namespace keel::credit
