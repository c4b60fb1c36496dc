// R³L advantages (spec §5.2–5.3; Shi et al., arXiv 2601.03715; shiweijiezero/R3L
// opmd_reweight_adv): Positive Amplification of group-baselined scores plus the Pivotal Credit
// mask that keeps only the diverging suffix (assistant segment k onwards) of a retry and its
// paired first attempt. Deliberately not here: the reflect-then-retry rollout (§5.1) and the OPMD
// loss (§5.4, trainer/learner/).
#pragma once

#include <ATen/core/Tensor.h>

#include "trainer/credit/advantage.h"

namespace keel::credit {

/// 0-based index of the contiguous run of m = 1 each token belongs to, −1 where m = 0. [N, T] int64
at::Tensor segment_ids_from_mask(const at::Tensor& mask);

/// Pivotal Credit mask (§5.2): m[n,t]·[seg[n,t] ≥ k_n] for k_n > 0; rows with k_n ≤ 0 unchanged.
/// mask [N, T], segment_ids [N, T] int64 (−1 = not an assistant token), pivot_steps [N] int64.
at::Tensor r3l_pivot_mask(const at::Tensor& mask, const at::Tensor& segment_ids, const at::Tensor& pivot_steps);

/// Estimator "r3l_opmd" (§5.3), r3l.*: per group b = mean R (or τ·(logsumexp(R/τ) − log K));
/// score = R − b; R ≥ success_threshold → 1; else score ≥ 0 → α·score; negative scores unchanged.
/// b is exact for a group of equal rewards (score 0 unless a success). A group of one follows
/// advantage.singleton: error throws, zero scores 0, raw is the authors' b = 0 (spec §5.3: R³L's
/// reflection / retry samples sit in singleton groups by design, so R³L recipes want raw). With pivot_steps (and r3l.pivot_mask) the advantages and
/// AdvantageOutput::loss_mask use the pivot mask; segments come from turn_ids, else from mask runs.
AdvantageOutput advantage_r3l_opmd(const AdvantageInputs& in, const AdvantageOptions& opts);

}  // namespace keel::credit
