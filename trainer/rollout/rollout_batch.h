// RolloutBatch: the one struct that travels the data path (DESIGN.md): rollout fills the ids,
// masks, group ids and behaviour log-probs; reward fills rewards; credit fills advantages and
// returns; the learner reads them. No stage reaches back into an earlier one.
//
// Legend: N = prompts x samples_per_prompt rows (group ids say which rows share a prompt),
// P = longest prompt (left-padded), R = longest response (right-padded).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "trainer/data/record.h"

namespace keel::rollout {

struct RolloutBatch {
  // ---- rollout ----------------------------------------------------------------------------------
  at::Tensor prompt_ids;       ///< [N, P] int64, left-padded
  at::Tensor prompt_mask;      ///< [N, P] int64 1 real / 0 pad
  at::Tensor response_ids;     ///< [N, R] int64, right-padded
  at::Tensor response_mask;    ///< [N, R] int64 1 on generated tokens (the EOS included)
  at::Tensor old_logprobs;     ///< [N, R] float32 behaviour log-probs of the sampled tokens
  at::Tensor group_ids;        ///< [N] int64 prompt group of each row
  std::vector<std::string> prompt_texts;    ///< [N] rendered prompts
  std::vector<std::string> response_texts;  ///< [N] decoded responses (special tokens dropped)
  std::vector<std::string> finish_reasons;  ///< [N] eos | stop_token | length
  std::vector<const data::PromptRecord*> records;  ///< [N] the prompt record of each row
  int64_t policy_version = 0;  ///< learner step whose weights generated the batch
  // ---- multi-turn episodes (an environment, trainer/env/episodes.h); undefined otherwise ----------
  /// [N, R] int64 1 on every response-side token the model sees: its own turns AND the observations
  /// appended between them (response_mask marks its own tokens only). A prefix mask.
  at::Tensor response_attention;
  /// [N, R] int64 0-based turn of each policy token, −1 on observation tokens and padding.
  at::Tensor turn_ids;
  /// [N, K] float32 the environment's info values at each episode's last step (K = the factory's
  /// info_keys(), in order); [N, T, K] per turn (T = env.max_turns, 0 past the episode's end);
  /// [N, T] each turn's environment reward.
  at::Tensor env_info, env_turn_info, env_turn_rewards;
  /// [N, T] int64 the id of the observation each turn's step returned (env::message_id: equal texts,
  /// equal ids); −1 past the episode's end. What ONI counts N(m_t) with (the `oni` reward scheme).
  at::Tensor env_turn_message_ids;
  std::vector<std::string> env_keys;  ///< the K info keys of env_info's columns
  /// [N] int64 policy version of each row (disaggregated placement: set by the rollout rank, carried
  /// to the learner for the staleness check of async rollouts); undefined elsewhere.
  at::Tensor row_versions;
  // ---- reference / reward / credit -----------------------------------------------------------------
  at::Tensor ref_logprobs;     ///< [N, R] float32 under the frozen reference (when a KL term is on)
  at::Tensor values;           ///< [N, R] float32 critic values at rollout time (PPO), 0 on padding
  at::Tensor rewards;          ///< [N] float32 sequence rewards
  /// [N] float32 1 / 0: the verifiers' correctness verdict (rewards::RewardOutput::correct); undefined
  /// when no reward component judges correctness. What accuracy metrics, evaluation and the
  /// dynamic-sampling acc filter read.
  at::Tensor correct;
  /// [N, R] float32: the reward's dense per-token terms when it has them (RewardOutput::token_rewards),
  /// then, after shaping, the sequence reward on each row's last response token added.
  at::Tensor token_rewards;
  /// [N, R] float32 / [N, R] float32 1-0: a judge's per-step scores on each step's last token, and
  /// where the steps end (rewards::RewardOutput::step_scores / step_ends); undefined without a judge
  /// that cuts steps. What SS-GRPO's stages are built from.
  at::Tensor step_scores, step_end_mask;
  /// [N, G] float32: a pairwise judge's P(row i ≻ the j-th row of i's group, batch order)
  /// (rewards::RewardOutput::pair_prefs); undefined without one. The estimators' pairwise judge.
  at::Tensor pair_prefs;
  at::Tensor advantages;       ///< [N, R] float32
  at::Tensor returns;          ///< [N, R] float32
  at::Tensor loss_mask;        ///< [N, R] the mask the loss uses (response_mask unless credit changed it)

  int64_t size() const { return group_ids.defined() ? group_ids.size(0) : 0; }
};

}  // namespace keel::rollout

namespace keel::rollout {

/// The per-row tensors of a RolloutBatch other than group_ids, with their layout: what
/// select_rows(), concat() and the data-parallel gather (trainer/dist/batch_gather.h) walk, so a new
/// field is added in one place.
struct TensorField {
  enum class Layout { kPrompt, kResponse, kRow };  ///< [N, P] left-padded, [N, R] right-padded, [N]
  at::Tensor RolloutBatch::*member;
  Layout layout;
  bool token_ids;  ///< padded with the pad id (else `fill`)
  double fill = 0.0;
};
const std::vector<TensorField>& tensor_fields();

/// `t` padded to `width` columns as its layout pads (prompts on the left, responses on the right;
/// [N] rows unchanged) with `value`.
at::Tensor pad_columns(const at::Tensor& t, int64_t width, TensorField::Layout layout, double value);

/// Rows `rows` [K] int64 of a batch (every defined per-row field; group ids kept as they are).
RolloutBatch select_rows(const RolloutBatch& b, const at::Tensor& rows);

/// Batches stacked row-wise, prompts re-left-padded and responses re-right-padded to the widest;
/// group ids of part i are offset past those of parts 0..i-1 so that groups stay distinct. A field
/// must be defined in every part or in none. pad_id fills the new padding of id tensors.
RolloutBatch concat(const std::vector<RolloutBatch>& parts, int64_t pad_id = 0);

}  // namespace keel::rollout
