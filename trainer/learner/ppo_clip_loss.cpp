// ppo_clip: clipped surrogate with asymmetric clip and dual-clip (spec §1.2; verl
// compute_policy_loss_vanilla, OpenRLHF PolicyLoss; Schulman et al. 2017, Ye et al. 2020 dual-clip,
// Yu et al. 2025 DAPO clip-higher). Declared in policy_loss.h.
#include "trainer/learner/policy_loss.h"

namespace keel::learner {

LossOutput ppo_clip_loss(const PolicyLossInputs& in, const PolicyLossOptions& opts) {
  check_policy_loss_inputs(in, "ppo_clip");
  TORCH_CHECK(opts.dual_clip_c == 0 || opts.dual_clip_c > 1, "ppo_clip: dual_clip_c must be > 1 or 0 (off), got ",
              opts.dual_clip_c);
  const auto dtype = in.logp.scalar_type();
  const torch::Tensor adv = in.advantages.detach().to(dtype);  // [N, T]
  // ρ = exp(clamp(logp − logp_old, ±20)): the clamp prevents overflow (verl, OpenRLHF).
  const torch::Tensor log_ratio =
      (in.logp - in.logp_old.detach().to(dtype)).clamp(-opts.log_ratio_clamp, opts.log_ratio_clamp);
  const torch::Tensor ratio = log_ratio.exp();
  const torch::Tensor l1 = -adv * ratio;                                                       // unclipped
  const torch::Tensor l2 = -adv * ratio.clamp(1.0 - opts.clip_low, 1.0 + opts.clip_high);  // clipped
  const torch::Tensor lc = torch::maximum(l1, l2);                                             // PPO-clip
  torch::Tensor per_token = lc;
  torch::Tensor lower_clipped;
  if (opts.dual_clip_c > 0) {
    // Dual-clip bounds the loss of a negative advantage by −A·c where the ratio blew up.
    const torch::Tensor l3 = -adv * opts.dual_clip_c;
    const torch::Tensor neg = adv < 0;
    per_token = torch::where(neg, torch::minimum(lc, l3), lc);
    lower_clipped = (lc > l3).logical_and(neg);
  }
  const torch::Tensor pg = agg_loss(per_token, in.response_mask, opts.agg, in.agg);
  std::map<std::string, double> metrics;
  metrics["actor/pg_clipfrac"] = masked_mean_value(l2 > l1, in.response_mask);
  metrics["actor/pg_clipfrac_lower"] =
      lower_clipped.defined() ? masked_mean_value(lower_clipped, in.response_mask) : 0.0;
  metrics["actor/ppo_kl"] = masked_mean_value(-log_ratio, in.response_mask);
  return finish_policy_loss(pg, std::move(metrics), in, opts);
}

}  // namespace keel::learner
