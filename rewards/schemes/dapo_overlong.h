// DAPO soft overlong penalty, for comparison with ARLCP (spec rewards.md A5b; arXiv 2503.14476,
// verl reward_manager/dapo.py):
//   L_exp = L_max − L_cache;  R_len = min(−(L − L_exp)/L_cache · f, 0) for L ≤ L_max, −f beyond
// It is added to the task reward by the caller. Not here: DAPO's overlong filtering (a loss mask).
//
// Legend: N responses.
#pragma once

#include <ATen/core/Tensor.h>

namespace keel::config {
class Reader;
}

namespace keel::rewards {

struct DapoOverlongOptions {
  double max_len = 20480;    ///< L_max
  double cache_len = 4096;   ///< L_cache (soft buffer before L_max)
  double factor = 1.0;       ///< f
};

/// Penalty [N] (≤ 0) for token lengths L [N]. INTERPRETATION: lengths beyond L_max (the code
/// cannot produce them) get the paper's −1, scaled by the factor: −f.
at::Tensor dapo_overlong_penalty(const at::Tensor& length, const DapoOverlongOptions& o);

void read_dapo_overlong_options(config::Reader& r, DapoOverlongOptions& o);

}  // namespace keel::rewards
