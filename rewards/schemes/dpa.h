// DPA — Directional Preference Alignment (spec rewards.md B7; Wang et al., arXiv 2402.18571, repo
// RLHFlow/Directional-Preference-Alignment, README only): a multi-objective RM gives r(x,y) ∈ R^k;
// a user preference is a unit vector v; the scalar reward is R = vᵀ r. The released model uses
// v = (cos θ, sin θ) over (helpfulness, verbosity) and shows v to the policy as the integers
// round(100·cos θ), round(100·sin θ). Not here: rejection-sampling fine-tuning (a training loop).
//
// Legend: N responses, k reward attributes.
#pragma once

#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

namespace keel::config {
class Reader;
}

namespace keel::rewards {

struct DpaOptions {
  std::vector<std::string> attributes{"helpfulness", "verbosity"};  ///< RM output columns used
  std::vector<double> direction;  ///< explicit v (same length as attributes); empty = from angle_deg
  double angle_deg = 0.0;         ///< θ for the 2-attribute form v = (cos θ, sin θ)
  bool normalize = true;          ///< rescale v to unit length
};

/// v [k] (float64): `direction` (normalised if asked) or (cos θ, sin θ).
at::Tensor dpa_direction(const DpaOptions& o);
/// R [N] = r [N, k] · v; v [k] or per-sample [N, k].
at::Tensor dpa_reward(const at::Tensor& r, const at::Tensor& v);
/// The integers the policy sees in its system prompt: round(100·v) [k] (int64).
at::Tensor dpa_prompt_weights(const at::Tensor& v);
/// HelpSteer 0–4 scale from the released RM's 0–100 scale: (score − 10)/20.
at::Tensor dpa_to_helpsteer_scale(const at::Tensor& score);

void read_dpa_options(config::Reader& r, DpaOptions& o);

}  // namespace keel::rewards
