// Length penalty and ceiling (see pre_shaping.h).
#include "rewards/schemes/pre_shaping.h"

#include <torch/torch.h>

#include "base/reader.h"

namespace keel::rewards {

at::Tensor length_penalty_reward(const at::Tensor& r, const at::Tensor& length, const LengthPenaltyOptions& o) {
  TORCH_CHECK(r.dim() == 1 && length.sizes() == r.sizes(), "length_penalty_reward: r ", r.sizes(),
              " and length ", length.sizes(), " must both be [N]");
  if (!o.enabled) return r;
  const at::Tensor over = (length.to(r.scalar_type()) - o.valid_len).clamp_min(0.0);
  return r - o.per_token * over;
}

at::Tensor ceil_reward(const at::Tensor& r, const CeilOptions& o) {
  if (!o.ceil) return r;
  return r.clamp_max(*o.ceil);
}

void read_length_penalty_options(config::Reader& r, LengthPenaltyOptions& o) {
  r.field("enabled", o.enabled, "subtract per_token for every token beyond valid_len");
  r.field("valid_len", o.valid_len, "response tokens allowed without penalty (L0)").ge(0);
  r.field("per_token", o.per_token, "penalty per token beyond valid_len (c)").ge(0);
}

void read_ceil_options(config::Reader& r, CeilOptions& o) {
  double v = 0.0;
  if (r.field("value", v, "upper bound on the reward (absent = no ceiling)").present()) o.ceil = v;
}

}  // namespace keel::rewards
