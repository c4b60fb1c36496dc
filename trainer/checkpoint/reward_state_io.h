// A stateful reward scheme's checkpointable state (rewards::RewardState) as bytes and as files.
// Several ranks can each hold a scorer's state (colocated ranks, disaggregated reward ranks, or
// rollout ranks that score); the checkpoint holds one file per scorer, written by rank 0 after
// the states reach it as bytes (a collective, or inside the batch messages of disaggregated
// placement), so a checkpoint stays one atomic directory commit.
//   scorer 0: reward_state.pt, scorer i >= 1: reward_state.scorer<i>.pt (torch archives; the key
//   list is the archive's own). trainer_state.json's reward_state_scorers says how many there are.
#pragma once

#include <filesystem>
#include <string>

#include "rewards/reward.h"

namespace keel::checkpoint {

/// `state` as one byte string (a torch archive; tensors on any device are saved from the CPU).
std::string encode_reward_state(const rewards::RewardState& state);
/// The inverse; `what` names the source in errors (a file, or "rank 3's reward state").
rewards::RewardState decode_reward_state(const std::string& bytes, const std::string& what);

/// File name of scorer `index`'s state inside a checkpoint directory.
std::string reward_state_file(int index);

}  // namespace keel::checkpoint
