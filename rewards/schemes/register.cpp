// register_builtin_reward_schemes: the entry point that puts every shaping transform, aggregator and
// process reward of rewards/schemes/ (spec/rewards.md groups A–C) into the reward registry, beside
// the verifiers of register_builtin_rewards. The glue itself is split by spec group:
// register_group_a.cpp (scalar shaping), register_group_b.cpp (aggregators, intrinsic and cost
// channels), register_group_c.cpp (step / process rewards).
// Names are the spec summary table's YAML names; each group file documents its naming choices.
#include "rewards/reward.h"
#include "rewards/schemes/register_util.h"

namespace keel::rewards {

void register_builtin_reward_schemes(RewardRegistry& reg) {
  glue::register_group_a(reg);
  glue::register_group_b(reg);
  glue::register_group_c(reg);
  glue::register_env_scheme(reg);
}

}  // namespace keel::rewards
