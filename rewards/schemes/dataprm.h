// DataPRM — reflection-aware ternary process reward for agentic data analysis (spec rewards.md C2;
// Qiu et al., arXiv 2604.24198, repo zjunlp/DataMind dataprm/evaluate/prompt.py, run_eval.py).
// Step labels from the generative PRM: 1 correct and useful, 0.5 correctable / minor error,
// 0 fatal. Anything else or unparsable is −1, a judge failure (dropped, the sample flagged).
// Rule: when the final allowed step (10 for DABStep, 15 for ScienceAgentBench) still has no answer,
// that step scores 0. Trajectory aggregation is not in the released code; INTERPRETATION (spec):
// C1 aggregations over the valid steps; for RL R = R_outcome + β·mean_t(score_t), β = 0.5; for
// best-of-N the highest min wins, ties broken by the mean.
//
// Legend: N trajectories (G per prompt for best-of-N), S steps (left-aligned).
#pragma once

#include <cstdint>
#include <string>

#include <ATen/core/Tensor.h>

namespace keel::config {
class Reader;
}

namespace keel::rewards {

struct DataPrmOptions {
  double correct = 1.0;
  double correctable = 0.5;
  double fatal = 0.0;
  std::string parse_error = "drop";  ///< drop (exclude and flag) | zero (score it as fatal)
  double beta = 0.5;                 ///< weight of the mean step score in the RL reward
  std::string aggregate = "mean";    ///< min | prod | last | mean (the RL term)
  int64_t max_steps = 10;            ///< final allowed step, 1-based (DABStep 10, ScienceAgentBench 15)
};

/// Parses one judge output: the number in the last \boxed{...}, else the last number in the text.
/// Returns the configured label value for 1 / 0.5 / 0, or −1 for anything else.
double dataprm_parse_score(const std::string& judge_output, const DataPrmOptions& o);
/// Applies the final-step rule: rows with at least max_steps valid steps and no answer get 0 at
/// step max_steps. scores [N, S], step_mask [N, S] bool, has_answer [N] bool -> [N, S].
at::Tensor dataprm_final_step_rule(const at::Tensor& scores, const at::Tensor& step_mask, const at::Tensor& has_answer,
                                   const DataPrmOptions& o);

struct DataPrmAggregate {
  at::Tensor value;    ///< [N] aggregate over steps with a valid (≠ −1) score
  at::Tensor flagged;  ///< [N] bool, some step was a judge failure
};
/// Aggregate with judge failures (−1) dropped (or zeroed, per parse_error).
DataPrmAggregate dataprm_aggregate(const at::Tensor& scores, const at::Tensor& step_mask, const std::string& method,
                                   const DataPrmOptions& o);
/// R [N] = outcome + β · aggregate (rows whose every step failed add 0).
at::Tensor dataprm_reward(const at::Tensor& outcome, const at::Tensor& scores, const at::Tensor& step_mask,
                          const DataPrmOptions& o);
/// Best-of-N pick per group: [N] bool, exactly one true per group (highest min, then mean, then
/// the first row).
at::Tensor dataprm_best_of_n(const at::Tensor& scores, const at::Tensor& step_mask, const at::Tensor& group_ids,
                             const DataPrmOptions& o);

void read_dataprm_options(config::Reader& r, DataPrmOptions& o);

}  // namespace keel::rewards
