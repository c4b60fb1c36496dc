// GAE — generalized advantage estimation with a critic (spec §1.1; verl compute_gae_advantage_return,
// OpenRLHF get_advantages_and_returns). Backwards per row; masked (tool / observation) tokens are
// skipped: nextV and lastA jump over them, so the TD chain links consecutive valid tokens only.
// returns = A + V before whitening; then optional batch-global masked whitening.
// Deliberately not here: the value loss (trainer/learner/).
#pragma once

#include <ATen/core/Tensor.h>

#include "trainer/credit/advantage.h"

namespace keel::credit {

/// Raw GAE advantages and returns of rewards [N, T] (already incl. any KL term), values [N, T],
/// mask [N, T] — no whitening, advantages NOT masked (masked positions carry lastA, as in verl).
std::pair<at::Tensor, at::Tensor> gae_scan(const at::Tensor& rewards, const at::Tensor& values,
                                           const at::Tensor& mask, double gamma, double lam);

/// Estimator "gae": needs values; adds kl_rewards when present; gamma, lam, whiten,
/// gae.whiten_var. Advantages are masked; returns are the raw A + V (meaningful where m = 1).
AdvantageOutput advantage_gae(const AdvantageInputs& in, const AdvantageOptions& opts);

}  // namespace keel::credit
