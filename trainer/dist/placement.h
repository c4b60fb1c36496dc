// Disaggregated placement: which world rank plays which role (dist.placement disaggregated) and
// who talks to whom. Layout: learner ranks first (0 .. L-1; world rank 0 is learner 0, the writer of
// metrics, evaluations and checkpoints), then rollout ranks (L .. L+R-1), then reward ranks
// (L+R .. L+R+W-1). Rollout rank i's rows are scored by reward rank i % W — or, with W = 0, by the
// rollout rank itself — and that "source" sends them to every learner rank.
// Deliberately not here: the loops of each role (trainer/loop/disaggregated.cpp) and colocated
// placement (every rank plays every role; trainer/dist/data_parallel.h).
#pragma once

#include <string>
#include <vector>

namespace keel::dist {

enum class Role { kLearner, kRollout, kReward };

/// "learner" | "rollout" | "reward".
const char* role_name(Role r);

struct Placement {
  int learners = 1;  ///< L >= 1 data-parallel learner ranks
  int rollouts = 1;  ///< R >= 1 generating ranks
  int rewards = 0;   ///< W >= 0 scoring ranks (0: rollout ranks score their own rows)

  int world() const { return learners + rollouts + rewards; }
  Role role_of(int world_rank) const;
  /// Index of a world rank among the ranks of its role (learner 2 -> 2, rollout L+1 -> 1).
  int index_of(int world_rank) const;
  int rollout_rank(int i) const { return learners + i; }
  int reward_rank(int j) const { return learners + rollouts + j; }
  /// The world rank that scores rollout i's rows and sends them to the learners.
  int source_of_rollout(int i) const { return rewards > 0 ? reward_rank(i % rewards) : rollout_rank(i); }
  /// Rollout indices a reward rank j serves, in increasing order (i % W == j).
  std::vector<int> rollouts_of_reward(int j) const;
  /// World ranks of the learner group (0 .. L-1) and of the weight-sync group ({learner 0} then the
  /// rollout ranks; learner 0 is member 0, the broadcast source).
  std::vector<int> learner_group() const;
  std::vector<int> sync_group() const;
};

/// Checks the counts against the world size; keel::Error naming them otherwise.
Placement make_placement(int learners, int rollouts, int rewards, int world_size);

}  // namespace keel::dist
