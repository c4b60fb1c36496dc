// Per-group statistics over the flattened rows of a batch (spec §0.2), the one helper every
// estimator uses: dense group index from arbitrary int64 ids (groups need not be contiguous), then
// count / mean / std per group. std is unbiased (Bessel, torch.std) unless asked otherwise.
// Always accumulated in float64, whatever the input dtype, and exact for a group whose valid
// values are all bit-identical: mean is then that value and std exactly 0, so x − mean is exactly
// 0 and such a group gets a zero advantage (spec §2.1 "std = 0 → a = 0"), even where the float64
// sum is inexact (0.1 × 3) or a float32 mean would round (0.7f × 8).
// Deliberately not here: what an estimator does with a group of one (advantage.singleton, see
// advantage_utils.h check_singletons; each estimator states its rule).
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

/// [N] bool: the rows whose group has a single row (valid or not), in group_index's row order.
at::Tensor lone_rows(const GroupIndex& index);

/// Statistics of one call; count, mean and std have the dtype of x (computed in float64).
struct GroupStats {
  at::Tensor count;    ///< [G] rows counted (valid rows)
  at::Tensor mean;     ///< [G] Σx/K (0 for a group without valid rows); exactly x for a uniform group
  at::Tensor std;      ///< [G] sqrt(Σ(x−mean)²/(K−1)) (or /K); 0 where K < 2 — callers check count
  at::Tensor uniform;  ///< [G] bool: K ≥ 1 and every valid value bit-identical (then std is exactly 0)
};

/// Statistics of x [N] (floating) per group. `valid` [N] bool (optional) excludes rows; invalid
/// rows may hold NaN. `unbiased` false gives the population std.
GroupStats group_stats(const at::Tensor& x, const GroupIndex& index, const at::Tensor& valid = {},
                       bool unbiased = true);

}  // namespace keel::credit
