// GAE (see gae.h).
#include "trainer/credit/gae.h"

#include <torch/torch.h>

#include "trainer/credit/advantage_utils.h"

namespace keel::credit {

std::pair<at::Tensor, at::Tensor> gae_scan(const at::Tensor& rewards, const at::Tensor& values,
                                           const at::Tensor& mask, double gamma, double lam) {
  const at::Tensor m = (mask != 0).to(rewards.scalar_type());
  const at::Tensor v = values.to(rewards.scalar_type());
  const int64_t n = rewards.size(0);
  at::Tensor adv = torch::zeros_like(rewards);
  at::Tensor next_v = torch::zeros({n}, rewards.options());
  at::Tensor last_a = torch::zeros({n}, rewards.options());
  for (int64_t t = rewards.size(1) - 1; t >= 0; --t) {
    const at::Tensor mt = m.select(1, t);
    const at::Tensor vt = v.select(1, t);
    const at::Tensor delta = rewards.select(1, t) + gamma * next_v - vt;
    const at::Tensor cand = delta + gamma * lam * last_a;
    next_v = mt * vt + (1 - mt) * next_v;  // masked tokens: keep the next valid token's value
    last_a = mt * cand + (1 - mt) * last_a;
    adv.select(1, t).copy_(last_a);
  }
  return {adv, adv + v};
}

AdvantageOutput advantage_gae(const AdvantageInputs& in, const AdvantageOptions& opts) {
  check_core_inputs(in, "gae");
  require_field(in.values, in.token_rewards.sizes(), "values", "gae");
  at::Tensor r = in.token_rewards;
  if (in.kl_rewards.defined()) {
    require_field(in.kl_rewards, in.token_rewards.sizes(), "kl_rewards", "gae");
    r = r + in.kl_rewards.to(r.scalar_type());
  }
  const at::Tensor m = float_mask(in);
  auto [adv, ret] = gae_scan(r, in.values, m, opts.gamma, opts.lam);
  if (opts.whiten) adv = masked_whiten(adv, m, opts.gae.whiten_var != "biased");
  AdvantageOutput out;
  out.advantages = adv * m;
  out.returns = ret;
  add_advantage_metrics(out, m);
  return out;
}

}  // namespace keel::credit
