// Per-token entropy of the policy from its logits (spec §1.5), for the entropy bonus
// L −= c_ent·agg(H, m) (added by policy_loss.cpp when entropy_coef > 0) and for the
// actor/entropy metric.
//
// Deliberately not here: the model forward; sampling temperature (divide the logits before calling).
#pragma once

#include <cstdint>

#include <torch/types.h>

namespace keel::learner {

/// H = logsumexp(z) − Σ_v softmax(z)_v·z_v over the last dimension of `logits` [..., V]
/// (typically [N, T, V] → [N, T]). Differentiable. Computed in chunks of `chunk_rows` rows of the
/// flattened [R, V] view so that the softmax temporaries stay small (0 = one chunk).
/// Float16/bfloat16 logits are upcast to float32 per chunk; the result has float32 (or the input's
/// float64) dtype.
torch::Tensor entropy_from_logits(const torch::Tensor& logits, int64_t chunk_rows = 1024);

}  // namespace keel::learner
