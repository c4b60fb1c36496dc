// LSC (see lsc.h).
#include "rewards/schemes/lsc.h"

#include <torch/torch.h>

#include "base/reader.h"

namespace keel::rewards {

double normal_quantile(double q) {
  return std::sqrt(2.0) * torch::erfinv(torch::scalar_tensor(2.0 * q - 1.0, torch::kFloat64)).item<double>();
}

at::Tensor lsc_reward(const at::Tensor& r, const at::Tensor& r_ref, const at::Tensor& ref_mask, const LscOptions& o) {
  TORCH_CHECK(r.dim() == 1, "lsc_reward: r must be [N], got ", r.sizes());
  TORCH_CHECK(r_ref.dim() == 2 && r_ref.size(0) == r.size(0), "lsc_reward: r_ref must be [N, M], got ",
              r_ref.sizes());
  const at::Tensor valid = ref_mask.defined() ? ref_mask.to(torch::kBool)
                                              : torch::ones(r_ref.sizes(), r_ref.options().dtype(torch::kBool));
  TORCH_CHECK(valid.sizes() == r_ref.sizes(), "lsc_reward: ref_mask ", valid.sizes(), " != r_ref ", r_ref.sizes());
  const at::Tensor w = valid.to(r_ref.scalar_type());
  const at::Tensor count = w.sum(1);
  const at::Tensor mean = (r_ref * w).sum(1) / count.clamp_min(1.0);
  const at::Tensor var = ((r_ref - mean.unsqueeze(1)).pow(2) * w).sum(1) / count.clamp_min(1.0);
  at::Tensor ref_point = mean + normal_quantile(o.quantile) * var.sqrt();
  ref_point = torch::where(count > 0, ref_point, torch::zeros_like(ref_point));  // no refs: r_ref = 0
  return -torch::softplus(-(r - ref_point));
}

void read_lsc_options(config::Reader& r, LscOptions& o) {
  r.field("quantile", o.quantile, "reference point: this quantile of a normal fitted to the references").gt(0).lt(1);
}

}  // namespace keel::rewards
