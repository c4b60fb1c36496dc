// Policy-loss registry, options from config, input checks and the shared KL / entropy terms.
// The losses themselves live in ppo_clip_loss.cpp, gspo_loss.cpp, p3o_loss.cpp, opmd_loss.cpp.
#include "trainer/learner/policy_loss.h"

#include <utility>

#include "trainer/config/credit_config.h"

namespace keel::learner {

PolicyLossOptions policy_loss_options(const config::LearnerSection& learner, const config::KlSection& kl) {
  PolicyLossOptions o;
  o.clip_low = learner.clip_low;
  o.clip_high = learner.clip_high;
  o.dual_clip_c = learner.dual_clip_c;
  o.agg.mode = parse_agg_mode(learner.loss_agg);
  o.agg.norm_len = learner.agg_norm_len;
  o.entropy_coef = learner.entropy_coef;
  o.kl_in_loss = kl.in_loss;
  o.kl_estimator = parse_kl_estimator(kl.estimator);
  o.kl_coef = kl.coef;
  return o;
}

void register_builtin_policy_losses(PolicyLossRegistry& registry) {
  registry.add("ppo_clip", "PPO clipped surrogate, asymmetric clip (clip-higher) and dual-clip", ppo_clip_loss);
  registry.add("gspo", "GSPO: length-normalised sequence ratio, clipped, seq-mean-token-mean", gspo_loss);
  registry.add("p3o_v1", "pairwise PPO, separate sequence-level clipping per response", p3o_v1_loss);
  registry.add("p3o_v2", "pairwise PPO, joint clipping of the pair ratio", p3o_v2_loss);
  registry.add("opmd", "R3L online policy mirror descent: -A*logp/(1+tau), no ratio", opmd_loss);
}

void check_policy_loss_inputs(const PolicyLossInputs& in, const char* loss_name, bool need_old) {
  TORCH_CHECK(in.logp.defined(), loss_name, ": logp [N, T] is required");
  TORCH_CHECK(in.logp.dim() == 2, loss_name, ": logp must be [N, T], got ", in.logp.sizes());
  TORCH_CHECK(in.logp.is_floating_point(), loss_name, ": logp must be floating, got ", in.logp.scalar_type());
  const auto shape = in.logp.sizes();
  auto same = [&](const torch::Tensor& t, const char* name, bool required) {
    if (!t.defined()) {
      TORCH_CHECK(!required, loss_name, ": ", name, " is required (shape ", shape, ")");
      return;
    }
    TORCH_CHECK(t.sizes() == shape, loss_name, ": ", name, " ", t.sizes(), " must match logp ", shape);
  };
  same(in.logp_old, "logp_old", need_old);
  same(in.advantages, "advantages", true);
  same(in.response_mask, "response_mask", true);
  same(in.logp_ref, "logp_ref", false);
  same(in.entropy, "entropy", false);
  if (in.group_ids.defined())
    TORCH_CHECK(in.group_ids.dim() == 1 && in.group_ids.size(0) == in.logp.size(0), loss_name,
                ": group_ids must be [N] = [", in.logp.size(0), "], got ", in.group_ids.sizes());
}

LossOutput finish_policy_loss(torch::Tensor pg_loss, std::map<std::string, double> metrics,
                              const PolicyLossInputs& in, const PolicyLossOptions& opts) {
  LossOutput out;
  metrics["actor/pg_loss"] = pg_loss.item<double>();
  torch::Tensor loss = pg_loss;
  if (opts.kl_in_loss) {
    TORCH_CHECK(in.logp_ref.defined(), "policy loss: kl.in_loss needs logp_ref [N, T] (reference log-probs)");
    const torch::Tensor kl = kl_penalty(in.logp, in.logp_ref.to(in.logp.scalar_type()), opts.kl_estimator);
    const torch::Tensor kl_loss = agg_loss(kl, in.response_mask, opts.agg, in.agg);
    loss = loss + opts.kl_coef * kl_loss;
    metrics["actor/kl_loss"] = kl_loss.item<double>();
    metrics["actor/kl_coef"] = opts.kl_coef;
  }
  if (opts.entropy_coef != 0) {
    TORCH_CHECK(in.entropy.defined(), "policy loss: entropy_coef != 0 needs entropy [N, T] (entropy_from_logits)");
    const torch::Tensor ent_loss = agg_loss(in.entropy.to(in.logp.scalar_type()), in.response_mask, opts.agg, in.agg);
    loss = loss - opts.entropy_coef * ent_loss;
    metrics["actor/entropy_loss"] = ent_loss.item<double>();
  }
  if (in.entropy.defined()) metrics["actor/entropy"] = masked_mean_value(in.entropy, in.response_mask);
  out.loss = loss;
  out.metrics = std::move(metrics);
  return out;
}

}  // namespace keel::learner
