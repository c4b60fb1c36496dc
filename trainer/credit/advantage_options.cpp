// YAML readers of the per-estimator option subsections (see advantage_options.h).
#include "trainer/credit/advantage_options.h"

#include <cmath>

#include <fmt/format.h>

#include "trainer/config/credit_config.h"
#include "base/reader.h"

namespace keel::credit {

AdvantageOptions advantage_options_from(const config::AdvantageSection& s) {
  AdvantageOptions o;
  o.eps = s.eps;
  o.norm_by_std = s.norm_by_std;
  o.gamma = s.gamma;
  o.lam = s.lam;
  o.whiten = s.whiten;
  o.singleton = s.singleton;
  return o;
}

void read_grpo_options(config::Reader& r, GrpoOptions& o) {
  if (r.take("singleton"))  // moved: one rule for every grouped estimator
    r.error("singleton", "moved to advantage.singleton, one rule for every grouped estimator (error | zero | raw): "
                         "write the key under advantage instead of advantage.grpo");
  r.field("std_scope", o.std_scope, "std over the group or the whole batch (TRL scale_rewards)")
      .one_of({"group", "batch"}, "std scope");
}

void read_gae_options(config::Reader& r, GaeOptions& o) {
  r.field("whiten_var", o.whiten_var, "whitening variance: unbiased (verl) | biased (OpenRLHF)")
      .one_of({"unbiased", "biased"}, "variance");
}

void read_reinforce_pp_options(config::Reader& r, ReinforcePpOptions& o) {
  r.field("reset_on_holes", o.reset_on_holes, "restart the return-to-go after masked tokens (verl)");
  r.field("whiten_var", o.whiten_var, "whitening variance: unbiased (verl) | biased (OpenRLHF)")
      .one_of({"unbiased", "biased"}, "variance");
}

void read_agrae_options(config::Reader& r, AgraeOptions& o) {
  r.field("alpha", o.alpha, "positive advantages scaled by min(1, omega/alpha)").gt(0).le(1);
  r.field("easy_term", o.easy_term, "easy-focused term: paper sqrt(1-p) or released code 1-sqrt(p)")
      .one_of({"sqrt_one_minus_p", "one_minus_sqrt_p"}, "A-GRAE easy term");
  r.field("r_max", o.r_max, "reward scale for non-binary rewards (p = mean / r_max)").gt(0);
  r.field("omega_momentum", o.omega_momentum, "EMA of the batch success rate omega; 0 = per batch (paper)")
      .ge(0).lt(1);
}

void read_r3l_options(config::Reader& r, R3lOptions& o) {
  r.field("alpha", o.alpha, "positive amplification factor of non-negative failure scores").ge(0);
  r.field("baseline", o.baseline, "group baseline").one_of({"mean", "logavgexp"}, "R3L baseline");
  r.field("tau", o.tau, "logavgexp baseline temperature").gt(0);
  r.field("success_threshold", o.success_threshold, "rewards at or above this get score 1");
  r.field("pivot_mask", o.pivot_mask, "mask the shared prefix before retry_from_step");
}

void read_thr_options(config::Reader& r, ThrOptions& o) {
  r.field("mode", o.mode, "reweight | thr_only | nthr").one_of({"reweight", "thr_only", "nthr"}, "THR mode");
  r.field("p", o.p, "THR strength: > 0 exploitation, < 0 exploration").gt(-1).lt(1);
  r.field("beta", o.beta, "anchor threshold factor").ge(0);
  r.field("correct_threshold", o.correct_threshold, "without correctness labels: correct iff reward >= this");
}

void read_arena_options(config::Reader& r, ArenaOptions& o) {
  r.field("topology", o.topology, "tournament topology").one_of({"single_elimination"}, "arena topology");
  r.field("std", o.std, "std of the rank rewards").one_of({"unbiased", "population"}, "std kind");
  r.field("judge", o.judge,
          "who scores a match: none (a pairwise judge model) | reward_order (the higher sequence reward gets "
          "1 point per direction, half each on a tie)")
      .one_of({"none", "reward_order"}, "arena judge");
}

void read_spo_options(config::Reader& r, SpoOptions& o) {
  r.field("base", o.base, "advantage over the win rates").one_of({"grpo", "rloo"}, "SPO base");
  r.field("symmetric", o.symmetric, "one oracle call per pair, P(j>i) = 1 - P(i>j)");
  r.field("judge", o.judge,
          "who gives P(a > b): none (a pairwise judge model) | reward_order (1 / 0.5 / 0 by the sequence rewards)")
      .one_of({"none", "reward_order"}, "SPO judge");
}

void read_ss_grpo_options(config::Reader& r, SsGrpoOptions& o) {
  r.field("lambda", o.lambda, "stage-dependence matrix, row-major KxK, upper triangular, unit diagonal").nonempty();
  const auto k = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(o.lambda.size()))));
  if (k * k != static_cast<int64_t>(o.lambda.size())) {
    r.error("lambda", fmt::format("must hold K*K numbers (row-major), got {}", o.lambda.size()));
    return;
  }
  for (int64_t i = 0; i < k; ++i)
    for (int64_t j = 0; j <= i; ++j) {
      const double v = o.lambda[static_cast<size_t>(i * k + j)];
      if (i == j && v != 1.0)
        r.error("lambda", fmt::format("diagonal entry ({}, {}) must be 1.0, got {}", i, j, config::format_number(v)));
      if (i > j && v != 0.0)
        r.error("lambda", fmt::format("entry ({}, {}) below the diagonal must be 0.0, got {}", i, j,
                                      config::format_number(v)));
    }
}

