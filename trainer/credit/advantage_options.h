// Options of the advantage estimators (spec/credit-assignment.md §13): the common keys of the
// `advantage:` YAML section plus one small sub-struct per estimator that needs more, each with its
// read_<name>_options(Reader&, ...) function. Plain aggregates, defaults here and nowhere else.
// Deliberately not here: the estimators (one file pair each) and the config loader wiring
// (trainer/config/credit_config.*, which owns the `advantage:` section itself).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace keel::config {
class Reader;
struct AdvantageSection;
}  // namespace keel::config

namespace keel::credit {

/// GRPO-family group normalisation (grpo, dr_grpo, and the GRPO base of agrae/thr/spo/dcpo/verl_rank).
/// Groups of one are AdvantageOptions::singleton (it was grpo.singleton; that key is now an error).
struct GrpoOptions {
  /// TRL scale_rewards: "group" std (default) or "batch" std (still the group mean).
  std::string std_scope = "group";
};

/// GAE (§1.1).
struct GaeOptions {
  /// masked_whiten variance: "unbiased" (verl, default) or "biased" (OpenRLHF, clamp 1e-8).
  std::string whiten_var = "unbiased";
};

/// REINFORCE++ and REINFORCE++-baseline (§3.2), YAML `advantage.rpp`.
struct ReinforcePpOptions {
  /// true: verl — the return-to-go restarts after every masked position; false (default): the
  /// return carries across interior holes, which are skipped like GAE skips them.
  bool reset_on_holes = false;
  std::string whiten_var = "unbiased";  ///< "unbiased" (verl) | "biased" (OpenRLHF)
};

/// A-GRAE (§4), YAML `advantage.agrae`.
struct AgraeOptions {
  double alpha = 1.0;                           ///< attenuation of positives: × min(1, ω/α)
  std::string easy_term = "sqrt_one_minus_p";   ///< paper | "one_minus_sqrt_p" (released code form)
  double r_max = 1.0;                           ///< non-binary rewards: p = clamp(mean/r_max, 0, 1)
  /// Curriculum state: ω = momentum·ω_prev + (1−momentum)·ω_batch. 0 = the paper (per-batch ω_s).
  double omega_momentum = 0.0;
};

/// R³L positive amplification + pivotal credit (§5.2–5.3), YAML `advantage.r3l`.
struct R3lOptions {
  double alpha = 3.0;                 ///< amplification of non-negative scores of failures
  std::string baseline = "mean";      ///< "mean" | "logavgexp"
  double tau = 1.0;                   ///< temperature of the logavgexp baseline
  double success_threshold = 1.0;     ///< R ≥ this → score 1
  bool pivot_mask = true;             ///< apply the pivot mask when pivot_steps are given
};

/// THR / NTHR token reweighting (§6), YAML `advantage.thr`.
struct ThrOptions {
  std::string mode = "reweight";      ///< "reweight" | "thr_only" | "nthr"
  double p = 0.0;                     ///< p_thr, |p| < 1: > 0 exploitation, < 0 exploration
  double beta = 1.0;                  ///< anchor threshold factor β_thr
  double correct_threshold = 1.0;     ///< without `correctness`: correct ⇔ R ≥ this
};

/// ArenaRL tournament (§9), YAML `advantage.arena`.
struct ArenaOptions {
  std::string topology = "single_elimination";  ///< only the seeded single elimination is built
  std::string std = "unbiased";                  ///< "unbiased" (§0.2) | "population"
  /// Who scores a match. "none" (default): a pairwise judge model supplies
  /// AdvantageInputs::pair_judge (nothing in keel produces one yet). "reward_order": the sequence
  /// rewards are the judge, by name only — P(a ≻ b) = 1 / 0.5 / 0 as R_a > / = / < R_b, and the
  /// bidirectional match gives 1 point per direction to the higher reward, half each on a tie:
  /// (s_a, s_b) = (2P, 2(1 − P)) ∈ {(2, 0), (1, 1), (0, 2)}; AdvantageInputs::pair_judge is then ignored.
  std::string judge = "none";
};

/// SPO win-rate rewards (§8.4), YAML `advantage.spo`.
struct SpoOptions {
  std::string base = "grpo";   ///< advantage over the win rates: "grpo" | "rloo"
  /// true: one oracle call per unordered pair, P(j≻i) = 1 − P(i≻j); false: both orders, averaged.
  bool symmetric = true;
  /// Who gives P(a ≻ b). "none" (default): a pairwise judge model supplies
  /// AdvantageInputs::preference (nothing in keel produces one yet). "reward_order": the sequence
  /// rewards, by name only — P(a ≻ b) = 1 / 0.5 / 0 as R_a > / = / < R_b (identical rewards → every
  /// win rate 0.5 → a = 0); AdvantageInputs::preference is then ignored.
  std::string judge = "none";
};

/// SS-GRPO stage weighting (§10.1), YAML `advantage.ss`.
struct SsGrpoOptions {
  /// Λ, row-major K×K, upper triangular with unit diagonal. Default: the paper's 4 stages.
  std::vector<double> lambda = {1.0, 0.4, 0.6, 0.8,  //
                                0.0, 1.0, 0.4, 0.8,  //
                                0.0, 0.0, 1.0, 0.8,  //
                                0.0, 0.0, 0.0, 1.0};
};

/// DCPO contrastive selection (§11, INTERPRETATION), YAML `advantage.dcpo`.
struct DcpoOptions {
  /// Samples kept per group (half positives, half negatives). 0 (default) = half of each group,
  /// the paper's K/2 (16 sampled → 8 kept): 2·max(1, ⌊K/4⌋) rows, so a group of 4 keeps 2 and a
  /// group of 8 keeps 4 (INTERPRETATION for K not a multiple of 4: ⌊K/4⌋ per side, at least one
  /// pair). A number >= 2 keeps min(k_keep, K) rounded down to even, the same for every group.
  int64_t k_keep = 0;
};

/// VERL effective-rank shaping (§12), YAML `advantage.verl`.
struct VerlRankOptions {
  std::string base = "grpo";   ///< base estimator A0: "grpo" | "gae"
  double kappa = 2.0;          ///< bonus ≤ |A0|/κ
  double gain = 2.0;           ///< g of tend = sigmoid(g·dev_ERA)
  int64_t stride = 40;         ///< ERV/ERA prefix stride (used by response_rank_metrics)
  int64_t max_seq_len = 512;   ///< last tokens kept for the metrics
  double ema_alpha = 0.3;      ///< EMA rate of the metric baselines and of the task reward
  double aux_weight = 1.0;     ///< W
  bool aux_fix = true;         ///< true: scale = W; false: W·(1 − (ema_perf+1)/2)
  bool add_adv = true;         ///< shape advantages (§12.3)
  bool add_reward = false;     ///< add aux to the last-token reward before the base estimator
};

/// Everything an estimator may read. The first six fields are the `advantage:` section's common
/// keys (config::AdvantageSection); the sub-structs are its per-estimator subsections.
struct AdvantageOptions {
  double eps = 1e-6;        ///< std epsilon
  bool norm_by_std = true;  ///< divide by the group std
  double gamma = 1.0;       ///< discount
  double lam = 0.95;        ///< GAE λ
  bool whiten = true;       ///< batch whitening (gae, reinforce_pp*)
  /// Groups with a single (valid) sample, one rule for every grouped estimator (spec §2.1, §3.1):
  /// "error" (spec default) throws; "zero" gives them a = 0; "raw" applies the estimator's own
  /// no-baseline rule, stated in its header (grpo family: verl's mean 0, std 1 → a = R/(1+eps);
  /// rloo: a = R; reinforce_pp_baseline: baseline 0; r3l_opmd: b = 0; ss_grpo / turn_grpo: the
  /// return itself). arena_rank and spo_winrate have no reward for a lone sample and refuse "raw".
  std::string singleton = "error";
  GrpoOptions grpo;
  GaeOptions gae;
  ReinforcePpOptions rpp;
  AgraeOptions agrae;
  R3lOptions r3l;
  ThrOptions thr;
  ArenaOptions arena;
  SpoOptions spo;
  SsGrpoOptions ss;
  DcpoOptions dcpo;
  VerlRankOptions verl;
};

/// Copies the common keys of a loaded `advantage:` section (sub-structs keep their defaults).
AdvantageOptions advantage_options_from(const config::AdvantageSection& section);

// YAML readers, one per subsection: `advantage.<key>` → the sub-struct (unknown keys are errors).
void read_grpo_options(config::Reader& r, GrpoOptions& o);
void read_gae_options(config::Reader& r, GaeOptions& o);
void read_reinforce_pp_options(config::Reader& r, ReinforcePpOptions& o);
void read_agrae_options(config::Reader& r, AgraeOptions& o);
void read_r3l_options(config::Reader& r, R3lOptions& o);
void read_thr_options(config::Reader& r, ThrOptions& o);
void read_arena_options(config::Reader& r, ArenaOptions& o);
void read_spo_options(config::Reader& r, SpoOptions& o);
void read_ss_grpo_options(config::Reader& r, SsGrpoOptions& o);
void read_dcpo_options(config::Reader& r, DcpoOptions& o);
void read_verl_rank_options(config::Reader& r, VerlRankOptions& o);
/// Reads every subsection above under its key (grpo, gae, rpp, agrae, r3l, thr, arena, spo, ss,
/// dcpo, verl) from the `advantage:` section reader — the one call to wire into read_advantage.
void read_advantage_subsections(config::Reader& r, AdvantageOptions& o);

}  // namespace keel::credit
