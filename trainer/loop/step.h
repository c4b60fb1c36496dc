// One RL learner step (grpo, ppo) as the sequence of its stages:
//   sample (rollout + score, DAPO dynamic sampling) -> reference log-probs -> critic values
//   -> [ReMax baselines] -> [all-gather: every rank holds the global batch] -> shape -> credit
//   -> update -> step metrics.
// The weight sync (disaggregated), evaluation, checkpoints and metric writing follow in train().
#pragma once

#include <cstdint>

#include "trainer/learner/numerics_guard.h"
#include "trainer/loop/update.h"
#include "trainer/metrics/metrics.h"
#include "trainer/rollout/rollout_batch.h"

namespace keel::loop {

struct RunState;

/// The learner's part of an RL step on a scored batch: reference -> values -> shape -> credit ->
/// update. global = false: `b` is this rank's rows, all-gathered first when there are several
/// ranks (colocated); true: `b` is already the step's whole batch (disaggregated learners, which
/// receive every row).
StepOut rl_learn(RunState& s, learner::NumericsGuard& guard, int64_t step, rollout::RolloutBatch b,
                 metrics::Metrics m, bool global);

/// One RL step (grpo / ppo): sample -> rl_learn.
StepOut rl_step(RunState& s, learner::NumericsGuard& guard, int64_t step);

}  // namespace keel::loop
