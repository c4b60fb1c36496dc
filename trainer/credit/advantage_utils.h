// Small tensor helpers shared by the estimators: input checks, R[n] = Σ_t r_tok, the last valid
// token, masked whitening (§1.1), return-to-go scans, and the common "adv/…" metrics.
// Deliberately not here: group statistics themselves (group_stats.h) and any estimator's own rule.
#pragma once

#include <map>
#include <string>

#include <ATen/core/Tensor.h>

#include "trainer/credit/advantage.h"
#include "trainer/credit/group_stats.h"

namespace keel::credit {

/// TORCH_CHECKs token_rewards [N, T] floating, response_mask [N, T], group_ids [N] int64, naming
/// `who` (the estimator) and the shapes received.
void check_core_inputs(const AdvantageInputs& in, const char* who);
/// TORCH_CHECKs that an optional field is present and has `sizes`.
void require_field(const at::Tensor& t, at::IntArrayRef sizes, const char* field, const char* who);
/// TORCH_CHECKs that kl_rewards is absent (outcome-only estimators put KL in the loss instead).
void reject_kl_rewards(const AdvantageInputs& in, const char* who);

/// advantage.singleton (spec §2.1 edge cases, §3.1): `single` [N] bool marks the rows whose group
/// has a single (valid) sample. TORCH_CHECKs that opts.singleton is error | zero | raw and, for
/// "error", that no row is marked, naming `who`. The zero / raw rule itself is the estimator's.
void check_singletons(const at::Tensor& single, const AdvantageOptions& opts, const char* who);

/// One column of per-stage or per-turn returns normalised within groups (ss_grpo, turn_grpo), in
/// float64: x [N] minus its group's mean over the rows where ok [N] (exactly 0 where those are
/// equal), divided by std + eps with opts.norm_by_std; rows of a group of one (`lone` [N]) get
/// opts.singleton's rule (zero: 0; raw: no baseline, std 1, so x/(1+eps) or x); rows not ok get 0.
/// check_singletons is the caller's. → [N] float64
at::Tensor normalise_within_groups(const at::Tensor& x, const GroupIndex& idx, const at::Tensor& ok,
                                   const at::Tensor& lone, const AdvantageOptions& opts);

/// response_mask as the dtype of token_rewards, values in {0, 1}. [N, T]
at::Tensor float_mask(const AdvantageInputs& in);
/// R[n] = Σ_t r_tok[n,t] over all t (verl's outcome score). [N]
at::Tensor sequence_rewards(const at::Tensor& token_rewards);
/// Largest t with m[n,t] = 1, −1 for an empty row. [N] int64
at::Tensor last_valid_index(const at::Tensor& mask);
/// A [N, T] tensor with x[n] at row n's last valid token and 0 elsewhere (nothing for empty rows).
at::Tensor place_at_last_valid(const at::Tensor& x, const at::Tensor& mask);

/// Batch-global masked whitening (§1.1): μ = Σm·x/Σm; unbiased: var = Σm(x−μ)²/(Σm−1),
/// x̂ = (x−μ)·rsqrt(var+1e-8) (verl); biased: var = Σm(x−μ)²/Σm, rsqrt(clamp(var, 1e-8)) (OpenRLHF).
/// `scale` false only subtracts the mean. Σm = 0 returns x unchanged; unbiased with Σm = 1 throws
/// (verl raises too). The result is NOT multiplied by m.
at::Tensor masked_whiten(const at::Tensor& x, const at::Tensor& mask, bool unbiased = true, bool scale = true);

/// Return-to-go G_t = r_t + γ·G_{t+1}, per row, backwards. Masked positions are skipped (G carried
/// unchanged, their reward ignored) unless `reset_on_holes`, where — like verl — every position
/// adds its reward and G restarts after each masked position. [N, T]
at::Tensor discounted_returns(const at::Tensor& rewards, const at::Tensor& mask, double gamma, bool reset_on_holes);

/// Adds adv/mean, adv/max, adv/min, returns/mean over valid tokens of `mask` (0 when none).
void add_advantage_metrics(AdvantageOutput& out, const at::Tensor& mask);

}  // namespace keel::credit
