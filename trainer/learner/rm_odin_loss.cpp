// ODIN two-head reward-model loss (see rm_odin_loss.h).
#include "trainer/learner/rm_odin_loss.h"

#include <torch/torch.h>

namespace keel::learner {

namespace {

void check_pair_tensor(const torch::Tensor& t, const char* name, const torch::Tensor& ref) {
  TORCH_CHECK(t.defined() && t.dim() == 1 && t.sizes() == ref.sizes(), "odin_loss: ", name, " must be [B] like chosen_quality ",
              ref.sizes(), ", got ", t.defined() ? t.sizes() : torch::IntArrayRef{});
}

torch::Tensor flat_head(const torch::Tensor& w, const char* name) {
  TORCH_CHECK(w.defined() && (w.dim() == 1 || (w.dim() == 2 && w.size(0) == 1)), "odin_loss: ", name,
              " must be [H] or [1, H], got ", w.defined() ? w.sizes() : torch::IntArrayRef{});
  return w.reshape({-1});
}

}  // namespace

torch::Tensor pearson_correlation(const torch::Tensor& x, const torch::Tensor& y) {
  TORCH_CHECK(x.defined() && x.dim() == 1 && x.size(0) >= 1, "pearson_correlation: x must be [n], n >= 1, got ",
              x.defined() ? x.sizes() : torch::IntArrayRef{});
  TORCH_CHECK(y.defined() && y.sizes() == x.sizes(), "pearson_correlation: y must be [n] like x ", x.sizes(), ", got ",
              y.defined() ? y.sizes() : torch::IntArrayRef{});
  const auto yv = y.to(x.scalar_type());
  const auto xc = x - x.mean(), yc = yv - yv.mean();  // [n]
  return (xc * yc).sum() / torch::sqrt((xc * xc).sum() * (yc * yc).sum() + 1e-16);
}

torch::Tensor head_orthogonality(const torch::Tensor& quality_head, const torch::Tensor& length_head) {
  const auto wq = flat_head(quality_head, "quality_head"), wl = flat_head(length_head, "length_head");
  TORCH_CHECK(wq.sizes() == wl.sizes(), "odin_loss: quality_head ", quality_head.sizes(), " and length_head ",
              length_head.sizes(), " must have the same size");
  const auto nq = wq.norm().clamp_min(1e-8), nl = wl.norm().clamp_min(1e-8);
  return (wq * wl).sum().abs() / (nq * nl);
}

LossOutput odin_loss(const OdinLossInputs& in, const OdinLossOptions& opt) {
  TORCH_CHECK(in.chosen_quality.defined() && in.chosen_quality.dim() == 1, "odin_loss: chosen_quality must be [B], got ",
              in.chosen_quality.defined() ? in.chosen_quality.sizes() : torch::IntArrayRef{});
  check_pair_tensor(in.rejected_quality, "rejected_quality", in.chosen_quality);
  check_pair_tensor(in.chosen_length, "chosen_length", in.chosen_quality);
  check_pair_tensor(in.rejected_length, "rejected_length", in.chosen_quality);
  check_pair_tensor(in.chosen_tokens, "chosen_tokens", in.chosen_quality);
  check_pair_tensor(in.rejected_tokens, "rejected_tokens", in.chosen_quality);
  TORCH_CHECK(opt.length_weight >= 0 && opt.ortho_weight >= 0, "odin_loss: weights must be >= 0, got length_weight ",
              opt.length_weight, ", ortho_weight ", opt.ortho_weight);
  TORCH_CHECK(in.term_scale >= 0, "odin_loss: term_scale must be >= 0, got ", in.term_scale);

  // BT on the sum of the heads (the pair is judged by the full reward r_Q + r_L).
  RmLossInputs bt;
  bt.chosen_rewards = in.chosen_quality + in.chosen_length;
  bt.rejected_rewards = in.rejected_quality + in.rejected_length;
  bt.margins = in.margins;
  bt.denominator = in.denominator;
  LossOutput out = bt_loss(bt, opt.bt);

  // Length disentanglement over the batch's 2B responses.
  const auto rq = torch::cat({in.chosen_quality, in.rejected_quality});  // [2B]
  const auto rl = torch::cat({in.chosen_length, in.rejected_length});    // [2B]
  const auto len = torch::cat({in.chosen_tokens, in.rejected_tokens}).to(rq.scalar_type());  // [2B]
  const auto rho_q = pearson_correlation(rq, len), rho_l = pearson_correlation(rl, len);
  const auto cosine = head_orthogonality(in.quality_head, in.length_head);
  const auto extra = in.term_scale * (opt.length_weight * (rho_q.abs() - rho_l) + opt.ortho_weight * cosine.to(rq.scalar_type()));
  out.loss = out.loss + extra;

  torch::NoGradGuard ng;
  out.metrics["rm/loss"] = out.loss.item<double>();
  out.metrics["rm/quality_accuracy"] =
      (in.chosen_quality > in.rejected_quality).to(torch::kDouble).mean().item<double>();
  out.metrics["odin/quality_length_corr"] = rho_q.item<double>();
  out.metrics["odin/length_head_corr"] = rho_l.item<double>();
  out.metrics["odin/head_cosine"] = cosine.item<double>();
  return out;
}

}  // namespace keel::learner
