// SSL tiered reward (see ssl.h).
#include "rewards/schemes/ssl.h"

#include <torch/torch.h>

#include "base/reader.h"

namespace keel::rewards {

at::Tensor ssl_gaussian_proximity(const at::Tensor& click, const at::Tensor& center, const at::Tensor& size,
                                  const at::Tensor& valid, const at::Tensor& screen, const SslOptions& o) {
  TORCH_CHECK(click.dim() == 2 && click.size(1) == 2, "ssl: click must be [N, 2], got ", click.sizes());
  TORCH_CHECK(center.sizes() == click.sizes() && size.sizes() == click.sizes(), "ssl: center ", center.sizes(),
              " and size ", size.sizes(), " must match click ", click.sizes());
  // [interp] a zero (or smaller) box side is raised to a minimum size.
  at::Tensor min_side = screen.defined() ? screen.to(size.scalar_type()) * o.min_box_frac
                                         : torch::full_like(size, o.min_box_size);
  const at::Tensor half = torch::maximum(size, min_side) / 2.0;  // [N, 2]
  const at::Tensor d2 = ((click - center) / half).pow(2).sum(1);  // squared Mahalanobis distance
  at::Tensor s = torch::exp(-d2 / 2.0);
  if (valid.defined()) s = torch::where(valid.to(torch::kBool), s, torch::zeros_like(s));
  return s;
}

at::Tensor ssl_block_match_proximity(const at::Tensor& matched, const at::Tensor& total) {
  TORCH_CHECK(matched.sizes() == total.sizes(), "ssl: matched ", matched.sizes(), " != total ", total.sizes());
  const at::Tensor t = total.to(torch::kFloat64);
  const at::Tensor frac = matched.to(torch::kFloat64) / t.clamp_min(1.0);
  return torch::where(t > 0, frac, torch::zeros_like(frac));
}

at::Tensor ssl_aggregate_steps(const at::Tensor& s, const at::Tensor& step_mask) {
  TORCH_CHECK(s.dim() == 2 && step_mask.sizes() == s.sizes(), "ssl: s ", s.sizes(), " and step_mask ",
              step_mask.sizes(), " must both be [N, S]");
  const at::Tensor w = step_mask.to(s.scalar_type());
  return (s * w).sum(1) / w.sum(1).clamp_min(1.0);
}

at::Tensor ssl_tier(const at::Tensor& s, const SslOptions& o) {
  at::Tensor k = torch::zeros(s.sizes(), s.options().dtype(torch::kLong));
  for (double t : o.thresholds) k = k + (s >= t).to(torch::kLong);
  return k;
}

at::Tensor ssl_reward(const at::Tensor& success, const at::Tensor& s, const at::Tensor& valid, const SslOptions& o) {
  TORCH_CHECK(success.sizes() == s.sizes() && s.dim() == 1, "ssl_reward: success ", success.sizes(), " and s ",
              s.sizes(), " must both be [N]");
  TORCH_CHECK(static_cast<int64_t>(o.tier_values.size()) == o.num_tiers, "ssl: tier_values must have num_tiers entries");
  const at::Tensor values = torch::tensor(o.tier_values, s.options().dtype(torch::kFloat64)).to(s.scalar_type());
  at::Tensor c = success.to(s.scalar_type());
  at::Tensor sv = s;
  if (valid.defined()) {
    const at::Tensor v = valid.to(torch::kBool);
    c = torch::where(v, c, torch::zeros_like(c));
    sv = torch::where(v, s, torch::zeros_like(s));
  }
  return c + o.alpha * values.index_select(0, ssl_tier(sv, o));
}

void read_ssl_options(config::Reader& r, SslOptions& o) {
  r.field("num_tiers", o.num_tiers, "number of tiers K (paper: 4 best)").ge(2);
  r.field("thresholds", o.thresholds, "K-1 strictly decreasing thresholds on the proximity s").ge(0).le(1);
  r.field("tier_values", o.tier_values, "K progressively amplified tier values, tier 0 first");
  r.field("alpha", o.alpha, "weight of the tiered score").ge(0);
  r.field("proximity", o.proximity, "how the proximity s is measured").one_of({"gaussian", "block_match"}, "proximity");
  r.field("min_box_frac", o.min_box_frac, "minimum box side as a fraction of the screen side").gt(0);
  r.field("min_box_size", o.min_box_size, "minimum box side when no screen size is known").gt(0);
  if (static_cast<int64_t>(o.thresholds.size()) != o.num_tiers - 1)
    r.error("thresholds", fmt::format("expected num_tiers - 1 = {} thresholds, got {}", o.num_tiers - 1, o.thresholds.size()));
  for (size_t i = 1; i < o.thresholds.size(); ++i)
    if (!(o.thresholds[i] < o.thresholds[i - 1])) {
      r.error("thresholds", "must be strictly decreasing");
      break;
    }
  if (static_cast<int64_t>(o.tier_values.size()) != o.num_tiers)
    r.error("tier_values", fmt::format("expected num_tiers = {} values, got {}", o.num_tiers, o.tier_values.size()));
}

}  // namespace keel::rewards
