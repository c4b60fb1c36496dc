// Running-statistics transforms (see running_norm.h).
#include "rewards/schemes/running_norm.h"

#include <torch/torch.h>

#include "base/reader.h"

namespace keel::rewards {

void RunningMeanStd::update(const at::Tensor& x) {
  TORCH_CHECK(x.dim() == 1, "RunningMeanStd::update: x must be [N], got ", x.sizes());
  const int64_t n = x.numel();
  if (n == 0) return;
  const at::Tensor xd = x.to(torch::kFloat64);
  const double nb = static_cast<double>(n);
  const double mean_b = xd.mean().item<double>();
  const double m2_b = (xd - mean_b).pow(2).sum().item<double>();
  // Chan et al. parallel combination of (count_, mean_, m2_) with (nb, mean_b, m2_b).
  const double total = count_ + nb;
  const double delta = mean_b - mean_;
  mean_ = mean_ + delta * nb / total;
  m2_ = m2_ + m2_b + delta * delta * count_ * nb / total;
  count_ = total;
}

void RunningMeanStd::save_state(StateDict& out, const std::string& prefix) const {
  state_put_double(out, prefix + "count", count_);
  state_put_double(out, prefix + "mean", mean_);
  state_put_double(out, prefix + "m2", m2_);
}

void RunningMeanStd::load_state(const StateDict& in, const std::string& prefix) {
  count_ = state_get_double(in, prefix + "count");
  mean_ = state_get_double(in, prefix + "mean");
  m2_ = state_get_double(in, prefix + "m2");
}

void RunningMinMax::update(const at::Tensor& x) {
  TORCH_CHECK(x.dim() == 1, "RunningMinMax::update: x must be [N], got ", x.sizes());
  if (x.numel() == 0) return;
  const double lo = x.min().to(torch::kFloat64).item<double>();
  const double hi = x.max().to(torch::kFloat64).item<double>();
  min_ = initialized_ ? std::min(min_, lo) : lo;
  max_ = initialized_ ? std::max(max_, hi) : hi;
  initialized_ = true;
}

void RunningMinMax::save_state(StateDict& out, const std::string& prefix) const {
  state_put_double(out, prefix + "initialized", initialized_ ? 1.0 : 0.0);
  state_put_double(out, prefix + "min", min_);
  state_put_double(out, prefix + "max", max_);
}

void RunningMinMax::load_state(const StateDict& in, const std::string& prefix) {
  initialized_ = state_get_double(in, prefix + "initialized") != 0.0;
  min_ = state_get_double(in, prefix + "min");
  max_ = state_get_double(in, prefix + "max");
}

double running_std(const RunningMeanStd& s, const MeanStdOptions& o) {
  if (o.zero_std == "one") {
    const double sd = std::sqrt(s.var());
    return sd == 0.0 ? 1.0 : sd;
  }
  return std::sqrt(std::max(s.var(), o.var_floor));
}

at::Tensor meanstd_reward(const at::Tensor& r, const RunningMeanStd& s, const MeanStdOptions& o) {
  return (r - s.mean()) / running_std(s, o);
}

at::Tensor clip_reward(const at::Tensor& r, const RunningMeanStd& s, const MeanStdOptions& o) {
  const double sd = running_std(s, o);
  return r.clamp(s.mean() - sd, s.mean() + sd);
}

at::Tensor minmax_reward(const at::Tensor& r, const RunningMinMax& s, const MinMaxOptions& o) {
  if (!s.initialized()) return torch::zeros_like(r);
  return (r - s.min()) / std::max(s.max() - s.min(), o.range_floor);
}

void read_meanstd_options(config::Reader& r, MeanStdOptions& o) {
  r.field("zero_std", o.zero_std, "how a zero running std is handled: floor the variance, or use std 1")
      .one_of({"floor", "one"}, "zero_std policy");
  r.field("var_floor", o.var_floor, "lower bound on the running variance (zero_std: floor)").gt(0);
}

void read_minmax_options(config::Reader& r, MinMaxOptions& o) {
  r.field("range_floor", o.range_floor, "lower bound on max - min").gt(0);
}

}  // namespace keel::rewards
