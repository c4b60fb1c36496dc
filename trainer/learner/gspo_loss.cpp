// gspo: Group Sequence Policy Optimization, sequence-level importance ratio (spec §2.4; Zheng et
// al. 2025 arXiv 2507.18071; verl compute_policy_loss_gspo). Declared in policy_loss.h.
#include "trainer/learner/policy_loss.h"

namespace keel::learner {

LossOutput gspo_loss(const PolicyLossInputs& in, const PolicyLossOptions& opts) {
  check_policy_loss_inputs(in, "gspo");
  const auto dtype = in.logp.scalar_type();
  const torch::Tensor m = in.response_mask.to(dtype);        // [N, T]
  const torch::Tensor adv = in.advantages.detach().to(dtype);  // [N, T]
  const torch::Tensor neg_kl = in.logp - in.logp_old.detach().to(dtype);  // [N, T]
  const torch::Tensor masked_neg_kl = torch::where(m > 0, neg_kl * m, torch::zeros_like(neg_kl));
  // log s_n = Σ_t m·(logp − logp_old) / max(len_n, 1)   [N]
  const torch::Tensor log_s = masked_neg_kl.sum(1) / m.sum(1).clamp_min(1);
  // Per-token form: value log s_n, gradient ∇logp[n, t] (so the sequence gradient is A·∇s_n after
  // the per-sequence token mean); clamped above at 10 like verl.
  const torch::Tensor log_s_tok =
      (log_s.detach().unsqueeze(1) + in.logp - in.logp.detach()).clamp_max(opts.gspo_log_ratio_max);  // [N, T]
  const torch::Tensor s = log_s_tok.exp();
  const torch::Tensor l1 = -adv * s;
  const torch::Tensor l2 = -adv * s.clamp(1.0 - opts.clip_low, 1.0 + opts.clip_high);
  const torch::Tensor per_token = torch::maximum(l1, l2);  // no dual-clip in GSPO
  AggOptions forced = opts.agg;
  forced.mode = AggMode::kSeqMeanTokenMean;  // GSPO requires seq-mean-token-mean (spec §2.4)
  const torch::Tensor pg = agg_loss(per_token, in.response_mask, forced, in.agg);
  std::map<std::string, double> metrics;
  metrics["actor/pg_clipfrac"] = masked_mean_value(l2 > l1, in.response_mask);
  metrics["actor/pg_clipfrac_lower"] = 0.0;
  metrics["actor/ppo_kl"] = masked_mean_value(-neg_kl, in.response_mask);
  return finish_policy_loss(pg, std::move(metrics), in, opts);
}

}  // namespace keel::learner
