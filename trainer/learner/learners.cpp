#include "trainer/learner/learners.h"

namespace keel::learner {

void register_builtin_learners(LearnerRegistry& reg) {
  // {samples, estimator, critic, data_parallel, disaggregated, data_format}
  reg.add("grpo", "group-relative policy optimization (critic-free RL)", "train",
          {true, true, false, true, true, "prompts"});
  reg.add("ppo", "PPO with a learned critic and GAE", "train", {true, true, true, true, true, "prompts"});
  reg.add("dpo", "direct preference optimization from preference pairs", "train",
          {false, false, false, true, false, "preferences"});
  reg.add("sft", "supervised fine-tuning on prompt/response pairs", "train", {false, false, false, true, false, "sft"});
  reg.add("rm", "Bradley-Terry reward-model training", "train-rm", {false, false, false, true, false, "preferences"});
}

}  // namespace keel::learner
