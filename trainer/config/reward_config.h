// Config section of the reward: a list of named components (registered schemes) with weights,
// each keeping its scheme-specific parameters as a raw tree for the scheme's own reader.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "rewards/reward_spec.h"

namespace keel::config {

class Reader;
struct KnownNames;

/// The component list and scorer limits (the struct lives in rewards/, which builds from it).
using RewardComponent = rewards::ComponentSpec;
using RewardJudge = rewards::JudgeSpec;
using RewardSection = rewards::RewardSpec;

void read_reward(Reader& r, RewardSection& c, const KnownNames& known);

}  // namespace keel::config
