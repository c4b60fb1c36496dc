// register_builtin_advantages: the explicit list of built-in estimators (see advantage.h).
#include "trainer/credit/advantage.h"

#include "trainer/credit/agrae.h"
#include "trainer/credit/arena_rank.h"
#include "trainer/credit/dcpo.h"
#include "trainer/credit/dr_grpo.h"
#include "trainer/credit/gae.h"
#include "trainer/credit/grpo.h"
#include "trainer/credit/r3l_opmd.h"
#include "trainer/credit/reinforce_pp.h"
#include "trainer/credit/remax.h"
#include "trainer/credit/rloo.h"
#include "trainer/credit/spo_winrate.h"
#include "trainer/credit/ss_grpo.h"
#include "trainer/credit/thr.h"
#include "trainer/credit/turn_grpo.h"
#include "trainer/credit/verl_rank.h"

namespace keel::credit {

void register_builtin_advantages(AdvantageRegistry& reg) {
  // Traits: {grouped, outcome_only, needs_critic, takes_critic, requires}.
  const EstimatorTraits outcome_group{true, true, false, false, {}};
  reg.add("gae", "PPO generalized advantage estimation with a critic, observation tokens skipped", advantage_gae,
          {false, false, true, true, {"values"}});
  reg.add("grpo", "group-relative (R - mean) / (std + eps), broadcast over tokens", advantage_grpo, outcome_group);
  reg.add("dr_grpo", "Dr. GRPO: R - group mean, no std division", advantage_dr_grpo, outcome_group);
  reg.add("rloo", "leave-one-out baseline: (R - mean) * K / (K - 1)", advantage_rloo, outcome_group);
  reg.add("reinforce_pp", "REINFORCE++: discounted return-to-go, batch-whitened", advantage_reinforce_pp);
  reg.add("reinforce_pp_baseline", "REINFORCE++ with the group mean subtracted from the outcome",
          advantage_reinforce_pp_baseline, {true, false, false, false, {}});
  reg.add("remax", "ReMax: reward-to-go minus the greedy response's reward", advantage_remax,
          {false, false, false, false, {"greedy_baselines"}});
  reg.add("agrae", "A-GRAE: GRPO re-weighted by an easy-to-hard curriculum, positives attenuated", advantage_agrae,
          outcome_group);
  reg.add("r3l_opmd", "R3L: positive amplification of group-baselined scores + pivotal credit mask",
          advantage_r3l_opmd, outcome_group);
  reg.add("thr", "THR/NTHR: GRPO advantages reweighted per token by hidden-state influence scores", advantage_thr,
          {true, false, false, false, {"hidden_states"}});
  // The pairwise estimators need a judge model unless reward order is named as the judge.
  reg.add("arena_rank", "ArenaRL: seeded single-elimination tournament ranks, group-normalised",
          advantage_arena_rank, {true, true, false, false, {}, [](const AdvantageOptions& o) {
            return o.arena.judge == "reward_order" ? std::vector<std::string>{} : std::vector<std::string>{"pair_judge"};
          }});
  reg.add("spo_winrate", "SPO: pairwise-preference win rates as rewards, then GRPO or RLOO", advantage_spo_winrate,
          {true, true, false, false, {}, [](const AdvantageOptions& o) {
            return o.spo.judge == "reward_order" ? std::vector<std::string>{} : std::vector<std::string>{"pair_judge"};
          }});
  reg.add("ss_grpo", "SS-GRPO: per-stage returns through a stage-dependence matrix, normalised per stage",
          advantage_ss_grpo, {true, true, false, false, {"stage_rewards"}});
  reg.add("turn_grpo", "turn-level returns normalised per turn index across the group", advantage_turn_grpo,
          {true, false, false, false, {"turn_ids"}});
  reg.add("dcpo", "DCPO: contrastive best/worst selection per group, GRPO over the kept subset", advantage_dcpo,
          outcome_group);
  // VERL reads the policy's effective-rank metrics (the credit stage computes them from the
  // policy's hidden states), and a critic's values under a GAE base.
  reg.add("verl_rank", "VERL: effective-rank hidden-state bonus on a GRPO or GAE base", advantage_verl_rank,
          {false, false, false, true, {"rank_metrics"}, [](const AdvantageOptions& o) {
            return o.verl.base == "gae" ? std::vector<std::string>{"values"} : std::vector<std::string>{};
          }});
}

}  // namespace keel::credit
