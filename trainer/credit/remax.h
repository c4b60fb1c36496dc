// ReMax (spec §3.3; Li et al. 2023, arXiv 2310.10505; verl compute_remax_outcome_advantage): the
// baseline is the reward of one extra greedy response per prompt, broadcast to its samples.
// A[n,t] = Σ_{k≥t} m·r_tok[n,k] − b_n·m[n,t]; returns = reward-to-go. No discount (as verl).
// Deliberately not here: generating and scoring the greedy response (rollout / rewards).
#pragma once

#include "trainer/credit/advantage.h"

namespace keel::credit {

/// Estimator "remax": needs baseline_rewards [N]; adds kl_rewards when present.
AdvantageOutput advantage_remax(const AdvantageInputs& in, const AdvantageOptions& opts);

}  // namespace keel::credit
