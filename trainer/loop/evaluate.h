// Evaluation on the held-out prompts (rank 0, at eval.every steps). Reads the policy (and the
// reference for pairs), the data's eval set and the eval section; returns eval/* metrics and leaves
// the policy in eval mode. A stateful reward's state is put back afterwards (RewardStateRestorer).
#pragma once

#include "trainer/metrics/metrics.h"

namespace keel::loop {

struct RunState;

/// pass@1 (greedy) and pass@k (k samples at the rollout temperature) on the held-out prompts; {}
/// without a reward.
metrics::Metrics evaluate(RunState& s);

/// Offline DPO: held-out pairs' implicit-reward accuracy, β·(ℓ_c − ℓ_c,ref) > β·(ℓ_r − ℓ_r,ref).
metrics::Metrics evaluate_pairs(RunState& s);

}  // namespace keel::loop
