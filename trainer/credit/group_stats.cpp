// Per-group statistics (see group_stats.h): scatter-adds over the dense group index, two-pass
// variance for accuracy.
#include "trainer/credit/group_stats.h"

#include <torch/torch.h>

namespace keel::credit {

GroupIndex group_index(const at::Tensor& group_ids) {
  TORCH_CHECK(group_ids.dim() == 1, "group_ids must be [N], got shape ", group_ids.sizes());
  TORCH_CHECK(group_ids.scalar_type() == torch::kLong, "group_ids must be int64, got ", group_ids.scalar_type());
  GroupIndex out;
  if (group_ids.numel() == 0) {
    out.inverse = group_ids.clone();
    return out;
  }
  auto [uniq, inverse] = at::_unique(group_ids, /*sorted=*/true, /*return_inverse=*/true);
  out.inverse = inverse.to(torch::kLong);
  out.num_groups = uniq.numel();
  return out;
}

GroupStats group_stats(const at::Tensor& x, const GroupIndex& index, const at::Tensor& valid, bool unbiased) {
  TORCH_CHECK(x.dim() == 1 && x.size(0) == index.inverse.size(0), "group_stats: x must be [N] with N = ",
              index.inverse.size(0), ", got shape ", x.sizes());
  TORCH_CHECK(x.is_floating_point(), "group_stats: x must be floating point, got ", x.scalar_type());
  const auto opts = x.options();
  at::Tensor w = valid.defined() ? valid.to(torch::kBool) : torch::ones(x.sizes(), opts.dtype(torch::kBool));
  TORCH_CHECK(w.sizes() == x.sizes(), "group_stats: valid must be [N] like x, got ", valid.sizes());
  const at::Tensor xv = torch::where(w, x, torch::zeros({}, opts));  // invalid rows may hold NaN
  const at::Tensor wf = w.to(x.scalar_type());
  const int64_t g = index.num_groups;
  GroupStats s;
  s.count = torch::zeros({g}, opts).index_add_(0, index.inverse, wf);
  const at::Tensor sum = torch::zeros({g}, opts).index_add_(0, index.inverse, xv);
  s.mean = sum / s.count.clamp_min(1);
  const at::Tensor dev = (xv - s.mean.index_select(0, index.inverse)) * wf;
  const at::Tensor ss = torch::zeros({g}, opts).index_add_(0, index.inverse, dev * dev);
  const at::Tensor denom = unbiased ? s.count - 1 : s.count;
  s.std = torch::where(s.count >= 2, (ss / denom.clamp_min(1)).sqrt(), torch::zeros({}, opts));
  return s;
}

}  // namespace keel::credit