void read_dcpo_options(config::Reader& r, DcpoOptions& o) {
  r.field("k_keep", o.k_keep,
          "samples kept per group, half positives and half negatives; 0 = half the group: 2*max(1, floor(K/4)), "
          "so 16 keeps 8, 8 keeps 4, 4 keeps 2")
      .ge(0);
  if (o.k_keep == 1) r.error("k_keep", "must be 0 (half the group) or >= 2 (a positive and a negative), got 1");
}

void read_verl_rank_options(config::Reader& r, VerlRankOptions& o) {
  r.field("base", o.base, "base estimator").one_of({"grpo", "gae"}, "VERL base estimator");
  r.field("kappa", o.kappa, "bonus at most |A0|/kappa").gt(0);
  r.field("gain", o.gain, "gain of the ERA meta-controller sigmoid");
  r.field("stride", o.stride, "ERV/ERA prefix stride in tokens").ge(1);
  r.field("max_seq_len", o.max_seq_len, "last tokens of a response used for the metrics").ge(1);
  r.field("ema_alpha", o.ema_alpha, "EMA rate of the metric baselines").gt(0).le(1);
  r.field("aux_weight", o.aux_weight, "aux scale W").ge(0);
  r.field("aux_fix", o.aux_fix, "fixed aux scale W (else annealed by the task-reward EMA)");
  r.field("add_adv", o.add_adv, "add the bounded bonus to the advantages");
  r.field("add_reward", o.add_reward, "add aux to the last-token reward before the base estimator");
}

void read_advantage_subsections(config::Reader& r, AdvantageOptions& o) {
  r.section("grpo", "GRPO group normalisation", [&](config::Reader& s) { read_grpo_options(s, o.grpo); });
  r.section("gae", "GAE", [&](config::Reader& s) { read_gae_options(s, o.gae); });
  r.section("rpp", "REINFORCE++", [&](config::Reader& s) { read_reinforce_pp_options(s, o.rpp); });
  r.section("agrae", "A-GRAE", [&](config::Reader& s) { read_agrae_options(s, o.agrae); });
  r.section("r3l", "R3L positive amplification", [&](config::Reader& s) { read_r3l_options(s, o.r3l); });
  r.section("thr", "THR token reweighting", [&](config::Reader& s) { read_thr_options(s, o.thr); });
  r.section("arena", "ArenaRL tournament", [&](config::Reader& s) { read_arena_options(s, o.arena); });
  r.section("spo", "SPO win-rate rewards", [&](config::Reader& s) { read_spo_options(s, o.spo); });
  r.section("ss", "SS-GRPO stages", [&](config::Reader& s) { read_ss_grpo_options(s, o.ss); });
  r.section("dcpo", "DCPO selection", [&](config::Reader& s) { read_dcpo_options(s, o.dcpo); });
  r.section("verl", "VERL effective-rank shaping", [&](config::Reader& s) { read_verl_rank_options(s, o.verl); });
}

}  // namespace keel::credit
