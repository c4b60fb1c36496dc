// Per-group statistics over the flattened rows of a batch (spec §0.2), the one helper every
// estimator uses: dense group index from arbitrary int64 ids (groups need not be contiguous), then
// count / mean / std per group. std is unbiased (Bessel, torch.std) unless asked otherwise.
// Deliberately not here: what an estimator does with a group of one — each one states it.
#pragma once

#include <cstdint>

#include <ATen/core/Tensor.h>

namespace keel::credit {

/// Rows mapped to dense group numbers 0..num_groups−1, in increasing group-id order.
struct GroupIndex {
  at::Tensor inverse;      ///< [N] int64 dense group of each row
  int64_t num_groups = 0;  ///< G
};

/// Builds the dense index of `group_ids` [N] (int64, any order, any values).
GroupIndex group_index(const at::Tensor& group_ids);

struct GroupStats {
  at::Tensor count;  ///< [G] rows counted (valid rows), dtype of x
  at::Tensor mean;   ///< [G] Σx/K (0 for a group without valid rows)
  at::Tensor std;    ///< [G] sqrt(Σ(x−mean)²/(K−1)) (or /K); 0 where K < 2 — callers check count
};

/// Statistics of x [N] (floating) per group. `valid` [N] bool (optional) excludes rows; invalid
/// rows may hold NaN. `unbiased` false gives the population std.
GroupStats group_stats(const at::Tensor& x, const GroupIndex& index, const at::Tensor& valid = {},
                       bool unbiased = true);

}  // namespace keel::credit
