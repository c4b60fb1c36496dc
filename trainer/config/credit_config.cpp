// Readers of the credit-assignment / loss sections (see credit_config.h and spec §13).
#include "trainer/config/credit_config.h"

#include "trainer/config/config.h"
#include "base/reader.h"

namespace keel::config {

void read_learner(Reader& r, LearnerSection& c, const KnownNames& known) {
  auto alg = r.field("algorithm", c.algorithm, "learner: grpo | ppo | dpo | sft | rm");
  if (!known.algorithms.empty()) alg.one_of(known.algorithms, "algorithm");
  auto pl = r.field("policy_loss", c.policy_loss, "per-token policy loss (keel list losses)");
  if (!known.policy_losses.empty()) pl.one_of(known.policy_losses, "policy loss");
  r.field("clip_low", c.clip_low, "PPO clip epsilon below 1").ge(0).lt(1);
  r.field("clip_high", c.clip_high, "PPO clip epsilon above 1 (DAPO clip-higher: 0.28)").ge(0);
  if (c.clip_high < c.clip_low)
    r.error("clip_high", fmt::format("must be >= {} ({}), got {}", r.path_of("clip_low"),
                                     format_number(c.clip_low), format_number(c.clip_high)));
  r.field("dual_clip_c", c.dual_clip_c, "dual-clip lower bound constant c for negative advantages; 0 = off").ge(0);
  if (c.dual_clip_c != 0 && c.dual_clip_c <= 1)
    r.error("dual_clip_c", fmt::format("must be > 1.0 (or 0 to turn dual-clip off), got {}", format_number(c.dual_clip_c)));
  r.field("loss_agg", c.loss_agg, "loss aggregation over tokens and sequences")
      .one_of({"token-mean", "seq-mean-token-sum", "seq-mean-token-mean", "seq-mean-token-sum-norm"}, "aggregation mode");
  r.field("agg_norm_len", c.agg_norm_len, "constant denominator of seq-mean-token-sum-norm (Dr.GRPO)").gt(0);
  r.field("entropy_coef", c.entropy_coef, "entropy bonus coefficient").ge(0);
}

void read_advantage(Reader& r, AdvantageSection& c, const KnownNames& known) {
  auto est = r.field("estimator", c.estimator, "advantage estimator (keel list estimators)");
  if (!known.estimators.empty()) est.one_of(known.estimators, "advantage estimator");
  r.field("eps", c.eps, "epsilon added to the group std").gt(0);
  r.field("norm_by_std", c.norm_by_std, "divide group-centred rewards by the group std");
  r.field("gamma", c.gamma, "discount").ge(0).le(1);
  r.field("lam", c.lam, "GAE lambda").ge(0).le(1);
  r.field("whiten", c.whiten, "whiten advantages over the batch (GAE, REINFORCE++)");
  r.field("singleton", c.singleton,
          "groups with one sample, every grouped estimator: error | zero (a = 0) | raw (the estimator's "
          "no-baseline rule: grpo family R/(1+eps), rloo R, reinforce_pp_baseline and r3l_opmd baseline 0, "
          "ss_grpo/turn_grpo the return; arena_rank and spo_winrate refuse raw)")
      .one_of({"error", "zero", "raw"}, "singleton policy");
  if (r.node()) c.raw = *r.node();
  if (known.advantage_subsections) known.advantage_subsections(r);
}

void read_kl(Reader& r, KlSection& c, const KnownNames& known) {
  r.field("in_reward", c.in_reward, "subtract coef * KL from token rewards");
  r.field("in_loss", c.in_loss, "add coef * KL to the policy loss");
  auto est = r.field("estimator", c.estimator, "KL estimator; a trailing + is the straight-through form");
  if (!known.kl_estimators.empty()) est.one_of(known.kl_estimators, "KL estimator");
  else est.one_of({"k1", "k2", "k3", "k1+", "k2+", "k3+", "abs"}, "KL estimator");
  auto coef = r.field("coef", c.coef, "KL coefficient (initial value for the adaptive controller); one other than "
                      "the default or 0 needs in_loss or in_reward").ge(0);
  // Without either switch no KL term exists: a coefficient chosen would silently do nothing. The
  // default itself is no choice (print-config and reference.yaml write every key, and reload).
  if (coef.present() && c.coef != 0 && c.coef != KlSection{}.coef && !c.in_loss && !c.in_reward)
    r.error("coef", fmt::format("{} is set but neither {} nor {} is true, so no KL term would be computed: set one of "
                                "them to true, or drop the coefficient (or set it to 0)",
                                format_value(c.coef), r.path_of("in_loss"), r.path_of("in_reward")));
  r.field("controller", c.controller, "KL coefficient controller").one_of({"fixed", "adaptive"}, "KL controller");
  r.field("target", c.target, "adaptive controller: target KL").gt(0);
  r.field("horizon", c.horizon, "adaptive controller: horizon").gt(0);
}

void read_filter(Reader& r, FilterSection& c) {
  r.field("dynamic_sampling", c.dynamic_sampling, "DAPO: drop groups whose metric has zero variance");
  r.field("metric", c.metric, "per-sample metric the filter looks at").one_of({"acc", "score", "seq_reward"}, "filter metric");
  r.field("max_gen_batches", c.max_gen_batches, "rollout batches to try before giving up on a full batch").ge(1);
}

void read_overlong(Reader& r, OverlongSection& c) {
  r.field("enable", c.enable, "DAPO soft overlong penalty");
  r.field("buffer_len", c.buffer_len, "penalty ramps over the last buffer_len tokens").ge(1);
  r.field("penalty_factor", c.penalty_factor, "penalty at the maximum length").ge(0);
}

void read_dpo(Reader& r, DpoSection& c, const KnownNames& known) {
  auto loss = r.field("loss", c.loss, "DPO loss (keel list losses)");
  if (!known.dpo_losses.empty()) loss.one_of(known.dpo_losses, "DPO loss");
  else loss.one_of({"sigmoid", "cdpo", "robust", "ipo", "hinge"}, "DPO loss");
  r.field("beta", c.beta, "inverse temperature of the implicit reward").gt(0);
  r.field("label_smoothing", c.label_smoothing, "cDPO / robust DPO label noise (dpo.loss cdpo or robust only)")
      .ge(0).lt(0.5);
  // sigmoid with ε > 0 computes cDPO's loss: refuse it so that the name in the config is the loss
  // that runs; ipo and hinge have no ε at all.
  if (c.label_smoothing > 0 && c.loss != "cdpo" && c.loss != "robust") {
    const std::string hint = c.loss == "sigmoid" ? "; for label-smoothed DPO set dpo.loss: cdpo" : "";
    r.error("label_smoothing",
            fmt::format("only dpo.loss cdpo and robust use label smoothing, got {} with dpo.loss {}{}",
                        format_number(c.label_smoothing), c.loss, hint));
  }
  r.field("ipo_length_norm", c.ipo_length_norm, "IPO: average log-ratios over tokens");
  r.field("online", c.online, "online DPO: pairs built from each step's rollouts (the best- and worst-rewarded "
          "sample of each prompt); false = offline from preference data");
}

}  // namespace keel::config
