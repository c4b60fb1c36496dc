// ARLCP — adaptive reflection penalty + complexity-calibrated length penalty (spec rewards.md A5;
// Yu et al., arXiv 2602.12113, repo ZeweiYu1/ARLCP src/rm.py and verl reward_manager/naive.py).
//   acc = 0:  R = 0
//   acc = 1:  s_ref = σ((n_ref − μ_ref)/(sd_ref + 1e-6)),  s_len = σ((L − μ_len)/(sd_len + 1e-6))
//             w1 = level of n_ref (0.05 ≤ 40 < 0.10 ≤ 80 < 0.15),  w2 = 0.20 − w1
//             R = 1 − w1·s_ref − w2·s_len
// μ and sd (sample std) are over the correct responses of the same prompt; fewer than 2 correct ->
// sd := 1, none -> μ := 0. The "complexity" is the reflection count of the response itself, as in
// the released code. Not here: answer grading (a verifier) — acc arrives as a tensor.
//
// Legend: N responses (G per prompt, identified by group_ids).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

namespace keel::config {
class Reader;
}

namespace keel::rewards {

struct ArlcpOptions {
  std::vector<std::string> keywords{"wait", "alternatively", "hold on", "another thought", "verify",
                                    "think again", "but", "however", "alternative", "check",
                                    "double-check", "oh", "hmm"};
  std::vector<double> thresholds{40, 80};          ///< n_ref level boundaries (≤ first -> level 0)
  std::vector<double> w1_levels{0.05, 0.10, 0.15};  ///< w1 per level
  double w_total = 0.2;                              ///< w1 + w2
  double std_eps = 1e-6;                             ///< added to sd in both z-scores
};

/// Reflection count: case-insensitive whole-word matches of every keyword, summed per keyword.
/// INTERPRETATION: keywords are counted independently, so "double-check" also counts one "check"
/// (the '-' is a word boundary), as separate per-keyword \b…\b searches would.
int64_t arlcp_reflection_count(const std::string& text, const std::vector<std::string>& keywords);
/// Format gate of the released code: no "<think>" and exactly one "</think>".
bool arlcp_format_ok(const std::string& text);
/// w1 [N] from n_ref [N].
at::Tensor arlcp_w1(const at::Tensor& n_ref, const ArlcpOptions& o);
/// Rewards [N] (float64). n_ref [N], length [N] (tokens), acc [N] (0/1), group_ids [N] int64.
at::Tensor arlcp_reward(const at::Tensor& n_ref, const at::Tensor& length, const at::Tensor& acc,
                        const at::Tensor& group_ids, const ArlcpOptions& o);

void read_arlcp_options(config::Reader& r, ArlcpOptions& o);

}  // namespace keel::rewards
