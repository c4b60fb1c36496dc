// Rubric rewards with per-criterion binary verdicts: the explicit weighted aggregation of Rubrics
// as Rewards (spec rewards.md B3a; Gunjal et al., arXiv 2507.17746) and POW3R policy-aware
// criterion weights (B3b; Tyagi et al., arXiv 2605.20164 — summary only, so the contrast formula is
// the spec's INTERPRETATION):
//   explicit:  R = Σ_j w_j c_j / Σ_j w_j
//   POW3R:     p_j = pass rate of criterion j in the group,  α_j = sqrt(p_j(1 − p_j))/0.5,
//              w̃_j = w_j · max(α_j, ε),  R_i = Σ_j w̃_j c_ij / Σ_j w̃_j  (static weights if Σ w̃ = 0)
//   category balance: normalise inside each category, combine categories by their original total weight.
// The judge verdicts come from the scorer; "implicit" (one holistic judge score) needs no math here.
//
// Legend: N responses (G per prompt), K criterion slots (padded per prompt, see mask).
#pragma once

#include <map>
#include <string>

#include <ATen/core/Tensor.h>

namespace keel::config {
class Reader;
}

namespace keel::rewards {

struct RubricOptions {
  /// Category -> weight (RaR): essential 1.0, important 0.7, optional 0.3, pitfall 0.9. Pitfall
  /// criteria are phrased so that a verdict of 1 means the pitfall was avoided.
  std::map<std::string, double> category_weights{{"essential", 1.0}, {"important", 0.7}, {"optional", 0.3}, {"pitfall", 0.9}};
};

/// Weight of a named category; keel::Error listing the known ones otherwise.
double rubric_category_weight(const std::string& category, const RubricOptions& o);

/// Explicit aggregation R [N]. verdicts [N, K] in {0,1} (or [0,1]), weights [N, K] or [K], mask [N, K]
/// bool (undefined = all valid). Rows whose valid weights sum to 0 get 0.
at::Tensor rubric_explicit_reward(const at::Tensor& verdicts, const at::Tensor& weights, const at::Tensor& mask);

struct Pow3rOptions {
  double eps = 0.0;               ///< floor on α (0 = pure POW3R)
  bool category_balance = false;  ///< normalise inside each category, then combine by original totals
};

/// POW3R contrast α [N, K] (broadcast per group): sqrt(p(1 − p))/0.5 with p the group pass rate of
/// each criterion over the rows where it is valid.
at::Tensor pow3r_alpha(const at::Tensor& verdicts, const at::Tensor& mask, const at::Tensor& group_ids);
/// POW3R rewards R [N]. categories [N, K] int64 (only with category_balance; undefined = one category).
at::Tensor pow3r_reward(const at::Tensor& verdicts, const at::Tensor& weights, const at::Tensor& mask,
                        const at::Tensor& group_ids, const at::Tensor& categories, const Pow3rOptions& o);

/// Reads `category_weights: {essential: 1.0, ...}` (known categories only; values ≥ 0).
void read_rubric_options(config::Reader& r, RubricOptions& o);
void read_pow3r_options(config::Reader& r, Pow3rOptions& o);

}  // namespace keel::rewards
