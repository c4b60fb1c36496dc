// Per-group reductions (see group_ops.h).
#include "rewards/schemes/group_ops.h"

#include <torch/torch.h>

namespace keel::rewards {

GroupIndex make_group_index(const at::Tensor& group_ids) {
  TORCH_CHECK(group_ids.dim() == 1, "group_ids must be [N], got ", group_ids.sizes());
  TORCH_CHECK(!group_ids.is_floating_point(), "group_ids must be an integer tensor");
  auto [uniq, inverse] = at::_unique(group_ids, /*sorted=*/true, /*return_inverse=*/true);
  return GroupIndex{inverse.to(torch::kLong), uniq.numel()};
}

at::Tensor group_sum(const at::Tensor& x, const GroupIndex& g) {
  TORCH_CHECK(x.size(0) == g.index.size(0), "group_sum: x has ", x.size(0), " rows, group index ",
              g.index.size(0));
  auto sizes = x.sizes().vec();
  sizes[0] = g.num_groups;
  return torch::zeros(sizes, x.options()).index_add_(0, g.index, x);
}

at::Tensor group_max(const at::Tensor& x, const at::Tensor& mask, const GroupIndex& g, double empty_value) {
  TORCH_CHECK(x.dim() == 1 && x.size(0) == g.index.size(0), "group_max: x must be [N], got ", x.sizes());
  const double neg_inf = -std::numeric_limits<double>::infinity();
  at::Tensor src = mask.defined() ? x.masked_fill(mask.logical_not(), neg_inf) : x;
  at::Tensor out = torch::full({g.num_groups}, neg_inf, x.options()).scatter_reduce(0, g.index, src, "amax");
  return out.masked_fill(out == neg_inf, empty_value);
}

at::Tensor group_gather(const at::Tensor& per_group, const GroupIndex& g) {
  return per_group.index_select(0, g.index);
}

}  // namespace keel::rewards
