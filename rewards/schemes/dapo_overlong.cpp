// DAPO soft overlong penalty (see dapo_overlong.h).
#include "rewards/schemes/dapo_overlong.h"

#include <torch/torch.h>

#include "base/reader.h"

namespace keel::rewards {

at::Tensor dapo_overlong_penalty(const at::Tensor& length, const DapoOverlongOptions& o) {
  TORCH_CHECK(length.dim() == 1, "dapo_overlong_penalty: length must be [N], got ", length.sizes());
  TORCH_CHECK(o.cache_len > 0 && o.cache_len <= o.max_len, "dapo_overlong_penalty: need 0 < cache_len <= max_len, got ",
              o.cache_len, " and ", o.max_len);
  const at::Tensor l = length.to(torch::kFloat64);
  const double expected = o.max_len - o.cache_len;
  const at::Tensor soft = (-(l - expected) / o.cache_len * o.factor).clamp_max(0.0);
  return torch::where(l > o.max_len, torch::full_like(l, -o.factor), soft);
}

void read_dapo_overlong_options(config::Reader& r, DapoOverlongOptions& o) {
  r.field("max_len", o.max_len, "maximum generation length L_max (tokens)").gt(0);
  r.field("cache_len", o.cache_len, "soft-penalty buffer L_cache before L_max (tokens)").gt(0);
  r.field("factor", o.factor, "penalty factor f").ge(0);
  if (o.cache_len > o.max_len) r.error("cache_len", fmt::format("must be <= max_len {}", o.max_len));
}

}  // namespace keel::rewards
