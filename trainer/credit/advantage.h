// The uniform advantage-estimator interface (spec/credit-assignment.md §0, §13): one inputs struct,
// one options struct (advantage_options.h), one output struct, and the registry keyed by the YAML
// name. Every estimator is a pure function AdvantageFn over these; none sees the model, the YAML
// tree or a process group.
// Deliberately not here: the estimators (one file pair each) and the losses (trainer/learner/).
//
// Shape legend: N = B·G rows (B prompts × G samples, any row order), T = padded response length,
// K = turns or stages per row, D = hidden size, U = restricted vocabulary columns (THR).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>

#include "base/registry.h"
#include "trainer/credit/advantage_options.h"

namespace keel::credit {

/// State an estimator carries from one step to the next (verl_rank EMAs, agrae ω). The trainer
/// passes AdvantageOutput::state back as AdvantageInputs::state and checkpoints it.
using EstimatorState = std::map<std::string, double>;

/// ArenaRL judge: the scores (s_a, s_b) of rows a and b in one bidirectional match, i.e.
/// J(x, τ_a, τ_b) + J(x, τ_b, τ_a) summed per side (§9). Rows index the batch.
using PairJudge = std::function<std::pair<double, double>(int64_t a, int64_t b)>;

/// SPO preference oracle: P(row a ≻ row b) ∈ [0, 1], ties 0.5 (§8.4).
using PreferenceOracle = std::function<double(int64_t a, int64_t b)>;

struct AdvantageInputs {
  at::Tensor token_rewards;  ///< [N, T] float; outcome reward on the last valid token, R[n] = Σ_t r_tok[n,t]
  at::Tensor response_mask;  ///< [N, T] {0,1} (bool or float); holes = tool / observation tokens
  at::Tensor group_ids;      ///< [N] int64; equal ids share a prompt; groups need not be contiguous

  // ---- optional: each estimator TORCH_CHECKs the fields it needs -------------------------------
  at::Tensor values;             ///< [N, T] critic values V (gae; verl_rank with base gae)
  at::Tensor kl_rewards;         ///< [N, T] KL-in-reward term −β·KL_t, already scaled; added to the token
                                 ///< rewards by the return-based estimators (gae, reinforce_pp*, remax),
                                 ///< rejected by the outcome-only ones (put KL in the loss there)
  at::Tensor old_logprobs;       ///< [N, T] behaviour-policy log-probs (no built-in estimator reads it)
  at::Tensor ref_logprobs;       ///< [N, T] reference log-probs (no built-in estimator reads it)
  at::Tensor baseline_rewards;   ///< [N] remax: greedy-response reward of the row's prompt
  at::Tensor correctness;        ///< [N] bool; thr positive set (default R ≥ thr.correct_threshold)
  at::Tensor turn_ids;           ///< [N, T] int64 0-based turn / assistant-segment index, −1 elsewhere
                                 ///< (turn_grpo; r3l_opmd pivot, else derived from mask runs)
  at::Tensor pivot_steps;        ///< [N] int64 R³L retry_from_step k (≤ 0: nothing masked)
  at::Tensor stage_ids;          ///< [N, T] int64 stage index, −1 outside every stage (ss_grpo)
  at::Tensor stage_rewards;      ///< [N, K] per-stage judge scores R_{i,k} (ss_grpo)
  at::Tensor stage_present;      ///< [N, K] bool; stage k present in row n (ss_grpo; default all)
  at::Tensor token_scores;       ///< [N, T] THR influence scores s (else computed from the next two)
  at::Tensor hidden_states;      ///< [N, T, D] old-policy final hidden states (thr)
  at::Tensor pred_errors;        ///< [N, T, U] THR errors g = onehot(y) − q on V*, 0 outside the group's V*
  at::Tensor rank_metrics;       ///< [N, 3] VERL (ER, ERV, ERA) per response (response_rank_metrics)
  at::Tensor anchor_mask;        ///< [N] bool ArenaRL greedy anchor, one per group (default: first row)
  at::Tensor reasoning_lengths;  ///< [N] DCPO thinking-token counts (default: valid response tokens)
  PairJudge pair_judge;          ///< arena_rank
  PreferenceOracle preference;   ///< spo_winrate
  EstimatorState state;          ///< from the previous step's AdvantageOutput::state ({} on step 1)
};

struct AdvantageOutput {
  at::Tensor advantages;  ///< [N, T], zero wherever the effective mask is 0
  at::Tensor returns;     ///< [N, T] value / return targets
  /// [N, T] optional. When defined it replaces response_mask for the loss (R³L pivot masking,
  /// DCPO selection): rows / tokens it zeroes must not count in any loss denominator.
  at::Tensor loss_mask;
  std::map<std::string, double> metrics;  ///< "adv/…" and "<estimator>/…" keys
  EstimatorState state;                   ///< next step's AdvantageInputs::state ({} if stateless)
};

using AdvantageFn = std::function<AdvantageOutput(const AdvantageInputs&, const AdvantageOptions&)>;
/// What the rest of keel knows about an estimator without calling it (declared at registration).
struct EstimatorTraits {
  bool grouped = false;       ///< compares the samples of one prompt: samples_per_prompt >= 2
  bool outcome_only = false;  ///< reads the sequence outcome only (a KL-in-reward term would be summed away)
  bool needs_critic = false;  ///< reads values: learner ppo
  bool takes_critic = false;  ///< may run under learner ppo (needs_critic, or a base that can use one)
  /// Inputs beyond token rewards, mask and group ids (base/contract.h vocabulary), each resolved
  /// against the run's producers at config load.
  std::vector<std::string> inputs;
  /// Further inputs that depend on the estimator's options (e.g. a judge unless reward order is
  /// named, values for a GAE base); may be empty.
  std::function<std::vector<std::string>(const AdvantageOptions&)> option_inputs;

  /// Every input under options `o`: inputs, then option_inputs(o).
  std::vector<std::string> inputs_for(const AdvantageOptions& o) const {
    std::vector<std::string> all = inputs;
    if (option_inputs)
      for (auto& x : option_inputs(o)) all.push_back(std::move(x));
    return all;
  }
};
using AdvantageRegistry = keel::Registry<AdvantageFn, EstimatorTraits>;

/// A registry of kind "advantage estimator", empty.
inline AdvantageRegistry make_advantage_registry() { return AdvantageRegistry("advantage estimator"); }

/// Adds every built-in estimator under its spec §13 name: gae, grpo, dr_grpo, rloo, reinforce_pp,
/// reinforce_pp_baseline, remax, agrae, r3l_opmd, thr, arena_rank, spo_winrate, ss_grpo, turn_grpo,
/// dcpo, verl_rank.
void register_builtin_advantages(AdvantageRegistry& registry);

}  // namespace keel::credit
