// Process reward models: step scores and their aggregation (spec rewards.md C1; PRM800K — product,
// Math-Shepherd — minimum). At each step end the PRM's logits for the two label tokens give
//   p_t = softmax([ℓ_good, ℓ_bad])[0] = σ(ℓ_good − ℓ_bad)
// and a solution score is min | prod | last | mean over the steps. For dense credit p_t (or
// p_t − p_{t−1}) goes on the step's last token instead (step_boundaries.h places it).
// Not here: running the PRM forward pass (the scorer) or finding the step ends (step_boundaries.h).
//
// Legend: N responses, T tokens, V vocabulary, S steps (left-aligned, step_mask).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

namespace keel::config {
class Reader;
}

namespace keel::rewards {

struct PrmOptions {
  std::string step_boundary = "newline";            ///< newline | tag (resolved to ids by the scorer)
  std::string tag_token = "ки";                     ///< Math-Shepherd step tag
  std::vector<std::string> label_tokens{"+", "-"};  ///< [good, bad]
  std::string aggregate = "min";                    ///< min | prod | last | mean
  bool dense = false;                               ///< per-step rewards instead of one aggregate
  bool differenced = false;                         ///< dense: p_t − p_{t−1}
  double first_prev = 0.0;                          ///< dense+differenced: p_0 (INTERPRETATION: 0)
};

/// p [N, T] = σ(logits[..., good] − logits[..., bad]) from full logits [N, T, V].
at::Tensor prm_step_probs(const at::Tensor& logits, int64_t good_id, int64_t bad_id);
/// p = σ(ℓ_good − ℓ_bad) for label logits of any matching shape.
at::Tensor prm_two_way_prob(const at::Tensor& logit_good, const at::Tensor& logit_bad);
/// Aggregate [N] of p [N, S] over step_mask [N, S] (bool, undefined = all). Rows with no step get 0
/// (INTERPRETATION; find_step_ends guarantees a step for any non-empty response).
at::Tensor prm_aggregate(const at::Tensor& p, const at::Tensor& step_mask, const std::string& method);
/// Dense per-step rewards [N, S]: p_t, or p_t − p_{t−1} (p_0 = first_prev) over left-aligned steps.
at::Tensor prm_dense_rewards(const at::Tensor& p, const at::Tensor& step_mask, const PrmOptions& o);

void read_prm_options(config::Reader& r, PrmOptions& o);

}  // namespace keel::rewards
