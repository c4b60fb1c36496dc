// The DPO family of preference losses (spec §8.1), MAH-DPO's per-objective aggregation and head
// selection (§8.2), behind one registry keyed by config dpo.loss:
//   sigmoid / cdpo  −(1−ε)·log σ(βΔ) − ε·log σ(−βΔ)          (ε = label_smoothing; ε = 0 → DPO;
//                   the config refuses sigmoid with ε > 0, so the loss named is the loss run)
//   robust          [−(1−ε)·log σ(βΔ) + ε·log σ(−βΔ)] / (1 − 2ε)
//   ipo             (Δ' − 1/(2β))²   (Δ' length-normalised when ipo_length_norm, TRL; else Δ, OpenRLHF)
//   hinge           relu(1 − βΔ)
// with Δ = (ℓ(y_w) − ℓ_ref(y_w)) − (ℓ(y_l) − ℓ_ref(y_l)) over summed completion log-probs.
//
// Deliberately not here: the model forwards that produce ℓ (sequence_logp() sums masked token
// log-probs), the preference dataset, DNO's outer loop (dno.h has its pure pieces).
//
// Shape legend: P preference pairs in this micro-batch, N = rows of a [N, T] token matrix, K heads.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <torch/types.h>

#include "base/registry.h"
#include "trainer/learner/loss_output.h"

namespace keel::config {
struct DpoSection;
}

namespace keel::learner {

/// Global denominators of a DPO mini-batch (all micro-batches, all ranks), like AggContext: the
/// micro-batch losses sum to the mini-batch loss.
struct DpoAggContext {
  double pairs = 0;                ///< number of pairs in the mini-batch
  std::vector<double> head_pairs;  ///< MAH-DPO: pairs per head k = 0..K−1 (empty = one objective)

  /// Pair counts of `head_ids` [P] (int64 in [0, heads)) or, when undefined, just P = `num_pairs`.
  static DpoAggContext count(int64_t num_pairs, const torch::Tensor& head_ids = {}, int64_t heads = 1);
  /// Sums counts (micro-batches of one rank, or the all-reduce over ranks).
  DpoAggContext& operator+=(const DpoAggContext& o);
};

struct DpoInputs {
  torch::Tensor chosen_logp;        ///< [P] ℓ(y_w) = Σ_t m·logp over completion tokens, requires grad
  torch::Tensor rejected_logp;      ///< [P] ℓ(y_l)
  torch::Tensor chosen_ref_logp;    ///< [P] optional ℓ_ref(y_w); absent (with rejected_ref_logp) = reference-free
  torch::Tensor rejected_ref_logp;  ///< [P] optional ℓ_ref(y_l)
  torch::Tensor chosen_len;         ///< [P] completion lengths of y_w (needed by ipo with length norm)
  torch::Tensor rejected_len;       ///< [P] completion lengths of y_l
  torch::Tensor head_ids;           ///< [P] optional int64: MAH-DPO objective / head of each pair
  DpoAggContext agg;                ///< global counts (DpoAggContext::count on the whole mini-batch)
};

/// Mirrors config section `dpo`; dpo_options() builds it.
struct DpoOptions {
  double beta = 0.1;             ///< β (for IPO: τ)
  double label_smoothing = 0.0;  ///< ε of cdpo / robust, in [0, 0.5)
  bool ipo_length_norm = true;   ///< ipo: divide each log-ratio by its completion length (TRL)
  bool reference_free = false;   ///< ignore ℓ_ref even when given (not in YAML)
};

DpoOptions dpo_options(const config::DpoSection& dpo);

using DpoLossFn = std::function<LossOutput(const DpoInputs&, const DpoOptions&)>;
using DpoLossRegistry = keel::Registry<DpoLossFn>;

/// Registers sigmoid, cdpo, robust, ipo, hinge.
void register_builtin_dpo_losses(DpoLossRegistry& registry);

enum class DpoKind { kSigmoid, kCdpo, kRobust, kIpo, kHinge };

/// Per-pair losses [P] of `kind` for margins `delta` [P] (Δ, or Δ' for length-normalised IPO).
torch::Tensor dpo_pair_losses(DpoKind kind, const torch::Tensor& delta, const DpoOptions& opts);

/// The full loss: per-pair losses aggregated over the mini-batch — Σ ℓ_p / pairs, or with head_ids
/// the MAH-DPO mean over objectives present in the mini-batch of each objective's mean pair loss.
/// Metrics: dpo/loss (contribution), rewards/chosen, rewards/rejected (β·(ℓ − ℓ_ref)),
/// rewards/margins, rewards/accuracies (chosen > rejected) as means over this micro-batch's pairs,
/// and dpo/loss_head<k> (local mean) per head present.
LossOutput dpo_loss(DpoKind kind, const DpoInputs& in, const DpoOptions& opts);

/// ℓ(y) = Σ_t m·logp [N] from token log-probs logp [N, T] and completion mask [N, T].
torch::Tensor sequence_logp(const torch::Tensor& logp, const torch::Tensor& mask);

/// MAH-DPO: picks for every row its head's token log-probs: logp_heads [K, N, T], head_ids [N]
/// (int64 in [0, K)) → [N, T]. Differentiable w.r.t. logp_heads.
torch::Tensor mah_dpo_select_head(const torch::Tensor& logp_heads, const torch::Tensor& head_ids);

/// MAH-DPO inference ensemble z = Σ_k w_k·z_k over logits [K, ...] with weights [K] normalised
/// to sum 1 (an undefined `weights` = uniform).
torch::Tensor mah_dpo_ensemble_logits(const torch::Tensor& logits, const torch::Tensor& weights = {});

}  // namespace keel::learner
