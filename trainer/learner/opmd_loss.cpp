// opmd: the online-policy-mirror-descent loss of R3L / Trinity-RFT (spec §5.4; Shi et al. arXiv
// 2601.03715; shiweijiezero/R3L opmd_policy_loss.py): L_pg = agg(−A·logp) / (1 + τ), no importance
// ratio and no clipping. Declared in policy_loss.h.
#include "trainer/learner/policy_loss.h"

namespace keel::learner {

LossOutput opmd_loss(const PolicyLossInputs& in, const PolicyLossOptions& opts) {
  check_policy_loss_inputs(in, "opmd", /*need_old=*/false);
  TORCH_CHECK(opts.opmd_tau > -1, "opmd: tau must be > -1, got ", opts.opmd_tau);
  const auto dtype = in.logp.scalar_type();
  const torch::Tensor adv = in.advantages.detach().to(dtype);  // [N, T]
  // INTERPRETATION: the spec writes token-mean (the R3L recipe's mode); the configured mode is
  // honoured so that the loss composes with the other aggregation switches.
  const torch::Tensor pg = agg_loss(-adv * in.logp, in.response_mask, opts.agg, in.agg) / (1.0 + opts.opmd_tau);
  std::map<std::string, double> metrics;
  if (in.logp_old.defined())
    metrics["actor/ppo_kl"] = masked_mean_value(in.logp_old.to(dtype) - in.logp, in.response_mask);
  return finish_policy_loss(pg, std::move(metrics), in, opts);
}

}  // namespace keel::learner
