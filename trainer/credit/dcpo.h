// DCPO contrastive trajectory selection (spec §11; ChatShopBuddy, arXiv 2603.06065 — abstract only).
// INTERPRETATION (spec, clearly not the authors' exact rule): per group keep k_keep/2 "positives"
// (best reward, then shortest reasoning) and k_keep/2 "negatives" from the rest (worst reward,
// then longest reasoning); GRPO advantages over the kept subset only; the rest leave the loss.
// By default (k_keep 0) half of every group is kept, the paper's K/2, so DCPO differs from GRPO
// for any group of 3 or more rows (an absolute default like 8 kept every row of a group of <= 8).
// Deliberately not here: the hierarchical reward model (rewards side).
#pragma once

#include <cstdint>

#include <ATen/core/Tensor.h>

#include "trainer/credit/advantage.h"

namespace keel::credit {

/// Rows kept per side (positives = negatives = h) in a group of `group_size` rows: k_keep 0 (the
/// default) → the paper's K/2 kept, h = max(1, ⌊K/4⌋) (INTERPRETATION for K not a multiple of 4),
/// so K = 4 → 1, K = 8 → 2, K = 16 → 4 (the paper's 8 of 16); k_keep >= 2 → h = ⌊min(k_keep, K)/2⌋.
/// A group of one → 0.
int64_t dcpo_keep_per_side(int64_t k_keep, int64_t group_size);

/// Kept rows [N] bool: per group of K rows, h = dcpo_keep_per_side(k_keep, K); positives = the
/// first h by (R desc, ℓ asc, row asc), negatives = the first h of the remainder by (R asc, ℓ desc,
/// row asc). A group whose rewards and lengths are all equal is dropped. rewards [N], lengths [N].
at::Tensor dcpo_select(const at::Tensor& rewards, const at::Tensor& lengths, const at::Tensor& group_ids, int64_t k_keep);

/// Estimator "dcpo": dcpo.k_keep (0 = half of each group), eps, norm_by_std; reasoning_lengths [N] optional (INTERPRETATION:
/// default = the number of valid response tokens). AdvantageOutput::loss_mask drops the unselected rows.
/// advantage.singleton for a group of one row: error throws; zero leaves it unselected (a = 0, out
/// of the loss); raw keeps it with GRPO's raw score R/(1+eps) (R without norm_by_std).
/// Note: when a group's rewards are all equal the selection is by length, but the GRPO advantage
/// of the kept pair is then 0 — the spec's "length-contrast signal" does not survive GRPO.
AdvantageOutput advantage_dcpo(const AdvantageInputs& in, const AdvantageOptions& opts);

}  // namespace keel::credit
