// DAPO soft overlong punishment (spec §2.3 item 4; Yu et al. 2025 arXiv 2503.14476; verl
// reward_manager/dapo.py), a sequence-level reward term added to the outcome reward BEFORE the
// advantage estimator:
//   L_exp = L_max − L_cache;   penalty(L) = min(−(L − L_exp)/L_cache · f, 0)
// where L is the number of valid response tokens.
//
// Deliberately not here: adding it to the reward (the reward pipeline / trainer does that, guarded
// by config overlong.enable), and "overlong filtering" (masking truncated samples from the loss).
#pragma once

#include <cstdint>

#include <torch/types.h>

namespace keel::learner {

struct OverlongOptions {
  int64_t max_len = 20480;     ///< L_max: the rollout's maximum response length (16384 + 4096 in DAPO)
  int64_t buffer_len = 4096;   ///< L_cache (config overlong.buffer_len)
  double penalty_factor = 1.0; ///< f (config overlong.penalty_factor)
};

/// The penalty (<= 0) of one response of `length` valid tokens. Beyond L_max it keeps growing
/// linearly (verl does not cap it; generation never exceeds L_max anyway).
double overlong_penalty(int64_t length, const OverlongOptions& opts);

/// Vectorised form: lengths [N] (integer or floating) → penalties [N] (float64 unless lengths is
/// floating, then the same dtype).
torch::Tensor overlong_penalty(const torch::Tensor& lengths, const OverlongOptions& opts);

}  // namespace keel::learner
