// Turn-level dense credit for multi-turn agents (spec §10.2; Wang & Ammanabrolu, arXiv 2510.01132;
// pearls-lab/meow-tea-taro): the reward placement of `agentic.reward.density` (single | dense) and
// the critic-free turn-level advantage `turn_grpo` — INTERPRETATION (spec §10.2): turn returns
// G_{i,k} = Σ_{j≥k} γ^{j−k} r_{i,j}, normalised per turn index across the group (as SS-GRPO with
// λ_{k,j} = γ^{j−k}), given to the turn's action (+SEP) tokens.
// Deliberately not here: the environment loop that records the turns.
#pragma once

#include <cstdint>
#include <vector>

#include <ATen/core/Tensor.h>

#include "trainer/credit/advantage.h"

namespace keel::credit {

/// Token rewards [T] (float64) of one response from its per-turn SEP positions (§10.2):
/// dense: num = final_score > 0 ? #{k: interm[k] > 0} : max_total_rewards, num = max(1, num),
/// r[sep_pos[k]] = interm[k]/num; single: r[sep_pos[last]] = final_score. Positions ≥ T (truncated)
/// are skipped.
at::Tensor place_turn_rewards(const std::vector<int64_t>& sep_pos, const std::vector<double>& interm,
                              double final_score, double max_total_rewards, bool dense, int64_t t_len);

/// Estimator "turn_grpo": needs turn_ids [N, T] (turn index of each action / SEP token, −1 for
/// observation and padding); turn rewards r_{i,k} = Σ of token_rewards over turn k's tokens.
/// gamma, eps, norm_by_std. A turn's statistics use only the group's rollouts that reached it;
/// INTERPRETATION: a turn reached by one rollout of a larger group gets 0 (its own mean).
/// Statistics in float64: equal turn returns give exactly 0. A group of one follows
/// advantage.singleton: error throws, zero gives 0, raw gives each turn its own return without a
/// baseline, G/(1+eps) (G without norm_by_std). returns = the turn returns.
AdvantageOutput advantage_turn_grpo(const AdvantageInputs& in, const AdvantageOptions& opts);

}  // namespace keel::credit
