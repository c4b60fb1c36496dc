// REINFORCE++ (see reinforce_pp.h).
#include "trainer/credit/reinforce_pp.h"

#include <torch/torch.h>

#include "trainer/credit/advantage_utils.h"
#include "trainer/credit/group_stats.h"

namespace keel::credit {
namespace {

AdvantageOutput reinforce_pp_from(const AdvantageInputs& in, const AdvantageOptions& opts, at::Tensor r,
                                  const char* who) {
  if (in.kl_rewards.defined()) {
    require_field(in.kl_rewards, in.token_rewards.sizes(), "kl_rewards", who);
    r = r + in.kl_rewards.to(r.scalar_type());
  }
  const at::Tensor m = float_mask(in);
  const at::Tensor ret = discounted_returns(r, m, opts.gamma, opts.rpp.reset_on_holes);
  at::Tensor adv = ret;
  if (opts.whiten) adv = masked_whiten(ret, m, opts.rpp.whiten_var != "biased", opts.norm_by_std);
  AdvantageOutput out;
  out.advantages = adv * m;
  out.returns = ret;
  add_advantage_metrics(out, m);
  return out;
}

}  // namespace

AdvantageOutput advantage_reinforce_pp(const AdvantageInputs& in, const AdvantageOptions& opts) {
  check_core_inputs(in, "reinforce_pp");
  return reinforce_pp_from(in, opts, in.token_rewards, "reinforce_pp");
}

AdvantageOutput advantage_reinforce_pp_baseline(const AdvantageInputs& in, const AdvantageOptions& opts) {
  check_core_inputs(in, "reinforce_pp_baseline");
  const at::Tensor m = float_mask(in).to(torch::kDouble);
  const at::Tensor r_tok = in.token_rewards.to(torch::kDouble);
  const at::Tensor big_r = sequence_rewards(r_tok);  // [N]
  const GroupIndex idx = group_index(in.group_ids);
  const GroupStats st = group_stats(big_r, idx);
  const at::Tensor single = st.count.index_select(0, idx.inverse) < 2;
  check_singletons(single, opts, "reinforce_pp_baseline");
  at::Tensor baseline = st.mean.index_select(0, idx.inverse);  // [N]; a lone row's mean is its own R (zero)
  if (opts.singleton == "raw") baseline = torch::where(single, torch::zeros_like(baseline), baseline);
  const at::Tensor r = (r_tok - place_at_last_valid(baseline, m)).to(in.token_rewards.scalar_type());
  return reinforce_pp_from(in, opts, r, "reinforce_pp_baseline");
}

}  // namespace keel::credit
