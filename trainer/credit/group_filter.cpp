// DAPO dynamic-sampling filter (see group_filter.h).
#include "trainer/credit/group_filter.h"

#include <algorithm>

#include <torch/torch.h>

#include "trainer/credit/group_stats.h"

namespace keel::credit {

at::Tensor dynamic_sampling_row_mask(const at::Tensor& metric, const at::Tensor& group_ids) {
  TORCH_CHECK(metric.dim() == 1 && metric.sizes() == group_ids.sizes(), "dynamic_sampling: metric must be [N] like "
              "group_ids ", group_ids.sizes(), ", got ", metric.sizes());
  const GroupIndex idx = group_index(group_ids);
  const at::Tensor x = metric.to(torch::kDouble);
  const at::Tensor zeros = torch::zeros({idx.num_groups}, x.options());
  const at::Tensor mx = zeros.scatter_reduce(0, idx.inverse, x, "amax", /*include_self=*/false);
  const at::Tensor mn = zeros.scatter_reduce(0, idx.inverse, x, "amin", /*include_self=*/false);
  return (mx != mn).index_select(0, idx.inverse);  // exact equality = zero variance
}

std::vector<int64_t> dynamic_sampling_keep_groups(const at::Tensor& metric, const at::Tensor& group_ids) {
  const at::Tensor keep = dynamic_sampling_row_mask(metric, group_ids).cpu();
  const at::Tensor gid = group_ids.cpu();
  std::vector<int64_t> out;
  for (int64_t i = 0; i < gid.size(0); ++i) {
    const int64_t g = gid[i].item<int64_t>();
    if (keep[i].item<bool>() && std::find(out.begin(), out.end(), g) == out.end()) out.push_back(g);
  }
  return out;
}

}  // namespace keel::credit
