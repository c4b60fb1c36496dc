// register_builtin_advantages: the explicit list of built-in estimators (see advantage.h).
#include "trainer/credit/advantage.h"

#include "trainer/credit/dr_grpo.h"
#include "trainer/credit/gae.h"
#include "trainer/credit/grpo.h"
#include "trainer/credit/reinforce_pp.h"
#include "trainer/credit/remax.h"
#include "trainer/credit/rloo.h"

namespace keel::credit {

void register_builtin_advantages(AdvantageRegistry& reg) {
  reg.add("gae", "PPO generalized advantage estimation with a critic, observation tokens skipped", advantage_gae);
  reg.add("grpo", "group-relative (R - mean) / (std + eps), broadcast over tokens", advantage_grpo);
  reg.add("dr_grpo", "Dr. GRPO: R - group mean, no std division", advantage_dr_grpo);
  reg.add("rloo", "leave-one-out baseline: (R - mean) * K / (K - 1)", advantage_rloo);
  reg.add("reinforce_pp", "REINFORCE++: discounted return-to-go, batch-whitened", advantage_reinforce_pp);
  reg.add("reinforce_pp_baseline", "REINFORCE++ with the group mean subtracted from the outcome",
          advantage_reinforce_pp_baseline);
  reg.add("remax", "ReMax: reward-to-go minus the greedy response's reward", advantage_remax);
}

}  // namespace keel::credit
