// KL penalty estimators k1 / k2 / k3 / abs and the straight-through forms (spec §1.4), the per-token
// KL-in-reward penalty, and the fixed / adaptive KL coefficient controller.
//
// Deliberately not here: where the reference log-probs come from (the reference model forward),
// and the KL-in-loss term itself (policy_loss.cpp adds coef·agg(kl_penalty(...)) to every loss).
//
// Shape legend: N rows (samples), T padded response length.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <torch/types.h>

namespace keel::learner {

/// Schulman's estimators of KL(π‖ref) per token, with Δ = logp − logp_ref (spec §1.4), plus |Δ|.
enum class KlEstimator {
  kK1,      ///< "k1":  Δ
  kK2,      ///< "k2":  ½Δ²
  kK3,      ///< "k3":  exp(−Δ) − 1 + Δ (inner log-ratio clamped to ±20, result to ±10, as verl)
  kK1Plus,  ///< "k1+": value of k1, gradient of k2 (straight-through)
  kK2Plus,  ///< "k2+": value and gradient of k2 (the identity of the straight-through family)
  kK3Plus,  ///< "k3+": value of k3, gradient of k2 (straight-through)
  kAbs,     ///< "abs": |Δ| (verl kl_penalty "abs"); gradient sign(Δ)·∇logp, 0 at Δ = 0; no clamp
};

/// One estimator's YAML name and the one-line description `keel list kl` shows.
struct KlEstimatorInfo {
  KlEstimator estimator;
  const char* name;
  const char* description;
};

/// Every estimator, in enum order: the one list that parsing, naming and the catalog read.
const std::vector<KlEstimatorInfo>& kl_estimators();

/// Parses a name of kl_estimators(); an unknown name throws keel::Error listing the choices.
KlEstimator parse_kl_estimator(const std::string& name);
const char* kl_estimator_name(KlEstimator est);

/// Per-token KL estimate [N, T] between logp [N, T] and logp_ref [N, T]. Differentiable w.r.t.
/// logp (straight-through forms: value = kX, gradient = that of k2 = Δ·∇logp, i.e.
/// k2 − sg[k2] + sg[kX]). Masked positions are not zeroed here (aggregation masks them).
torch::Tensor kl_penalty(const torch::Tensor& logp, const torch::Tensor& logp_ref, KlEstimator est);

/// Result of subtracting the KL penalty from token rewards.
struct KlRewardResult {
  torch::Tensor token_rewards;  ///< [N, T] r_tok − β·m·KL
  torch::Tensor kl;             ///< [N, T] m·KL (no grad)
  double current_kl = 0;        ///< mean over non-empty rows of the row's masked-mean KL (controller input)
  std::map<std::string, double> metrics;  ///< actor/reward_kl_penalty, actor/reward_kl_penalty_coeff
};

/// KL in the reward (PPO / REINFORCE++ style, spec §1.4 item 1): r_tok ← r_tok − β·KL_t with KL
/// computed between the behaviour policy logp_old [N, T] and the reference logp_ref [N, T] under
/// mask [N, T]; no gradient flows. Default estimator in the literature: k1.
KlRewardResult apply_kl_in_reward(const torch::Tensor& token_rewards, const torch::Tensor& logp_old,
                                  const torch::Tensor& logp_ref, const torch::Tensor& mask, KlEstimator est,
                                  double coef);

/// The KL coefficient β and its controller (spec §1.4): "fixed" never changes; "adaptive"
/// (Ziegler et al., verl AdaptiveKLController) does
///   e = clip(KL_cur / target − 1, −0.2, 0.2);   β ← β·(1 + e·n_steps / horizon).
/// The only state is β; state() / load_state() carry it through checkpoints.
class KlController {
 public:
  static KlController fixed(double coef);
  static KlController adaptive(double init_coef, double target, double horizon);
  /// From config (controller "fixed" | "adaptive", coef, target, horizon); throws keel::Error otherwise.
  static KlController from_config(const std::string& controller, double coef, double target, double horizon);

  double value() const { return value_; }
  bool is_adaptive() const { return adaptive_; }
  /// One step: current_kl from apply_kl_in_reward, n_steps = samples in the batch (verl passes the
  /// batch size). No-op for the fixed controller.
  void update(double current_kl, int64_t n_steps);

  /// {"kl_ctl/value": β}. load_state() requires that key and a finite β >= 0.
  std::map<std::string, double> state() const;
  void load_state(const std::map<std::string, double>& state);

 private:
  KlController(double value, bool adaptive, double target, double horizon)
      : value_(value), adaptive_(adaptive), target_(target), horizon_(horizon) {}
  double value_;
  bool adaptive_;
  double target_;
  double horizon_;
};

}  // namespace keel::learner
