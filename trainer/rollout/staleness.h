// Async rollouts (rollout.max_staleness k): the learner's check of the policy version each row was
// sampled with. staleness = learner's current version (updates done) - row version; rows with
// staleness > k are dropped and counted, the rest are kept in order. A pure function over the
// [N] version tensor: it never sees the batch, the model or a communicator.
// Deliberately not here: the importance correction itself — the policy loss's ratio already uses
// the behaviour log-probs the sampler carried with the rows (RolloutBatch::old_logprobs), which is
// exactly the off-policy correction async rollouts need.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include <ATen/core/Tensor.h>

namespace keel::rollout {

struct StalenessResult {
  at::Tensor keep;     ///< [K] int64 indices of the rows kept (staleness <= k), increasing
  int64_t dropped = 0; ///< N - K
  /// async/staleness_<d> for d = 0..k: rows at staleness d; async/staleness_mean, _max over all
  /// rows; rollout/dropped_stale: rows with staleness > k.
  std::map<std::string, double> metrics;
};

/// row_versions [N] int64 (each <= current_version), current_version >= 0, max_staleness k >= 0.
StalenessResult filter_stale_rows(const at::Tensor& row_versions, int64_t current_version, int max_staleness);

/// Largest K' <= kept rows that is a whole number of multiple-of-`unit` rows (the learner's
/// mini-batches need rows % mini_batch_size == 0 and whole prompt groups): `unit` = lcm(group
/// size, mini_batch_size).
int64_t whole_units(int64_t rows, int64_t group_size, int64_t mini_batch_size);

}  // namespace keel::rollout
