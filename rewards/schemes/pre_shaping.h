// The two steps the PAR repo applies to a raw RM reward before its one shaping transform (spec
// rewards.md A2, items 1–2): a linear length penalty and a ceiling. Order in the newer code:
// length penalty → ceil → exactly one of {vanilla, meanstd, clip, minmax, lsc, par, sigmoid family}.
// Not here: DAPO's soft overlong penalty (dapo_overlong.h) and the running-statistics transforms
// (running_norm.h).
//
// Legend: N responses.
#pragma once

#include <optional>

#include <ATen/core/Tensor.h>

namespace keel::config {
class Reader;
}

namespace keel::rewards {

struct LengthPenaltyOptions {
  bool enabled = true;       ///< older PAR config: on by default
  double valid_len = 300;    ///< L0, tokens without penalty (newer presets: 550 UltraFeedback, 400 HH)
  double per_token = 0.01;   ///< c, penalty per token beyond L0
};

/// r − c·max(0, L − L0); r [N], length [N] (response tokens, any numeric dtype) -> [N].
/// Returns r unchanged when !enabled.
at::Tensor length_penalty_reward(const at::Tensor& r, const at::Tensor& length, const LengthPenaltyOptions& o);

struct CeilOptions {
  std::optional<double> ceil;  ///< reward_ceil; unset = off (default)
};

/// min(r, ceil) [N]; r unchanged when the ceiling is off.
at::Tensor ceil_reward(const at::Tensor& r, const CeilOptions& o);

void read_length_penalty_options(config::Reader& r, LengthPenaltyOptions& o);
/// Reads {value: <float>}; an absent value keeps the ceiling off.
void read_ceil_options(config::Reader& r, CeilOptions& o);

}  // namespace keel::rewards
