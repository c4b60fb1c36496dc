// KL estimators, KL-in-reward and the KL controller (spec §1.4). See kl.h.
#include "trainer/learner/kl.h"

#include <algorithm>
#include <cmath>

#include "base/error.h"
#include "trainer/learner/loss_agg.h"

namespace keel::learner {

const std::vector<KlEstimatorInfo>& kl_estimators() {
  static const std::vector<KlEstimatorInfo> table = {
      {KlEstimator::kK1, "k1", "log ratio"},
      {KlEstimator::kK2, "k2", "half squared log ratio"},
      {KlEstimator::kK3, "k3", "exp(-x) - 1 + x, low variance"},
      {KlEstimator::kK1Plus, "k1+", "k1 value, k2 gradient (straight-through)"},
      {KlEstimator::kK2Plus, "k2+", "k2 value, k2 gradient"},
      {KlEstimator::kK3Plus, "k3+", "k3 value, k2 gradient (straight-through)"},
      {KlEstimator::kAbs, "abs", "absolute log ratio |x|"},
  };
  return table;
}

KlEstimator parse_kl_estimator(const std::string& name) {
  std::string known;
  for (const auto& e : kl_estimators()) {
    if (name == e.name) return e.estimator;
    known += (known.empty() ? "" : ", ") + std::string(e.name);
  }
  fail("unknown KL estimator '{}' (known: {})", name, known);
}

const char* kl_estimator_name(KlEstimator est) {
  for (const auto& e : kl_estimators())
    if (e.estimator == est) return e.name;
  return "?";
}

namespace {

torch::Tensor k1(const torch::Tensor& delta) { return delta; }
torch::Tensor k2(const torch::Tensor& delta) { return 0.5 * delta * delta; }
// verl low_var_kl: x = clamp(logp_ref − logp, ±20); exp(x) − x − 1, clamped to ±10.
torch::Tensor k3(const torch::Tensor& delta) {
  const torch::Tensor x = (-delta).clamp(-20.0, 20.0);
  return (x.exp() - x - 1.0).clamp(-10.0, 10.0);
}

}  // namespace

torch::Tensor kl_penalty(const torch::Tensor& logp, const torch::Tensor& logp_ref, KlEstimator est) {
  TORCH_CHECK(logp.sizes() == logp_ref.sizes(), "kl_penalty: logp ", logp.sizes(), " and logp_ref ",
              logp_ref.sizes(), " must have the same shape");
  const torch::Tensor delta = logp - logp_ref.detach();
  // value = k2 − sg[k2] + sg[kX]: forward value kX, gradient of k2 (verl's "+" variants).
  auto straight_through = [&](const torch::Tensor& value) {
    const torch::Tensor g = k2(delta);
    return g - g.detach() + value.detach();
  };
  switch (est) {
    case KlEstimator::kK1: return k1(delta);
    case KlEstimator::kK2: return k2(delta);
    case KlEstimator::kK3: return k3(delta);
    case KlEstimator::kK1Plus: return straight_through(k1(delta));
    case KlEstimator::kK2Plus: return k2(delta);
    case KlEstimator::kK3Plus: return straight_through(k3(delta));
    case KlEstimator::kAbs: return delta.abs();  // spec §1.4 abs = |Δ|
  }
  TORCH_CHECK(false, "kl_penalty: bad estimator");
}

KlRewardResult apply_kl_in_reward(const torch::Tensor& token_rewards, const torch::Tensor& logp_old,
                                  const torch::Tensor& logp_ref, const torch::Tensor& mask, KlEstimator est,
                                  double coef) {
  TORCH_CHECK(token_rewards.dim() == 2, "apply_kl_in_reward: token_rewards must be [N, T], got ",
              token_rewards.sizes());
  TORCH_CHECK(logp_old.sizes() == token_rewards.sizes() && logp_ref.sizes() == token_rewards.sizes() &&
                  mask.sizes() == token_rewards.sizes(),
              "apply_kl_in_reward: token_rewards ", token_rewards.sizes(), ", logp_old ", logp_old.sizes(),
              ", logp_ref ", logp_ref.sizes(), ", mask ", mask.sizes(), " must all be the same [N, T]");
  torch::NoGradGuard no_grad;
  const torch::Tensor m = mask.to(token_rewards.scalar_type());
  const torch::Tensor kl_raw = kl_penalty(logp_old.detach().to(m.scalar_type()), logp_ref.to(m.scalar_type()), est);
  const torch::Tensor kl = torch::where(m > 0, kl_raw * m, torch::zeros_like(kl_raw));
  KlRewardResult out;
  out.kl = kl;
  out.token_rewards = token_rewards - coef * kl;
  // INTERPRETATION: rows with no valid token are left out of the batch mean (verl averages their 0).
  const torch::Tensor len = m.sum(1);
  const torch::Tensor nonempty = len > 0;
  const double n_nonempty = nonempty.sum().item<double>();
  out.current_kl =
      n_nonempty > 0 ? ((kl.sum(1) / len.clamp_min(1)) * nonempty.to(kl.scalar_type())).sum().item<double>() / n_nonempty
                     : 0.0;
  out.metrics["actor/reward_kl_penalty"] = out.current_kl;
  out.metrics["actor/reward_kl_penalty_coeff"] = coef;
  return out;
}

KlController KlController::fixed(double coef) {
  if (!(coef >= 0) || !std::isfinite(coef)) fail("kl.coef must be a finite number >= 0, got {}", coef);
  return KlController(coef, /*adaptive=*/false, /*target=*/0, /*horizon=*/1);
}

KlController KlController::adaptive(double init_coef, double target, double horizon) {
  if (!(init_coef >= 0) || !std::isfinite(init_coef)) fail("kl.coef must be a finite number >= 0, got {}", init_coef);
  if (!(target > 0)) fail("kl.target must be > 0 for the adaptive KL controller, got {}", target);
  if (!(horizon > 0)) fail("kl.horizon must be > 0 for the adaptive KL controller, got {}", horizon);
  return KlController(init_coef, /*adaptive=*/true, target, horizon);
}

KlController KlController::from_config(const std::string& controller, double coef, double target, double horizon) {
  if (controller == "fixed") return fixed(coef);
  if (controller == "adaptive") return adaptive(coef, target, horizon);
  fail("unknown KL controller '{}' (known: fixed, adaptive)", controller);
}

void KlController::update(double current_kl, int64_t n_steps) {
  if (!adaptive_) return;
  const double err = std::clamp(current_kl / target_ - 1.0, -0.2, 0.2);
  value_ *= 1.0 + err * static_cast<double>(n_steps) / horizon_;
}

std::map<std::string, double> KlController::state() const { return {{"kl_ctl/value", value_}}; }

void KlController::load_state(const std::map<std::string, double>& state) {
  auto it = state.find("kl_ctl/value");
  if (it == state.end()) fail("KL controller state has no 'kl_ctl/value' entry");
  if (!(it->second >= 0) || !std::isfinite(it->second))
    fail("KL controller state 'kl_ctl/value' must be a finite number >= 0, got {}", it->second);
  value_ = it->second;
}

}  // namespace keel::learner
