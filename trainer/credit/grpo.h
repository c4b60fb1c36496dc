// GRPO group-relative advantage (spec §2.1; DeepSeekMath, verl compute_grpo_outcome_advantage,
// TRL): a_n = (R_n − mean_g)/(std_g + ε), broadcast over the row's valid tokens. Also the shared
// group-normalisation core that dr_grpo, agrae, thr, spo_winrate, dcpo and verl_rank build on.
// Deliberately not here: the clip loss and its aggregation (trainer/learner/).
#pragma once

#include <ATen/core/Tensor.h>

#include "trainer/credit/advantage.h"

namespace keel::credit {

/// Group-normalised scores of x [N]: (x − mean_g)/(std_g + eps) (or x − mean_g when !norm_by_std),
/// std unbiased; grpo.std_scope "batch" takes the std over all valid rows (TRL scale_rewards=batch).
/// Computed in float64 and returned in x's dtype; a group whose valid values are all equal scores
/// exactly 0 (§2.1 "std = 0 → a = 0"). Rows with valid = false or non-finite x are left out of the
/// statistics and score 0 (TRL's handling of unscorable samples). Groups with one valid row follow
/// opts.singleton: "error" throws, "zero" scores 0 (TRL), "raw" uses mean 0 / std 1 (verl, so
/// a = x/(1+eps), or x without the std). `who` names the caller in errors. → [N]
at::Tensor grpo_scores(const at::Tensor& x, const at::Tensor& group_ids, const AdvantageOptions& opts,
                       bool norm_by_std, const char* who, const at::Tensor& valid = {});

/// Estimator "grpo": uses eps, norm_by_std, singleton, grpo.std_scope. returns = advantages.
AdvantageOutput advantage_grpo(const AdvantageInputs& in, const AdvantageOptions& opts);

/// The outcome-only GRPO body shared by grpo and dr_grpo: group scores of the sequence rewards,
/// broadcast over the response mask. `name` labels input-check messages.
AdvantageOutput grpo_outcome_advantage(const AdvantageInputs& in, const AdvantageOptions& opts, bool norm_by_std,
                                       const char* name);

}  // namespace keel::credit
