// The learners `learner.algorithm` names, each with the traits the loop and the contract check
// read (whether it samples, trains a critic, holds a reference, which data it reads, where it
// runs). Registered beside each other here; the step functions live in trainer/loop/.
#pragma once

#include <string>

#include "base/registry.h"

namespace keel::learner {

struct LearnerTraits {
  bool samples = false;        ///< samples responses from the policy each step (rollout + reward)
  bool estimator = false;      ///< credit through advantage.estimator
  bool critic = false;         ///< trains a critic: its estimator must read values
  bool data_parallel = false;  ///< runs over several ranks (colocated)
  bool disaggregated = false;  ///< runs with dist.placement disaggregated
  std::string data_format;     ///< data.format auto resolves to this ("prompts" | "sft" | "preferences")
};

/// Learner name -> the keel command that runs it ("train" or "train-rm"), with its traits.
using LearnerRegistry = Registry<std::string, LearnerTraits>;

/// grpo, ppo, dpo, sft, rm. (Online DPO — dpo.online — samples; its traits are the offline ones,
/// and learner_traits() adjusts them for the config.)
void register_builtin_learners(LearnerRegistry& reg);

}  // namespace keel::learner
