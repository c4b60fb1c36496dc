// LSC — log-sigmoid-centred reward (spec rewards.md A2 item 6; Wang et al., "Transforming and
// combining rewards", as implemented in the PAR repo's reward_shaper.py):
//   r_ref = mean(refs) + z_q · std_pop(refs),  z_q = Φ⁻¹(q) (q = 0.85 → 1.0364334)
//   r     ← logσ(r − r_ref)                      range (−∞, 0), computed as −softplus(−x)
// With no reference the newer code uses r_ref = 0 (kept here).
//
// Legend: N responses, M reference slots.
#pragma once

#include <ATen/core/Tensor.h>

namespace keel::config {
class Reader;
}

namespace keel::rewards {

struct LscOptions {
  double quantile = 0.85;  ///< reference point = this quantile of a normal fitted to the references
};

/// Φ⁻¹(q) via erfinv.
double normal_quantile(double q);

/// r [N], r_ref [N, M], ref_mask [N, M] bool (undefined = all valid) -> [N].
at::Tensor lsc_reward(const at::Tensor& r, const at::Tensor& r_ref, const at::Tensor& ref_mask, const LscOptions& o);

void read_lsc_options(config::Reader& r, LscOptions& o);

}  // namespace keel::rewards
