// SPO win-rate rewards (spec §8.4; Swamy et al., ICML 2024, arXiv 2401.04056): every sample of a
// group is compared with every other by a preference oracle and its reward is its mean win
// probability r_i = (1/(G−1)) Σ_{j≠i} P(y_i ≻ y_j); then a GRPO or RLOO advantage over those.
// The oracle is spo.judge: a pairwise judge model (AdvantageInputs::preference), or the sequence
// rewards' order when the config names reward_order.
// Deliberately not here: a judge model (plugged in by the rewards side) and SPPO.
#pragma once

#include <ATen/core/Tensor.h>

#include "trainer/credit/advantage.h"

namespace keel::credit {

/// Win rates [N] of every row against the rest of its group. symmetric: one call per unordered
/// pair with P(j≻i) = 1 − P(i≻j); else both orders, P̂(i≻j) = (P(i,j) + 1 − P(j,i))/2.
/// A group of one has nothing to compare with and gets 0 without an oracle call (the estimator
/// applies advantage.singleton to it). `calls` (optional) receives the number of oracle calls.
at::Tensor spo_win_rates(const at::Tensor& group_ids, const PreferenceOracle& preference, bool symmetric,
                         int64_t* calls = nullptr);

/// The oracle of spo.judge "reward_order": P(a ≻ b) = 1 / 0.5 / 0 as R_a > / = / < R_b, rewards [N]
/// (copied; the oracle owns them). Antisymmetric, so symmetric and both-order win rates agree.
PreferenceOracle spo_reward_order_preference(const at::Tensor& rewards);

/// Estimator "spo_winrate": spo.judge "none" needs AdvantageInputs::preference (a judge model);
/// "reward_order" builds spo_reward_order_preference from R = Σ_t token_rewards and ignores it.
/// spo.base "grpo" (eps, norm_by_std, grpo.*) or "rloo". With judge none token_rewards are not
/// read (the oracle is the reward). Identical rewards under reward_order give every row win rate
/// 0.5 and a = 0 (§8.4 "all ties → zero advantage"). advantage.singleton: error throws, zero
/// gives a lone sample a = 0; raw is refused (a lone sample has no win rate, §8.4 "G=1 undefined").
AdvantageOutput advantage_spo_winrate(const AdvantageInputs& in, const AdvantageOptions& opts);

}  // namespace keel::credit
