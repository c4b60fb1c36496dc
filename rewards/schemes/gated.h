// Gated reward channels: G-RA gated accumulation (spec rewards.md B1; Sun et al., arXiv
// 2508.10548) and ChatShopBuddy's hierarchical conditional gating (B2; arXiv 2603.06065), as one
// DAG of channels with thresholds (the spec's suggestion).
//
//   channel c is *counted* iff every channel d it depends on is counted and value_d ≥ threshold_d
//   R = Σ_c weight_c · counted_c · value_c
//
// Dependencies come from `depends_on` (names) and from `priority` (a channel depends on every
// channel with a strictly smaller priority number; 0 = highest). A channel's own threshold only
// gates its dependents. G-RA is the two-channel case {outcome; steps depends_on outcome}:
//   R = r_high + 1[r_high ≥ δ]·Σ_t r_low,t.
// HRM [interp] is {format; correct depends_on format (τ = 1); quality depends_on correct (τ_c);
// process}: R = g1·(w_c·correct + g2·w_q·quality) + w_p·process.
// Both papers had only summaries reachable; the outcome-level values, δ, the HRM chain and the
// per-turn placement are the spec's INTERPRETATION and are defaults here, all configurable.
//
// Legend: N episodes, C channels, T turns.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

namespace keel::config {
class Reader;
}

namespace keel::rewards {

struct GatedChannel {
  std::string name;
  double weight = 1.0;
  double threshold = 0.0;               ///< dependents are counted only if value ≥ threshold
  int64_t priority = -1;                ///< −1 = no priority ordering for this channel
  std::vector<std::string> depends_on;  ///< names of channels this one is gated on
  /// Where the channel's value comes from, a signal spec (rewards/schemes/register_util.h); empty =
  /// prior.<name>, the earlier reward component named like the channel. Read by the registry glue.
  std::string input;
};

struct GatedOptions {
  std::vector<GatedChannel> channels;
};

/// For each channel, the indices of all channels it depends on (directly, by name or priority).
/// Throws keel::Error for an unknown name, a self-dependency or a cycle.
std::vector<std::vector<int64_t>> gated_dependencies(const GatedOptions& o);
/// counted [N, C] bool for channel values [N, C] (columns in channel order).
at::Tensor gated_counted(const at::Tensor& values, const GatedOptions& o);
/// R [N] = Σ_c weight_c · counted_c · value_c.
at::Tensor gated_reward(const at::Tensor& values, const GatedOptions& o);

/// The default HRM chain [interp]: format (w 0, τ 1), correct (w_c 0.5, τ_c 1.0, after format),
/// quality (w_q 0.3, after correct), process (w_p 0.2, ungated).
GatedOptions hierarchical_default_options();

// ---- G-RA specialisation ------------------------------------------------------------------------

struct GraOptions {
  bool gated = true;            ///< false = D-RA (plain sum), the paper's collapsing baseline
  double threshold = 0.0;       ///< δ
  // [interp] values of the four ordered SWE outcome levels.
  double no_submit = -1.0;
  double empty_patch = -0.5;
  double fail = 0.0;
  double pass = 1.0;
};

/// The value of a named outcome level: no_submit | empty_patch | fail | pass (keel::Error otherwise).
double gra_outcome_value(const std::string& level, const GraOptions& o);
/// R [N] = r_high + gate·Σ_t r_low,t. r_high [N], r_low [N, T], turn_mask [N, T] bool (undefined = all).
at::Tensor gra_reward(const at::Tensor& r_high, const at::Tensor& r_low, const at::Tensor& turn_mask,
                      const GraOptions& o);
/// Per-turn placement [N, T] ([interp], spec C4): r_low,t on its turn when the gate is open, r_high
/// added on the last valid turn. Rows without a valid turn get all zeros. Sums to gra_reward.
at::Tensor gra_turn_rewards(const at::Tensor& r_high, const at::Tensor& r_low, const at::Tensor& turn_mask,
                            const GraOptions& o);

/// Reads `channels: [{name, weight, threshold, priority, depends_on}]` and checks the DAG.
void read_gated_options(config::Reader& r, GatedOptions& o);
void read_gra_options(config::Reader& r, GraOptions& o);

}  // namespace keel::rewards
