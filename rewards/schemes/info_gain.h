// Information-gain turn reward (spec rewards.md C3; the closest well-defined scheme to "Nous
// information gain" is IGPO, Wang et al., arXiv 2510.14967 — summary only):
//   P_t = exp((1/L) Σ_j log π(a_j | q, o_≤t, a_<j))   length-normalised prob. of the gold answer
//   r_t = P_t − P_{t−1} for turns 1 ≤ t < T,  r_T = outcome (e.g. F1 of the final answer)
// P_0 comes from the prompt alone. The teacher-forced forward passes are the scorer's job; this
// file takes their gold-answer log-probs.
//
// Legend: N trajectories, T turns (left-aligned, turn_mask), L gold-answer tokens.
#pragma once

#include <string>

#include <ATen/core/Tensor.h>

namespace keel::config {
class Reader;
}

namespace keel::rewards {

struct InfoGainOptions {
  std::string normalize = "geometric_mean";  ///< geometric_mean (only choice; documented for the YAML)
  std::string final_score = "f1";            ///< f1 | em: how the scorer grades the final answer
};

/// P [N, K] from gold-answer token log-probs [N, K, L] over gold_mask [N, L] (K = T + 1 states).
at::Tensor info_gain_probs(const at::Tensor& gold_logprobs, const at::Tensor& gold_mask);
/// Turn rewards [N, T]: P_t − P_{t−1} on every valid turn but the last, the outcome on the last.
/// P [N, T + 1], turn_mask [N, T] bool (prefix), outcome [N].
at::Tensor info_gain_turn_rewards(const at::Tensor& p, const at::Tensor& turn_mask, const at::Tensor& outcome);
/// SQuAD token F1 of a predicted answer against a gold answer (normalised as in truthrl.h).
double token_f1(const std::string& prediction, const std::string& gold);

void read_info_gain_options(config::Reader& r, InfoGainOptions& o);

}  // namespace keel::rewards
