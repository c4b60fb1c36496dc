#include "trainer/dist/placement.h"

#include "base/error.h"

namespace keel::dist {

const char* role_name(Role r) {
  switch (r) {
    case Role::kLearner: return "learner";
    case Role::kRollout: return "rollout";
    case Role::kReward: return "reward";
  }
  return "?";
}

Role Placement::role_of(int r) const {
  if (r < 0 || r >= world()) fail("placement: rank {} outside the world of {}", r, world());
  if (r < learners) return Role::kLearner;
  if (r < learners + rollouts) return Role::kRollout;
  return Role::kReward;
}

int Placement::index_of(int r) const {
  switch (role_of(r)) {
    case Role::kLearner: return r;
    case Role::kRollout: return r - learners;
    case Role::kReward: return r - learners - rollouts;
  }
  return -1;
}

std::vector<int> Placement::rollouts_of_reward(int j) const {
  std::vector<int> out;
  for (int i = j; rewards > 0 && i < rollouts; i += rewards) out.push_back(i);
  return out;
}

std::vector<int> Placement::learner_group() const {
  std::vector<int> out;
  for (int i = 0; i < learners; ++i) out.push_back(i);
  return out;
}

std::vector<int> Placement::sync_group() const {
  std::vector<int> out{0};
  for (int i = 0; i < rollouts; ++i) out.push_back(rollout_rank(i));
  return out;
}

Placement make_placement(int learners, int rollouts, int rewards, int world_size) {
  if (learners < 1 || rollouts < 1 || rewards < 0)
    fail("dist: disaggregated placement needs learner_ranks >= 1, rollout_ranks >= 1, reward_ranks >= 0; got {}, {}, {}",
         learners, rollouts, rewards);
  if (learners + rollouts + rewards != world_size)
    fail("dist: learner_ranks + rollout_ranks + reward_ranks = {} + {} + {} must equal the world size {}", learners,
         rollouts, rewards, world_size);
  return Placement{learners, rollouts, rewards};
}

}  // namespace keel::dist
