// RLOO (see rloo.h).
#include "trainer/credit/rloo.h"

#include <torch/torch.h>

#include "trainer/credit/advantage_utils.h"
#include "trainer/credit/group_stats.h"

namespace keel::credit {

at::Tensor rloo_scores(const at::Tensor& x, const at::Tensor& group_ids, const char* who) {
  const GroupIndex idx = group_index(group_ids);
  const GroupStats st = group_stats(x, idx);
  const at::Tensor k = st.count.index_select(0, idx.inverse);
  TORCH_CHECK(!(k < 2).any().item<bool>(), who,
              ": a group has a single sample; the leave-one-out baseline needs >= 2 samples per prompt");
  return (x - st.mean.index_select(0, idx.inverse)) * k / (k - 1);
}

AdvantageOutput advantage_rloo(const AdvantageInputs& in, const AdvantageOptions& opts) {
  check_core_inputs(in, "rloo");
  reject_kl_rewards(in, "rloo");
  const at::Tensor m = float_mask(in);
  AdvantageOutput out;
  out.advantages = rloo_scores(sequence_rewards(in.token_rewards), in.group_ids, "rloo").unsqueeze(1) * m;
  out.returns = out.advantages;
  add_advantage_metrics(out, m);
  return out;
}

}  // namespace keel::credit
