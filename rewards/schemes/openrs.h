// OpenRS — pairwise adaptive rubric with pointwise verifiable guardrails (spec rewards.md B3c;
// Jia et al., arXiv 2602.14069, repo Qwen-Applications/OpenRS evaluator.py / tools.py).
//   signed score s_j = +|score| if A wins, −|score| if B wins, skipped on tie or 0
//   any fatal criterion with s_j ≠ 0  ->  S = Σ_fatal s_j              (fatal veto)
//   otherwise                          ->  S = Σ_j w_j s_j / (Σ_j w_j + 1e-6) over non-zero criteria,
//                                          w = core 5, important 2, highlight 1;  |S| < min_score -> 0
//   bidirectional: "A" iff S_fwd > m and S_bwd ≤ −m, "B" iff S_bwd > m and S_fwd ≤ −m, else same
//   guardrail: a decisive pointwise verifier verdict overrides the rubric verdict.
// Turning verdicts into a GRPO reward is the spec's INTERPRETATION: round-robin mean of ±1/0
// verdicts against the other rollouts, or the verdict against one reference answer.
// The judge that writes criteria and scores is the scorer's business; this file is the arithmetic.
//
// Legend: P compared pairs, K criteria per pair (padded), B prompts, G rollouts per prompt.
#pragma once

#include <cstdint>

#include <ATen/core/Tensor.h>

namespace keel::config {
class Reader;
}

namespace keel::rewards {

/// Criterion type codes used in the `types` tensor.
enum class OpenRsType : int64_t { kFatal = 0, kCore = 1, kImportant = 2, kHighlight = 3 };

struct OpenRsOptions {
  double w_core = 5.0;
  double w_important = 2.0;
  double w_highlight = 1.0;
  double min_score = 0.0;  ///< |S| below this is zeroed; also the bidirectional margin
  double eps = 1e-6;       ///< added to the weight sum
};

/// Signed per-criterion score: winner 'A' -> +|score|, 'B' -> −|score|, anything else (tie) -> 0.
double openrs_signed_score(char winner, double score);
/// Aggregated S [P] from types [P, K] int64 (OpenRsType codes), signed scores [P, K], mask [P, K]
/// bool (undefined = all valid).
at::Tensor openrs_aggregate(const at::Tensor& types, const at::Tensor& signed_scores, const at::Tensor& mask,
                            const OpenRsOptions& o);
/// Debiased verdict [P] int64 in {+1 A wins, 0 same, −1 B wins} from forward S(A,B) [P] and
/// backward S(B,A) [P]. The spec states the A rule; the B rule is its role-swapped mirror
/// (INTERPRETATION of "symmetric for B").
at::Tensor openrs_bidirectional(const at::Tensor& s_forward, const at::Tensor& s_backward, const OpenRsOptions& o);
/// Guardrail: pvr [P] int64 (+1 / −1 decided by the verifier, 0 undecided or no ground truth)
/// overrides rubric [P] wherever it is non-zero.
at::Tensor openrs_guardrail(const at::Tensor& pvr, const at::Tensor& rubric);
/// Round-robin reward [B, G] from pairwise verdicts v [B, G, G] (v[b,i,j] = verdict of i against j,
/// the diagonal is ignored): R_i = (1/(G−1)) Σ_{j≠i} v(i,j). G = 1 gives 0.
at::Tensor openrs_round_robin_reward(const at::Tensor& verdicts);

void read_openrs_options(config::Reader& r, OpenRsOptions& o);

}  // namespace keel::rewards
