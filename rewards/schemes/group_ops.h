// Per-group reductions shared by the reward schemes that look at the G rollouts of one prompt
// (ARLCP, POW3R, C-GRPO, CMO, RetroAgent). Group ids are arbitrary int64 labels [N]; they are
// mapped once to a dense index 0..G-1. This is plumbing, not a scheme: no reward math here.
#pragma once

#include <cstdint>

#include <ATen/core/Tensor.h>

namespace keel::rewards {

/// Dense group index of a batch.
struct GroupIndex {
  at::Tensor index;        ///< [N] int64 in 0..num_groups-1 (order of first sorted id)
  int64_t num_groups = 0;
};

/// Maps arbitrary group labels [N] (int64) to a dense index.
GroupIndex make_group_index(const at::Tensor& group_ids);

/// Sum of x [N] (or [N, K]) over each group -> [G] (or [G, K]).
at::Tensor group_sum(const at::Tensor& x, const GroupIndex& g);
/// Max of x [N] over each group -> [G]; groups where every element is masked get `empty_value`.
/// `mask` [N] bool may be undefined (all valid).
at::Tensor group_max(const at::Tensor& x, const at::Tensor& mask, const GroupIndex& g, double empty_value);
/// Broadcasts per-group values [G] (or [G, K]) back to rows [N] (or [N, K]).
at::Tensor group_gather(const at::Tensor& per_group, const GroupIndex& g);

}  // namespace keel::rewards
