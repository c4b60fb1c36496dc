// The uniform policy-loss interface of the learner (spec §1.2, §1.7, §2.4, §5.4, §7): every policy
// loss takes PolicyLossInputs + PolicyLossOptions and returns LossOutput; the registry maps the
// YAML name (learner.policy_loss) to the function. Every loss returns
//   L = L_pg + [kl.in_loss]·β·agg(KL(logp, logp_ref)) − c_ent·agg(H)
// (spec §1.7), so the trainer never special-cases a loss.
//
// Deliberately not here: advantages (trainer/credit/), the value loss (value_loss.h), DPO
// (dpo_loss.h), the model forward and the optimizer step.
//
// Shape legend: N rows (samples) of this micro-batch, T padded response length.
#pragma once

#include <functional>
#include <map>
#include <string>

#include <torch/types.h>

#include "base/registry.h"
#include "trainer/learner/kl.h"
#include "trainer/learner/loss_agg.h"
#include "trainer/learner/loss_output.h"

namespace keel::config {
struct LearnerSection;
struct KlSection;
}  // namespace keel::config

namespace keel::learner {

/// One micro-batch. Optional tensors are left undefined (torch::Tensor()) when absent; a loss
/// that needs one TORCH_CHECKs for it.
struct PolicyLossInputs {
  torch::Tensor logp;           ///< [N, T] log π_θ(sampled token), requires grad
  torch::Tensor logp_old;       ///< [N, T] behaviour / old-policy log-probs (no grad); opmd may omit it
  torch::Tensor advantages;     ///< [N, T] advantages, already broadcast over tokens
  torch::Tensor response_mask;  ///< [N, T] 1 on trained tokens (bool or 0/1)
  torch::Tensor logp_ref;       ///< [N, T] optional: reference log-probs, required when kl_in_loss
  torch::Tensor group_ids;      ///< [N] optional int64: prompt group of each row (p3o_v2 needs it)
  torch::Tensor entropy;        ///< [N, T] optional: per-token entropy with grad (entropy_from_logits);
                                ///<        required when entropy_coef > 0, else only a metric
  AggContext agg;               ///< global denominators of the whole mini-batch (see loss_agg.h)
};

/// Mirrors config sections `learner` and `kl` (trainer/config/credit_config.h); build it with
/// policy_loss_options(). Fields below the line are spec constants not exposed in YAML.
struct PolicyLossOptions {
  double clip_low = 0.2;        ///< ε_low: ratio clipped below at 1 − ε_low
  double clip_high = 0.2;       ///< ε_high: ratio clipped above at 1 + ε_high (DAPO 0.28, GSPO 4e-4)
  double dual_clip_c = 3.0;     ///< dual-clip constant c > 1 for A < 0; 0 = off
  AggOptions agg;               ///< learner.loss_agg + learner.agg_norm_len
  double entropy_coef = 0.0;    ///< c_ent of the entropy bonus
  bool kl_in_loss = false;      ///< kl.in_loss
  KlEstimator kl_estimator = KlEstimator::kK3;  ///< kl.estimator
  double kl_coef = 0.001;       ///< kl.coef (β of the KL loss)
  // ---- not in YAML ----
  double log_ratio_clamp = 20.0;     ///< |logp − logp_old| clamp before exp (verl, OpenRLHF)
  double gspo_log_ratio_max = 10.0;  ///< GSPO: upper clamp of the sequence log-ratio (verl)
  double opmd_tau = 1.0;             ///< OPMD: L_pg / (1 + τ) (R3L, Trinity default)
};

/// Builds the options from the loaded config sections (validates nothing the config loader did
/// not already; parses loss_agg and kl.estimator names).
PolicyLossOptions policy_loss_options(const config::LearnerSection& learner, const config::KlSection& kl);

using PolicyLossFn = std::function<LossOutput(const PolicyLossInputs&, const PolicyLossOptions&)>;
using PolicyLossRegistry = keel::Registry<PolicyLossFn>;

/// Registers ppo_clip, gspo, p3o_v1, p3o_v2, opmd.
void register_builtin_policy_losses(PolicyLossRegistry& registry);

// ---- the built-in losses (also callable directly) -------------------------------------------

/// ppo_clip (spec §1.2): per token L = max(−Aρ, −A·clip(ρ, 1−ε_low, 1+ε_high)), dual-clip
/// min(L, −A·c) where A < 0, ρ = exp(clamp(logp − logp_old, ±20)); agg with the configured mode.
/// Metrics: actor/pg_loss, actor/pg_clipfrac, actor/pg_clipfrac_lower, actor/ppo_kl (+ shared ones).
LossOutput ppo_clip_loss(const PolicyLossInputs& in, const PolicyLossOptions& opts);

/// gspo (spec §2.4): sequence ratio s_n = exp(Σ m·(logp − logp_old)/len_n), per-token form
/// log s_{n,t} = sg[log s_n] + logp − sg[logp] (clamped above at 10), PPO-clip without dual-clip,
/// aggregated with seq-mean-token-mean whatever the configured mode (the KL / entropy terms keep it).
LossOutput gspo_loss(const PolicyLossInputs& in, const PolicyLossOptions& opts);

/// p3o_v1 (spec §7, separate clipping): sequence-level PPO-clip on ρ_n = exp(clamp(Σ m·(logp −
/// logp_old), ±20)) with the row's advantage a_n (masked mean of its advantages, which are
/// expected as the pairwise advantage (r̃_n − mean_g r̃)·G/(2(G−1)), ±δ/2 for G = 2). Averaged over
/// pairs: Σ_n ℓ_n / (N'/2), N' = global non-empty rows.
LossOutput p3o_v1_loss(const PolicyLossInputs& in, const PolicyLossOptions& opts);

/// p3o_v2 (spec §7, joint clipping): per pair (i, j) of a group, ρ_ij = ρ_i/ρ_j,
/// ℓ = −min(ρ_ij·d, clip(ρ_ij)·d) with d = δ_ij/2 = (a_i − a_j)(G−1)/G. Needs group_ids; a group must
/// not be split across micro-batches or ranks.
LossOutput p3o_v2_loss(const PolicyLossInputs& in, const PolicyLossOptions& opts);

/// opmd (spec §5.4, R3L / Trinity): L_pg = agg(−A·logp) / (1 + τ): no ratio, no clipping.
LossOutput opmd_loss(const PolicyLossInputs& in, const PolicyLossOptions& opts);

// ---- helpers shared by the losses (exposed for tests and new losses) -------------------------

/// TORCH_CHECKs logp / advantages / response_mask (and logp_old unless `need_old` is false) are the
/// same [N, T], and the optional tensors' shapes when present.
void check_policy_loss_inputs(const PolicyLossInputs& in, const char* loss_name, bool need_old = true);

/// Adds the shared terms to a loss whose policy-gradient part is `pg_loss`:
///   loss = pg_loss + [kl_in_loss]·kl_coef·agg(KL) − entropy_coef·agg(H)
/// and fills actor/pg_loss, actor/kl_loss, actor/kl_coef, actor/entropy, actor/entropy_loss
/// (the KL and entropy use opts.agg — GSPO's forced mode concerns its policy term only).
LossOutput finish_policy_loss(torch::Tensor pg_loss, std::map<std::string, double> metrics,
                              const PolicyLossInputs& in, const PolicyLossOptions& opts);

}  // namespace keel::learner
