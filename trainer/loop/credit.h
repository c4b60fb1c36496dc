// Stage credit: the advantage estimator (advantage.estimator) on the shaped batch. Reads
// b.token_rewards, b.rewards, b.response_mask, b.group_ids, b.old_logprobs, b.values (critic),
// b.ref_logprobs (reference), the estimator state, and beside the batch ReMax's greedy baselines
// and the KL-in-reward term (stage shape), and the policy-side signals an estimator asks for (VERL's
// rank metrics, THR's hidden states and prediction errors); fills b.advantages, b.returns, b.loss_mask, the next
// step's estimator state and the estimator's metrics.
#pragma once

#include <cstdint>
#include <utility>

#include <ATen/core/Tensor.h>

#include "trainer/credit/advantage.h"
#include "trainer/loop/shape.h"
#include "trainer/metrics/metrics.h"
#include "trainer/rollout/rollout_batch.h"

namespace keel::loop {

struct RunState;

/// ReMax's baseline for every row of `b`: the verifier reward of its prompt's greedy response
/// (one greedy generation per group; `b` must hold records).
at::Tensor remax_baseline(RunState& s, const rollout::RolloutBatch& b, int64_t step);

/// `baseline`: remax_baseline() of the rows of `b` (undefined for other estimators). `step` is the
/// learner step (the KEEL_TEST_INJECT_NAN_STEP fault-injection hook of the rollback tests).
/// VERL's (ER, ERV, ERA) [N, 3] of every row, from the policy's final hidden states over its
/// response tokens (a no-grad pass in micro-batches; the policy is still the one that sampled `b`).
/// INTERPRETATION: the hidden state of a response token is the one it was sampled from (the
/// position before it), the representation the LM head read.
at::Tensor policy_rank_metrics(RunState& c, const rollout::RolloutBatch& b);

/// THR's inputs from the policy that sampled `b` (a no-grad pass in micro-batches): its final
/// hidden states [N, T, H] over the response tokens and the prediction errors g = onehot(y) − q
/// [N, T, U] on each group's vocabulary (credit::thr_prediction_errors), q the policy's next-token
/// probabilities at the rollout temperature kept on the batch's U distinct response tokens only.
std::pair<at::Tensor, at::Tensor> policy_thr_inputs(RunState& c, const rollout::RolloutBatch& b);

/// The estimators' pairwise judge from a judge model's preferences (b.pair_prefs): SPO's oracle
/// P(a ≻ b), and ArenaRL's bidirectional match (P(a ≻ b) + 1 − P(b ≻ a), its mirror).
std::pair<credit::PreferenceOracle, credit::PairJudge> judge_pair_oracles(const rollout::RolloutBatch& b);

/// SS-GRPO's stages from a judge's steps (b.step_scores, b.step_end_mask): step j of a row is stage
/// min(j, K − 1) ([interp] steps past the K-th merge into the last stage, which keeps the score of
/// its last step: the judge read the response through it); a stage's tokens run from the previous
/// stage's end to its own; tokens past a row's last step end are −1. K = the stages of ss.lambda.
struct StageInputs {
  at::Tensor ids;      ///< [N, R] int64
  at::Tensor rewards;  ///< [N, K] float32
  at::Tensor present;  ///< [N, K] bool
};
StageInputs judge_stages(const rollout::RolloutBatch& b, int64_t k);
/// SS-GRPO's stages from a multi-turn episode's phases: turn t is stage min(t, k − 1) (its policy
/// tokens; observations −1), its reward the environment's turn reward (a merged stage keeps its
/// last turn's), present where the turn was played.
StageInputs env_stages(const rollout::RolloutBatch& b, int64_t k);

void assign_credit(RunState& s, rollout::RolloutBatch& b, const Shaped& shaped, const at::Tensor& baseline,
                   int64_t step, metrics::Metrics& m);

}  // namespace keel::loop
