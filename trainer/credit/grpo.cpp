// GRPO (see grpo.h).
#include "trainer/credit/grpo.h"

#include <torch/torch.h>

#include "trainer/credit/advantage_utils.h"
#include "trainer/credit/group_stats.h"

namespace keel::credit {

at::Tensor grpo_scores(const at::Tensor& x, const at::Tensor& group_ids, const AdvantageOptions& opts,
                       bool norm_by_std, const char* who, const at::Tensor& valid) {
  TORCH_CHECK(x.dim() == 1 && x.sizes() == group_ids.sizes(), who, ": scores must be [N] like group_ids ",
              group_ids.sizes(), ", got ", x.sizes());
  TORCH_CHECK(opts.grpo.std_scope == "group" || opts.grpo.std_scope == "batch", who, ": unknown grpo.std_scope '",
              opts.grpo.std_scope, "' (known: group, batch)");
  const at::Tensor xd = x.to(torch::kDouble);  // float64 arithmetic, result cast back to x's dtype
  const at::Tensor zero = torch::zeros({}, xd.options());
  at::Tensor ok = torch::isfinite(xd);
  if (valid.defined()) ok = ok & valid.to(torch::kBool);
  const GroupIndex idx = group_index(group_ids);
  const GroupStats st = group_stats(xd, idx, ok);
  const at::Tensor single = st.count.index_select(0, idx.inverse) < 2;  // K = 1 among the valid rows
  check_singletons(single & ok, opts, who);
  at::Tensor mean = st.mean.index_select(0, idx.inverse);
  at::Tensor std = st.std.index_select(0, idx.inverse);
  if (opts.grpo.std_scope == "batch") {
    const at::Tensor xs = xd.masked_select(ok);
    std = (xs.numel() >= 2 ? xs.std(/*unbiased=*/true) : zero).expand_as(xd);
  }
  if (opts.singleton == "raw") {  // verl: mean 0, std 1 for a lone sample
    mean = torch::where(single, zero, mean);
    std = torch::where(single, torch::ones({}, xd.options()), std);
  }
  at::Tensor a = torch::where(ok, xd, zero) - mean;  // exactly 0 in a uniform group (group_stats)
  if (norm_by_std) a = a / (std + opts.eps);
  if (opts.singleton == "zero") a = torch::where(single, zero, a);
  return torch::where(ok, a, zero).to(x.scalar_type());
}

AdvantageOutput advantage_grpo(const AdvantageInputs& in, const AdvantageOptions& opts) {
  return grpo_outcome_advantage(in, opts, opts.norm_by_std, "grpo");
}

AdvantageOutput grpo_outcome_advantage(const AdvantageInputs& in, const AdvantageOptions& opts, bool norm_by_std,
                                       const char* name) {
  check_core_inputs(in, name);
  reject_kl_rewards(in, name);
  const at::Tensor m = float_mask(in);
  const at::Tensor a =
      grpo_scores(sequence_rewards(in.token_rewards), in.group_ids, opts, norm_by_std, name);
  AdvantageOutput out;
  out.advantages = a.unsqueeze(1) * m;
  out.returns = out.advantages;
  add_advantage_metrics(out, m);
  return out;
}

}  // namespace keel::credit
