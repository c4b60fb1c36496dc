// Dr. GRPO (see dr_grpo.h).
#include "trainer/credit/dr_grpo.h"

#include <torch/torch.h>

#include "trainer/credit/advantage_utils.h"
#include "trainer/credit/grpo.h"

namespace keel::credit {

AdvantageOutput advantage_dr_grpo(const AdvantageInputs& in, const AdvantageOptions& opts) {
  check_core_inputs(in, "dr_grpo");
  reject_kl_rewards(in, "dr_grpo");
  const at::Tensor m = float_mask(in);
  const at::Tensor a = grpo_scores(sequence_rewards(in.token_rewards), in.group_ids, opts.eps,
                                   /*norm_by_std=*/false, opts.grpo, "dr_grpo");
  AdvantageOutput out;
  out.advantages = a.unsqueeze(1) * m;
  out.returns = out.advantages;
  add_advantage_metrics(out, m);
  return out;
}

}  // namespace keel::credit
