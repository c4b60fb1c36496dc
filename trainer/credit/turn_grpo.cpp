// Turn-level credit (see turn_grpo.h).
#include "trainer/credit/turn_grpo.h"

#include <algorithm>

#include <torch/torch.h>

#include "trainer/credit/advantage_utils.h"
#include "trainer/credit/group_stats.h"

namespace keel::credit {

at::Tensor place_turn_rewards(const std::vector<int64_t>& sep_pos, const std::vector<double>& interm,
                              double final_score, double max_total_rewards, bool dense, int64_t t_len) {
  at::Tensor r = torch::zeros({t_len}, torch::kDouble);
  auto put = [&](int64_t pos, double v) {
    if (pos >= 0 && pos < t_len) r[pos] = r[pos].item<double>() + v;
  };
  if (!dense) {
    if (!sep_pos.empty()) put(sep_pos.back(), final_score);
    return r;
  }
  TORCH_CHECK(interm.size() == sep_pos.size(), "place_turn_rewards: ", interm.size(), " intermediate rewards for ",
              sep_pos.size(), " turns");
  double num = final_score > 0 ? static_cast<double>(std::count_if(interm.begin(), interm.end(), [](double v) { return v > 0; }))
                               : max_total_rewards;
  num = std::max(1.0, num);
  for (size_t k = 0; k < sep_pos.size(); ++k) put(sep_pos[k], interm[k] / num);
  return r;
}

AdvantageOutput advantage_turn_grpo(const AdvantageInputs& in, const AdvantageOptions& opts) {
  check_core_inputs(in, "turn_grpo");
  reject_kl_rewards(in, "turn_grpo");
  require_field(in.turn_ids, in.token_rewards.sizes(), "turn_ids", "turn_grpo");
  const int64_t n = in.token_rewards.size(0);
  const at::Tensor tid = in.turn_ids.to(torch::kLong);
  const int64_t k = tid.numel() ? std::max<int64_t>(tid.max().item<int64_t>() + 1, 0) : 0;
  const auto opt = in.token_rewards.options();
  // per-turn rewards and presence, [N, K]
  const at::Tensor on = tid >= 0;
  const at::Tensor flat = (torch::arange(n, tid.options()).unsqueeze(1) * std::max<int64_t>(k, 1) + tid.clamp_min(0));
  at::Tensor r_turn = torch::zeros({n * k}, opt).index_add_(0, flat.masked_select(on),
                                                            in.token_rewards.masked_select(on)).view({n, k});
  at::Tensor present = torch::zeros({n * k}, opt.dtype(torch::kBool))
                           .index_fill_(0, flat.masked_select(on), true).view({n, k});
  // discounted turn returns, backwards over turns
  at::Tensor g = torch::zeros({n, k}, opt);
  at::Tensor run = torch::zeros({n}, opt);
  for (int64_t j = k - 1; j >= 0; --j) {
    run = r_turn.select(1, j) + opts.gamma * run;
    g.select(1, j).copy_(run);
  }
  const GroupIndex idx = group_index(in.group_ids);
  const at::Tensor lone = lone_rows(idx);  // [N]
  check_singletons(lone, opts, "turn_grpo");
  at::Tensor a_turn = torch::zeros({n, k}, opt);
  for (int64_t j = 0; j < k; ++j)
    a_turn.select(1, j).copy_(normalise_within_groups(g.select(1, j), idx, present.select(1, j), lone, opts));
  const at::Tensor m = float_mask(in);
  const at::Tensor gather_ix = tid.clamp(0, std::max<int64_t>(k - 1, 0));
  AdvantageOutput out;
  if (k == 0) {
    out.advantages = torch::zeros_like(m);
    out.returns = torch::zeros_like(m);
  } else {
    out.advantages = torch::where(on, a_turn.gather(1, gather_ix), torch::zeros({}, opt)) * m;
    out.returns = torch::where(on, g.gather(1, gather_ix), torch::zeros({}, opt)) * m;
  }
  out.metrics["turn/turns_mean"] = n ? present.sum(1).to(opt.dtype()).mean().item<double>() : 0.0;
  add_advantage_metrics(out, m);
  return out;
}

}  // namespace keel::credit
