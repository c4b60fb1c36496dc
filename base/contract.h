// Data contracts of the training step: what a registered piece (estimator, loss, learner, reward
// scheme) requires from the step's batch, named by the YAML key that made it require it. Stages
// declare what they produce; the run's contract check (trainer/loop/contracts.h) resolves every
// requirement against the producers a config switches on, so a requirement with no producer is a
// config error at `keel validate`, never a failure inside training.
//
// Inputs are strings (one vocabulary for every piece):
//   sequence / per-response   correct | prior | prior.<component> | rm_scores | criterion_scores
//   per step / turn / stage   step_scores | step_ends | turn_ids | stage_rewards
//   per token / policy side   hidden_states | token_scores | rank_metrics | ref_logprobs | values
//   from the loop             greedy_baselines | pair_judge
//   from the data             meta.<key> (every prompt record has the field)
//   from environments, models extra.<key>
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace keel {

struct Requirement {
  std::string input;  ///< what is needed, in the vocabulary above
  std::string key;    ///< the YAML path whose setting needs it, e.g. "reward.components.1.params.input"
};

using Contract = std::vector<Requirement>;

}  // namespace keel
