// REINFORCE++ and REINFORCE++-baseline (spec §3.2; Hu et al. 2025, arXiv 2501.03262; OpenRLHF
// `reinforce` / `reinforce_baseline`). Token rewards (outcome at the last valid token + optional
// KL-in-reward) → discounted return-to-go → batch-global masked whitening over all valid tokens.
// The baseline variant first subtracts the group mean of the outcome R (KL excluded).
// Deliberately not here: the KL estimator itself (kl_rewards arrives already scaled) and the loss.
#pragma once

#include "trainer/credit/advantage.h"

namespace keel::credit {

/// INTERPRETATION (spec §3.2 prefers "carry across holes" without fixing the detail): a carried
/// return skips masked tokens entirely — neither their reward nor a discount step — like GAE.
///
/// Estimator "reinforce_pp": gamma, whiten (false: advantages = returns), norm_by_std (false:
/// whitening only subtracts the mean — OpenRLHF no_std_norm), rpp.{reset_on_holes, whiten_var}.
/// returns = the return-to-go.
AdvantageOutput advantage_reinforce_pp(const AdvantageInputs& in, const AdvantageOptions& opts);

/// Estimator "reinforce_pp_baseline": R_n → R_n − mean_g(R) at the last valid token, then as above.
/// The group mean is taken in float64 and is exact for a group of equal rewards, whose outcome
/// then cancels exactly. A group of one follows advantage.singleton: error throws, zero uses its
/// own R as the baseline (R − R = 0, OpenRLHF), raw uses baseline 0 (the row is plain REINFORCE++).
/// Either way the row still carries its KL-in-reward and takes part in the batch whitening.
AdvantageOutput advantage_reinforce_pp_baseline(const AdvantageInputs& in, const AdvantageOptions& opts);

}  // namespace keel::credit
