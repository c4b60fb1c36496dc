// Stage update: the optimizer steps of each learner. RL (grpo, ppo): update_policy() reads the
// credited batch (advantages, returns, loss mask, behaviour / reference log-probs, values) and
// steps the policy (and the critic) over its mini-batches — with several ranks on this rank's
// slice of every global mini-batch, gradients all-reduced. SFT and DPO are whole learner steps
// here: they take their own mini-batch from the data (offline) or sample one (online DPO).
#pragma once

#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

#include "trainer/data/record.h"
#include "trainer/learner/numerics_guard.h"
#include "trainer/learner/rl_update.h"
#include "trainer/learner/sequence_batch.h"
#include "trainer/learner/supervised_update.h"
#include "trainer/metrics/metrics.h"
#include "trainer/rollout/rollout_batch.h"

namespace keel::loop {

struct RunState;

/// What one learner step reports.
struct StepOut {
  metrics::Metrics metrics;
  bool rollback = false;  ///< the numerics guard asked for a rollback
};

/// The RL update of a credited batch `b` (the step's whole batch on every learner rank).
learner::RlUpdateResult update_policy(RunState& s, const rollout::RolloutBatch& b, learner::NumericsGuard& guard);

learner::SupervisedOptions supervised_options(const RunState& s);

/// SFT: a mini-batch of (prompt, response + EOS) pairs — the task's gold responses, or the SFT
/// file's responses.
StepOut sft_step(RunState& s, learner::NumericsGuard& guard);

/// Offline DPO: a mini-batch of preference pairs (encode_pairs).
StepOut dpo_offline_step(RunState& s, learner::NumericsGuard& guard);

/// Online DPO: each prompt's best- and worst-rewarded samples become a pair (prompts whose samples
/// all scored the same give none). The pairs are taken from the rollout's own token ids.
StepOut dpo_online_step(RunState& s, learner::NumericsGuard& guard, int64_t step, metrics::Metrics m);

/// Chosen and rejected sequences of preference records sharing their prompts — the file's pairs,
/// or a task's synthetic ones (gold response vs Task::wrong_response with salt(i) for record i).
std::pair<learner::SequenceBatch, learner::SequenceBatch> encode_pairs(const RunState& s,
                                                                       const std::vector<data::PromptRecord>& records,
                                                                       const std::function<uint64_t(size_t)>& salt);

}  // namespace keel::loop
