// Bradley–Terry reward-model loss and ensemble preference strength (see rm_loss.h).
#include "trainer/learner/rm_loss.h"

#include <torch/torch.h>

namespace keel::learner {

namespace {

/// logσ(z) in the stable form −softplus(−z).
torch::Tensor stable_log_sigmoid(const torch::Tensor& z) { return -torch::nn::functional::softplus(-z); }

void check_inputs(const RmLossInputs& in, const RmLossOptions& opt) {
  TORCH_CHECK(in.chosen_rewards.defined() && in.chosen_rewards.dim() == 1, "bt_loss: chosen_rewards must be [B], got ",
              in.chosen_rewards.defined() ? in.chosen_rewards.sizes() : torch::IntArrayRef{});
  TORCH_CHECK(in.rejected_rewards.defined() && in.rejected_rewards.sizes() == in.chosen_rewards.sizes(),
              "bt_loss: rejected_rewards must be [B] like chosen_rewards ", in.chosen_rewards.sizes(), ", got ",
              in.rejected_rewards.defined() ? in.rejected_rewards.sizes() : torch::IntArrayRef{});
  TORCH_CHECK(!in.margins.defined() || in.margins.sizes() == in.chosen_rewards.sizes(), "bt_loss: margins must be [B] (",
              in.chosen_rewards.sizes(), "), got ", in.margins.sizes());
  TORCH_CHECK(opt.label_smoothing >= 0 && opt.label_smoothing < 0.5, "bt_loss: label_smoothing must be in [0, 0.5), got ",
              opt.label_smoothing);
  TORCH_CHECK(opt.reg_lambda >= 0, "bt_loss: reg_lambda must be >= 0, got ", opt.reg_lambda);
  TORCH_CHECK(in.denominator >= 0, "bt_loss: denominator must be >= 0, got ", in.denominator);
}

}  // namespace

torch::Tensor bt_loss_per_pair(const RmLossInputs& in, const RmLossOptions& opt) {
  check_inputs(in, opt);
  const auto& rc = in.chosen_rewards;
  const auto& rr = in.rejected_rewards;
  const torch::Tensor delta = rc - rr;  // [B]
  const torch::Tensor m = in.margins.defined() ? in.margins.to(delta.scalar_type()) : torch::zeros_like(delta);
  torch::Tensor loss = -stable_log_sigmoid(delta - m);  // −logσ(Δ − m)
  if (opt.label_smoothing > 0)                   // (1−α)·BT + α·BT(swapped pair)
    loss = (1.0 - opt.label_smoothing) * loss - opt.label_smoothing * stable_log_sigmoid(-delta - m);
  if (opt.reg_lambda > 0) loss = loss + opt.reg_lambda * (rc * rc + rr * rr);
  return loss;
}

LossOutput bt_loss(const RmLossInputs& in, const RmLossOptions& opt) {
  const torch::Tensor per_pair = bt_loss_per_pair(in, opt);  // checks the inputs
  const int64_t b = per_pair.size(0);
  const double denom = in.denominator > 0 ? in.denominator : static_cast<double>(std::max<int64_t>(b, 1));
  LossOutput out;
  out.loss = per_pair.sum() / denom;
  torch::NoGradGuard ng;
  const torch::Tensor delta = (in.chosen_rewards - in.rejected_rewards).detach().to(torch::kDouble);
  out.metrics["rm/loss"] = out.loss.item<double>();
  if (b > 0) {
    out.metrics["rm/accuracy"] = (delta > 0).to(torch::kDouble).mean().item<double>();
    out.metrics["rm/margin_mean"] = delta.mean().item<double>();
    out.metrics["rm/chosen_mean"] = in.chosen_rewards.detach().to(torch::kDouble).mean().item<double>();
    out.metrics["rm/rejected_mean"] = in.rejected_rewards.detach().to(torch::kDouble).mean().item<double>();
  }
  return out;
}

PreferenceStrength preference_strength(const torch::Tensor& chosen, const torch::Tensor& rejected) {
  TORCH_CHECK(chosen.defined() && chosen.dim() == 2 && chosen.size(0) >= 1,
              "preference_strength: chosen must be [M, B] with M >= 1, got ",
              chosen.defined() ? chosen.sizes() : torch::IntArrayRef{});
  TORCH_CHECK(rejected.defined() && rejected.sizes() == chosen.sizes(), "preference_strength: rejected must be [M, B] like chosen ",
              chosen.sizes(), ", got ", rejected.defined() ? rejected.sizes() : torch::IntArrayRef{});
  const torch::Tensor d = chosen - rejected;  // [M, B]
  PreferenceStrength out;
  out.mean = d.mean(0);                                            // μ̂_i
  out.std = (d - out.mean.unsqueeze(0)).pow(2).mean(0).sqrt();     // σ̂_i, population (÷ M)
  return out;
}

}  // namespace keel::learner
