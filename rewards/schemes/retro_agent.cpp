// RetroAgent progress reward (see retro_agent.h).
#include "rewards/schemes/retro_agent.h"

#include <torch/torch.h>

#include "rewards/schemes/group_ops.h"
#include "rewards/schemes/oni.h"
#include "base/error.h"
#include "base/reader.h"

namespace keel::rewards {

at::Tensor retro_potential(const at::Tensor& success, const at::Tensor& completed, const at::Tensor& total,
                           const at::Tensor& parsed, const RetroOptions& o) {
  TORCH_CHECK(success.dim() == 1 && completed.sizes() == success.sizes() && total.sizes() == success.sizes(),
              "retro_potential: success ", success.sizes(), ", completed ", completed.sizes(), ", total ",
              total.sizes(), " must all be [N]");
  const at::Tensor s = success.to(torch::kFloat64);
  if (o.binary_only) return s;
  const at::Tensor tot = total.to(torch::kFloat64);
  at::Tensor frac = torch::where(tot > 0, completed.to(torch::kFloat64) / tot.clamp_min(1.0), torch::zeros_like(tot));
  if (parsed.defined()) frac = torch::where(parsed.to(torch::kBool), frac, torch::zeros_like(frac));
  return torch::where(s > 0.5, torch::ones_like(s), frac);
}

at::Tensor retro_intrinsic(const at::Tensor& phi, const at::Tensor& phi_prev, const at::Tensor& group_ids,
                           const RetroOptions& o) {
  TORCH_CHECK(phi.dim() == 1 && phi_prev.sizes() == phi.sizes() && group_ids.sizes() == phi.sizes(),
              "retro_intrinsic: phi ", phi.sizes(), ", phi_prev ", phi_prev.sizes(), ", group_ids ", group_ids.sizes(),
              " must all be [N]");
  at::Tensor r = (phi.to(torch::kFloat64) - phi_prev.to(torch::kFloat64)).clamp_min(0.0);
  if (o.group_relative) {
    const GroupIndex g = make_group_index(group_ids);
    const at::Tensor cnt = group_sum(torch::ones_like(r), g);
    r = r - group_gather(group_sum(r, g) / cnt, g);
  }
  if (o.clip_min) r = r.clamp_min(*o.clip_min);
  if (o.clip_max) r = r.clamp_max(*o.clip_max);
  return r;
}

at::Tensor retro_reward(const at::Tensor& r_ext, const at::Tensor& r_int, const RetroOptions& o) {
  TORCH_CHECK(r_ext.sizes() == r_int.sizes(), "retro_reward: r_ext ", r_ext.sizes(), " != r_int ", r_int.sizes());
  return r_ext.to(torch::kFloat64) + o.coef * r_int;
}

at::Tensor RetroTaskBaseline::lookup(const std::vector<std::string>& tasks) const {
  std::vector<double> out;
  out.reserve(tasks.size());
  for (const auto& t : tasks) {
    auto it = phi_prev_.find(t);
    out.push_back(it == phi_prev_.end() ? 0.0 : it->second);
  }
  return torch::tensor(out, torch::kFloat64);
}

void RetroTaskBaseline::update(const std::vector<std::string>& tasks, const at::Tensor& success,
                               const at::Tensor& group_ids, const RetroOptions& o) {
  TORCH_CHECK(success.dim() == 1 && static_cast<int64_t>(tasks.size()) == success.size(0) &&
                  group_ids.sizes() == success.sizes(),
              "RetroTaskBaseline::update: tasks (", tasks.size(), "), success ", success.sizes(), ", group_ids ",
              group_ids.sizes(), " must all have N rows");
  const GroupIndex g = make_group_index(group_ids);
  const at::Tensor s = success.to(torch::kFloat64);
  const at::Tensor rate = group_sum(s, g) / group_sum(torch::ones_like(s), g);  // [G]
  std::vector<std::string> task_of(g.num_groups);
  for (int64_t i = 0; i < s.size(0); ++i) {
    const int64_t gi = g.index[i].item<int64_t>();
    if (task_of[gi].empty()) task_of[gi] = tasks[i];
    else if (task_of[gi] != tasks[i]) fail("retro_agent: group {} mixes tasks '{}' and '{}'", gi, task_of[gi], tasks[i]);
  }
  for (int64_t gi = 0; gi < g.num_groups; ++gi) {
    const double x = rate[gi].item<double>();
    auto it = phi_prev_.find(task_of[gi]);
    const double prev = it == phi_prev_.end() ? 0.0 : it->second;
    phi_prev_[task_of[gi]] = o.baseline == "ema" ? o.ema_decay * prev + (1.0 - o.ema_decay) * x : std::max(prev, x);
  }
}

// Layout: "<prefix>phi_prev" float64 [n], "<prefix>task/<i>" the task key bytes.
void RetroTaskBaseline::save_state(StateDict& out, const std::string& prefix) const {
  std::vector<double> v;
  int64_t i = 0;
  for (const auto& [task, phi] : phi_prev_) {
    v.push_back(phi);
    out[prefix + "task/" + std::to_string(i++)] = string_to_tensor(task);
  }
  out[prefix + "phi_prev"] = torch::tensor(v, torch::kFloat64);
}

void RetroTaskBaseline::load_state(const StateDict& in, const std::string& prefix) {
  const at::Tensor v = state_get(in, prefix + "phi_prev");
  phi_prev_.clear();
  for (int64_t i = 0; i < v.numel(); ++i)
    phi_prev_[tensor_to_string(state_get(in, prefix + "task/" + std::to_string(i)))] = v[i].item<double>();
}

void read_retro_options(config::Reader& r, RetroOptions& o) {
  r.field("coef", o.coef, "intrinsic reward coefficient c_int").ge(0);
  r.field("group_relative", o.group_relative, "subtract the group mean of the improvement");
  r.field("binary_only", o.binary_only, "potential = binary success only (strict variant)");
  double lo = 0, hi = 0;
  if (r.field("clip_min", lo, "lower clip of the intrinsic reward (absent = none)").present()) o.clip_min = lo;
  if (r.field("clip_max", hi, "upper clip of the intrinsic reward (absent = none)").present()) o.clip_max = hi;
  r.field("baseline", o.baseline, "per-task baseline update").one_of({"running_max", "ema"}, "baseline");
  r.field("ema_decay", o.ema_decay, "decay of the ema baseline").ge(0).lt(1);
  if (o.clip_min && o.clip_max && *o.clip_min > *o.clip_max) r.error("clip_max", "must be >= clip_min");
}

}  // namespace keel::rewards
