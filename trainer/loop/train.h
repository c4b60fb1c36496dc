// keel train's job once the config is loaded: the fixed lifecycle — ranks and device -> run
// directory -> the run state built from the registries -> optional resume -> the loop (one learner
// step; rollback on repeated non-finite steps; metrics, evaluation, checkpoint, weight sync) ->
// done. Learners (learner.algorithm): grpo (any critic-free estimator), ppo (a critic — value head
// or separate model — and gae), dpo (offline from preference data or a task's synthetic pairs;
// online from each step's rollouts), sft (task gold responses or SFT JSONL). An RL step is
// trainer/loop/step.h: sample -> score -> shape -> credit -> update.
// Several ranks (keel launch / torchrun, dist.placement colocated): each rank samples and scores
// its share of the step's prompts, the batch is all-gathered so that credit is computed on the
// global batch on every rank, and each rank trains on its slice of every global mini-batch with
// gradients all-reduced (trainer/dist/data_parallel.h) — the same steps as one process. Rank 0
// logs, evaluates and checkpoints. Disaggregated placement: trainer/loop/disaggregated.h.
// SFT and offline DPO run data-parallel too (each rank takes its share of every mini-batch). A
// stateful reward keeps one state per scoring rank; each is checkpointed (checkpoint_io.h).
// Not here: reward-model training (keel train-rm); online DPO with several ranks; dynamic sampling
// and remax with disaggregated placement.
#pragma once

#include <string>
#include <vector>

#include "rewards/reward.h"
#include "trainer/config/config.h"

namespace keel::loop {

/// A loaded `keel train` job.
struct TrainJob {
  config::RunConfig cfg;          ///< loaded and validated
  std::string resolved_yaml;      ///< the resolved config, written to the run directory
  std::string config_name;        ///< how messages name the config file
  int world_size = 1;             ///< ranks in the job
  std::string log_level;          ///< "" = run.log_level
  std::vector<std::string> argv;  ///< recorded in the run directory
};

/// Runs the job to run.total_steps (every rank calls it). Returns the process exit code.
int train(TrainJob job, const rewards::RewardRegistry& reward_schemes);

}  // namespace keel::loop
