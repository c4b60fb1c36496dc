// R³L (see r3l_opmd.h).
#include "trainer/credit/r3l_opmd.h"

#include <cmath>

#include <torch/torch.h>

#include "trainer/credit/advantage_utils.h"
#include "trainer/credit/group_stats.h"

namespace keel::credit {

at::Tensor segment_ids_from_mask(const at::Tensor& mask) {
  TORCH_CHECK(mask.dim() == 2, "segment_ids_from_mask: mask must be [N, T], got ", mask.sizes());
  const at::Tensor on = mask != 0;
  const at::Tensor prev = torch::cat({torch::zeros({mask.size(0), 1}, on.options()), on.slice(1, 0, -1)}, 1);
  const at::Tensor starts = (on & ~prev).to(torch::kLong);
  return torch::where(on, starts.cumsum(1) - 1, torch::full({}, -1, starts.options()));
}

at::Tensor r3l_pivot_mask(const at::Tensor& mask, const at::Tensor& segment_ids, const at::Tensor& pivot_steps) {
  TORCH_CHECK(segment_ids.sizes() == mask.sizes(), "r3l_pivot_mask: segment_ids must be ", mask.sizes(), ", got ",
              segment_ids.sizes());
  TORCH_CHECK(pivot_steps.dim() == 1 && pivot_steps.size(0) == mask.size(0),
              "r3l_pivot_mask: pivot_steps must be [N] with N = ", mask.size(0), ", got ", pivot_steps.sizes());
  const at::Tensor k = pivot_steps.to(torch::kLong).unsqueeze(1);
  const at::Tensor keep = (k <= 0) | (segment_ids.to(torch::kLong) >= k);
  return mask * keep.to(mask.scalar_type());
}

AdvantageOutput advantage_r3l_opmd(const AdvantageInputs& in, const AdvantageOptions& opts) {
  check_core_inputs(in, "r3l_opmd");
  reject_kl_rewards(in, "r3l_opmd");
  const R3lOptions& o = opts.r3l;
  TORCH_CHECK(o.baseline == "mean" || o.baseline == "logavgexp", "r3l_opmd: unknown baseline '", o.baseline,
              "' (known: logavgexp, mean)");
  const at::Tensor m = float_mask(in);
  const at::Tensor r = sequence_rewards(in.token_rewards).to(torch::kDouble);  // float64 arithmetic
  const GroupIndex idx = group_index(in.group_ids);
  const GroupStats st = group_stats(r, idx);
  const at::Tensor zero = torch::zeros({}, r.options());
  at::Tensor b;
  if (o.baseline == "mean") {
    b = st.mean;
  } else {  // τ·(logsumexp(R/τ) − log K), max-shifted per group
    const at::Tensor x = r / o.tau;
    const at::Tensor mx = torch::zeros({idx.num_groups}, r.options())
                              .scatter_reduce(0, idx.inverse, x, "amax", /*include_self=*/false);
    const at::Tensor se = torch::zeros({idx.num_groups}, r.options())
                              .index_add_(0, idx.inverse, (x - mx.index_select(0, idx.inverse)).exp());
    // Equal rewards: logavgexp is that reward; take it exactly so that R − b is exactly 0.
    b = torch::where(st.uniform, st.mean, o.tau * (mx + se.log() - st.count.log()));
  }
  const at::Tensor single_g = st.count < 2;
  const at::Tensor single = single_g.index_select(0, idx.inverse);
  check_singletons(single, opts, "r3l_opmd");
  b = torch::where(single_g, zero, b).index_select(0, idx.inverse);  // raw: b = 0 (opmd_reweight_adv)
  at::Tensor score = r - b;
  score = torch::where(score >= 0, o.alpha * score, score);  // positive amplification
  score = torch::where(r >= o.success_threshold, torch::ones({}, r.options()), score);
  if (opts.singleton == "zero") score = torch::where(single, zero, score);
  score = score.to(in.token_rewards.scalar_type());

  AdvantageOutput out;
  at::Tensor m_eff = m;
  if (in.pivot_steps.defined() && o.pivot_mask) {
    const at::Tensor seg = in.turn_ids.defined() ? in.turn_ids : segment_ids_from_mask(m);
    m_eff = r3l_pivot_mask(m, seg, in.pivot_steps);
    out.loss_mask = m_eff;
    const double before = m.sum().item<double>();
    out.metrics["r3l/pivot_masked_frac"] = before > 0 ? 1.0 - m_eff.sum().item<double>() / before : 0.0;
    out.metrics["r3l/rows_emptied"] = ((m.sum(1) > 0) & (m_eff.sum(1) == 0)).sum().item<double>();
  }
  out.advantages = score.unsqueeze(1) * m_eff;
  out.returns = out.advantages;
  add_advantage_metrics(out, m_eff);
  return out;
}

}  // namespace keel::credit
