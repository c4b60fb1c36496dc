// Stage sample: rollout of a step's prompts, scored (stage score) attempt by attempt, with DAPO
// dynamic sampling when filter.dynamic_sampling is on. Reads the policy, tokenizer, data cursor and
// rollout section; fills the batch's ids, masks, behaviour log-probs, texts, records, group ids
// (0.. in order) and rewards, and the rollout / reward / filter metrics.
#pragma once

#include <cstdint>
#include <deque>
#include <vector>

#include <ATen/core/Tensor.h>

#include "trainer/data/record.h"
#include "trainer/metrics/metrics.h"
#include "trainer/rollout/rollout.h"
#include "trainer/rollout/rollout_batch.h"

namespace keel::config {
struct RolloutSection;
}

namespace keel::loop {

struct RunState;

/// The prompt records a sampled batch points to (RolloutBatch::records): keep it alive with the
/// batch. (A deque: earlier entries stay put as more are stored.)
using PromptStore = std::deque<std::vector<data::PromptRecord>>;

/// The rollout section's engine choice and paged-engine options (engine, kv_block_size,
/// kv_blocks, prefix_cache) into `ro`: what training and evaluation rollouts decode with.
void set_engine_options(rollout::RolloutOptions& ro, const config::RolloutSection& c);

/// Rollout options of training step `step`, generation attempt `attempt` (dynamic sampling).
rollout::RolloutOptions train_rollout_options(const RunState& s, int64_t step, int attempt);

/// Group ids renumbered 0.. in order of first appearance.
at::Tensor renumber_groups(const at::Tensor& group_ids);

/// Rollout + reward of prompts_per_step prompts. With DAPO dynamic sampling, groups whose metric
/// is identical across their samples are dropped and more prompts are generated (up to
/// filter.max_gen_batches batches) until prompts_per_step groups survive; if too few do, the
/// batch is topped up with dropped groups (counted in filter/topped_up_groups) so that the batch
/// arithmetic holds. `store` keeps the records the batch points to alive. With several colocated
/// ranks the batch is this rank's share. scoring = false (a disaggregated rollout rank with reward
/// ranks): generation only, no rewards.
rollout::RolloutBatch sample(RunState& s, int64_t step, PromptStore& store, metrics::Metrics& m,
                             bool scoring = true);

}  // namespace keel::loop
