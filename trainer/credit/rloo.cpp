// RLOO (see rloo.h).
#include "trainer/credit/rloo.h"

#include <torch/torch.h>

#include "trainer/credit/advantage_utils.h"
#include "trainer/credit/group_stats.h"

namespace keel::credit {

at::Tensor rloo_scores(const at::Tensor& x, const at::Tensor& group_ids, const AdvantageOptions& opts, const char* who) {
  TORCH_CHECK(x.dim() == 1 && x.sizes() == group_ids.sizes(), who, ": scores must be [N] like group_ids ",
              group_ids.sizes(), ", got ", x.sizes());
  const at::Tensor xd = x.to(torch::kDouble);
  const GroupIndex idx = group_index(group_ids);
  const GroupStats st = group_stats(xd, idx);
  const at::Tensor k = st.count.index_select(0, idx.inverse);
  const at::Tensor single = k < 2;
  check_singletons(single, opts, who);
  // (R − mean)·K/(K−1); a lone row has no other member: 0 (zero) or R itself (raw, baseline 0).
  const at::Tensor a = (xd - st.mean.index_select(0, idx.inverse)) * k / (k - 1).clamp_min(1);
  const at::Tensor lone = opts.singleton == "raw" ? xd : torch::zeros_like(xd);
  return torch::where(single, lone, a).to(x.scalar_type());
}

AdvantageOutput advantage_rloo(const AdvantageInputs& in, const AdvantageOptions& opts) {
  check_core_inputs(in, "rloo");
  reject_kl_rewards(in, "rloo");
  const at::Tensor m = float_mask(in);
  AdvantageOutput out;
  out.advantages = rloo_scores(sequence_rewards(in.token_rewards), in.group_ids, opts, "rloo").unsqueeze(1) * m;
  out.returns = out.advantages;
  add_advantage_metrics(out, m);
  return out;
}

}  // namespace keel::credit
