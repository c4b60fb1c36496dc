// ReMax (see remax.h).
#include "trainer/credit/remax.h"

#include <torch/torch.h>

#include "trainer/credit/advantage_utils.h"

namespace keel::credit {

AdvantageOutput advantage_remax(const AdvantageInputs& in, const AdvantageOptions& opts) {
  check_core_inputs(in, "remax");
  require_field(in.baseline_rewards, {in.token_rewards.size(0)}, "baseline_rewards", "remax");
  at::Tensor r = in.token_rewards;
  if (in.kl_rewards.defined()) {
    require_field(in.kl_rewards, in.token_rewards.sizes(), "kl_rewards", "remax");
    r = r + in.kl_rewards.to(r.scalar_type());
  }
  const at::Tensor m = float_mask(in);
  const at::Tensor rtg = (r * m).flip({1}).cumsum(1).flip({1});  // Σ_{k≥t} m·r
  const at::Tensor b = in.baseline_rewards.to(r.scalar_type()).unsqueeze(1);
  AdvantageOutput out;
  out.advantages = (rtg - b * m) * m;
  out.returns = rtg;
  add_advantage_metrics(out, m);
  return out;
}

}  // namespace keel::credit
