// EPO-Safe cost channel (see epo_safe.h).
#include "rewards/schemes/epo_safe.h"

#include <set>

#include <torch/torch.h>

#include "base/reader.h"

namespace keel::rewards {

at::Tensor episode_cost(const at::Tensor& bits, const at::Tensor& step_mask, const CostChannelOptions& o) {
  TORCH_CHECK(bits.dim() == 2, "episode_cost: bits must be [N, T], got ", bits.sizes());
  const at::Tensor m = step_mask.defined() ? step_mask.to(torch::kFloat64) : torch::ones(bits.sizes(), torch::kFloat64);
  TORCH_CHECK(m.sizes() == bits.sizes(), "episode_cost: step_mask ", m.sizes(), " != bits ", bits.sizes());
  const at::Tensor sum = (bits.to(torch::kFloat64) * m).sum(1);
  if (o.reduce == "mean") return sum / m.sum(1).clamp_min(1.0);
  return sum;
}

at::Tensor cost_penalized_reward(const at::Tensor& r_task, const at::Tensor& cost, double lambda) {
  TORCH_CHECK(r_task.sizes() == cost.sizes(), "cost_penalized_reward: r_task ", r_task.sizes(), " != cost ", cost.sizes());
  return r_task.to(torch::kFloat64) - lambda * cost.to(torch::kFloat64);
}

double CostMultiplier::update(const at::Tensor& cost) {
  if (!o_.lagrangian || cost.numel() == 0) return lambda_;
  const double mean = cost.to(torch::kFloat64).mean().item<double>();
  lambda_ = std::max(0.0, lambda_ + o_.lr * (mean - o_.budget));
  return lambda_;
}

void CostMultiplier::save_state(StateDict& out, const std::string& prefix) const {
  state_put_double(out, prefix + "lambda", lambda_);
}

void CostMultiplier::load_state(const StateDict& in, const std::string& prefix) {
  lambda_ = state_get_double(in, prefix + "lambda");
}

void read_cost_channel_options(config::Reader& r, CostChannelOptions& o) {
  r.field("name", o.name, "channel name (metrics: cost/<name>)").nonempty();
  r.field("reduce", o.reduce, "episode cost from the per-step bits").one_of({"sum", "mean"}, "reduce");
  r.field("lambda", o.lambda, "penalty per unit cost (initial value when lagrangian)").ge(0);
  r.field("lagrangian", o.lagrangian, "adapt lambda towards the cost budget");
  r.field("lr", o.lr, "lambda learning rate").ge(0);
  r.field("budget", o.budget, "allowed mean episode cost").ge(0);
}

void read_cost_channels(config::Reader& r, std::vector<CostChannelOptions>& out) {
  out.clear();
  std::set<std::string> seen;
  r.list("cost_channels", "cost channels kept apart from the task reward", [&](config::Reader& item, size_t) {
    CostChannelOptions o;
    read_cost_channel_options(item, o);
    if (!seen.insert(o.name).second) item.error("name", fmt::format("duplicate cost channel '{}'", o.name));
    out.push_back(o);
  });
}

}  // namespace keel::rewards
