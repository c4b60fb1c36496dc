// Per-group statistics (see group_stats.h): scatter-adds over the dense group index in float64,
// two-pass variance for accuracy, and a per-group min == max test that makes uniform groups exact.
#include "trainer/credit/group_stats.h"

#include <limits>

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

at::Tensor lone_rows(const GroupIndex& index) {
  const int64_t n = index.inverse.size(0);
  const at::Tensor sizes = torch::zeros({index.num_groups}, torch::kLong)
                               .index_add_(0, index.inverse, torch::ones({n}, torch::kLong));
  return sizes.index_select(0, index.inverse) < 2;
}

GroupStats group_stats(const at::Tensor& x, const GroupIndex& index, const at::Tensor& valid, bool unbiased) {
  TORCH_CHECK(x.dim() == 1 && x.size(0) == index.inverse.size(0), "group_stats: x must be [N] with N = ",
              index.inverse.size(0), ", got shape ", x.sizes());
  TORCH_CHECK(x.is_floating_point(), "group_stats: x must be floating point, got ", x.scalar_type());
  // float64 throughout: a float32 sum of eight 0.7s is not 8·0.7, and its std then comes out
  // ~1e-8 instead of 0, which (x − mean)/(std + ε) turns into an O(0.05) advantage.
  const at::Tensor xd = x.to(torch::kDouble);
  const auto opts = xd.options();
  at::Tensor w = valid.defined() ? valid.to(torch::kBool) : torch::ones(x.sizes(), opts.dtype(torch::kBool));
  TORCH_CHECK(w.sizes() == x.sizes(), "group_stats: valid must be [N] like x, got ", valid.sizes());
  const at::Tensor zero = torch::zeros({}, opts);
  const at::Tensor xv = torch::where(w, xd, zero);  // invalid rows may hold NaN
  const at::Tensor wf = w.to(torch::kDouble);
  const int64_t g = index.num_groups;
  const double inf = std::numeric_limits<double>::infinity();

  const at::Tensor count = torch::zeros({g}, opts).index_add_(0, index.inverse, wf);
  const at::Tensor sum = torch::zeros({g}, opts).index_add_(0, index.inverse, xv);
  // Uniform groups: min == max over the valid rows (a group without valid rows keeps +inf > −inf).
  const at::Tensor pos_inf = torch::full({}, inf, opts), neg_inf = torch::full({}, -inf, opts);
  const at::Tensor mn = torch::full({g}, inf, opts)
                            .scatter_reduce(0, index.inverse, torch::where(w, xd, pos_inf), "amin", /*include_self=*/true);
  const at::Tensor mx = torch::full({g}, -inf, opts)
                            .scatter_reduce(0, index.inverse, torch::where(w, xd, neg_inf), "amax", /*include_self=*/true);
  const at::Tensor uniform = (mn == mx) & (count >= 1);
  const at::Tensor mean = torch::where(uniform, mn, sum / count.clamp_min(1));
  const at::Tensor dev = (xv - mean.index_select(0, index.inverse)) * wf;  // exactly 0 in a uniform group
  const at::Tensor ss = torch::zeros({g}, opts).index_add_(0, index.inverse, dev * dev);
  const at::Tensor denom = unbiased ? count - 1 : count;
  const at::Tensor std = torch::where(count >= 2, (ss / denom.clamp_min(1)).sqrt(), zero);

  const auto dt = x.scalar_type();
  GroupStats s;
  s.count = count.to(dt);
  s.mean = mean.to(dt);  // a uniform group's mean is one of its values, so the cast is exact
  s.std = std.to(dt);
  s.uniform = uniform;
  return s;
}

}  // namespace keel::credit
