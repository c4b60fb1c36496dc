// DAPO dynamic-sampling group filter (spec §2.3 switch 2; Yu et al., arXiv 2503.14476; verl
// dapo reward manager) as a pure function: which groups to keep — those whose per-sample metric
// is not identical across all their samples (std = 0 groups give no policy gradient).
// Deliberately not here: the re-sampling loop (keep generating until enough groups survive) and
// the truncation to train_batch_size, which belong to the trainer.
#pragma once

#include <cstdint>
#include <vector>

#include <ATen/core/Tensor.h>

namespace keel::credit {

/// Group ids to keep, in order of first appearance. metric [N] (acc / score / seq_reward),
/// group_ids [N] int64. INTERPRETATION: a group of one is "identical across its samples" → dropped.
std::vector<int64_t> dynamic_sampling_keep_groups(const at::Tensor& metric, const at::Tensor& group_ids);

/// Rows of kept groups, [N] bool.
at::Tensor dynamic_sampling_row_mask(const at::Tensor& metric, const at::Tensor& group_ids);

}  // namespace keel::credit
