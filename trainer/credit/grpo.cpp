// GRPO (see grpo.h).
#include "trainer/credit/grpo.h"

#include <torch/torch.h>

#include "trainer/credit/advantage_utils.h"
#include "trainer/credit/group_stats.h"

namespace keel::credit {

at::Tensor grpo_scores(const at::Tensor& x, const at::Tensor& group_ids, double eps, bool norm_by_std,
                       const GrpoOptions& o, const char* who, const at::Tensor& valid) {
  TORCH_CHECK(x.dim() == 1 && x.sizes() == group_ids.sizes(), who, ": scores must be [N] like group_ids ",
              group_ids.sizes(), ", got ", x.sizes());
  at::Tensor ok = torch::isfinite(x);
  if (valid.defined()) ok = ok & valid.to(torch::kBool);
  const GroupIndex idx = group_index(group_ids);
  const GroupStats st = group_stats(x, idx, ok);
  const at::Tensor count = st.count.index_select(0, idx.inverse);
  const at::Tensor single = count < 2;  // K = 1 among the valid rows of the group
  if (o.singleton == "error") {
    TORCH_CHECK(!(single & ok).any().item<bool>(), who,
                ": a group has a single scored sample; group-relative advantages need >= 2 samples per prompt "
                "(set advantage.grpo.singleton to raw or zero to accept it)");
  }
  at::Tensor mean = st.mean.index_select(0, idx.inverse);
  at::Tensor std = st.std.index_select(0, idx.inverse);
  if (o.std_scope == "batch") {
    const at::Tensor xs = x.masked_select(ok);
    const at::Tensor bstd = xs.numel() >= 2 ? xs.std(/*unbiased=*/true) : torch::zeros({}, x.options());
    std = bstd.expand_as(x);
  } else {
    TORCH_CHECK(o.std_scope == "group", who, ": unknown grpo.std_scope '", o.std_scope, "' (known: group, batch)");
  }
  if (o.singleton == "raw") {  // verl: mean 0, std 1 for a lone sample
    mean = torch::where(single, torch::zeros({}, x.options()), mean);
    std = torch::where(single, torch::ones({}, x.options()), std);
  }
  at::Tensor a = torch::where(ok, x, torch::zeros({}, x.options())) - mean;
  if (norm_by_std) a = a / (std + eps);
  if (o.singleton == "zero") a = torch::where(single, torch::zeros({}, x.options()), a);
  return torch::where(ok, a, torch::zeros({}, x.options()));
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
      grpo_scores(sequence_rewards(in.token_rewards), in.group_ids, opts.eps, norm_by_std, opts.grpo, name);
  AdvantageOutput out;
  out.advantages = a.unsqueeze(1) * m;
  out.returns = out.advantages;
  add_advantage_metrics(out, m);
  return out;
}

}  // namespace keel::credit
