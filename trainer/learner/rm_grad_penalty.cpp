// Gradient-penalised discriminator loss (see rm_grad_penalty.h).
#include "trainer/learner/rm_grad_penalty.h"

#include <torch/torch.h>

namespace keel::learner {

torch::Tensor grad_penalty_from_norms(const torch::Tensor& grad_norms, const GradPenaltyOptions& opt) {
  TORCH_CHECK(grad_norms.defined() && grad_norms.dim() == 1, "grad_penalty_from_norms: grad_norms must be [B], got ",
              grad_norms.defined() ? grad_norms.sizes() : torch::IntArrayRef{});
  TORCH_CHECK(opt.lambda >= 0 && opt.target >= 0, "grad_penalty: lambda and target must be >= 0, got ", opt.lambda, ", ",
              opt.target);
  auto gap = grad_norms - opt.target;     // ‖∇‖ − k
  if (opt.one_sided) gap = gap.clamp_min(0);  // only gradients steeper than k are penalised
  return opt.lambda * gap * gap;
}

torch::Tensor discriminator_loss_per_pair(const torch::Tensor& expert_scores, const torch::Tensor& agent_scores) {
  TORCH_CHECK(expert_scores.defined() && expert_scores.dim() == 1, "discriminator_loss: expert_scores must be [B], got ",
              expert_scores.defined() ? expert_scores.sizes() : torch::IntArrayRef{});
  TORCH_CHECK(agent_scores.defined() && agent_scores.sizes() == expert_scores.sizes(),
              "discriminator_loss: agent_scores must be [B] like expert_scores ", expert_scores.sizes(), ", got ",
              agent_scores.defined() ? agent_scores.sizes() : torch::IntArrayRef{});
  namespace F = torch::nn::functional;
  return F::softplus(-expert_scores) + F::softplus(agent_scores);  // −log σ(s_e) − log(1 − σ(s_a))
}

InterpolatedGradPenalty interpolated_grad_penalty(const std::function<torch::Tensor(const torch::Tensor&)>& score_fn,
                                                  const torch::Tensor& z_expert, const torch::Tensor& z_agent,
                                                  const torch::Tensor& eps, const GradPenaltyOptions& opt) {
  TORCH_CHECK(z_expert.defined() && z_expert.dim() >= 1 && z_agent.defined() && z_agent.sizes() == z_expert.sizes(),
              "interpolated_grad_penalty: z_expert and z_agent must be [B, ...] of one shape, got ",
              z_expert.defined() ? z_expert.sizes() : torch::IntArrayRef{}, " and ",
              z_agent.defined() ? z_agent.sizes() : torch::IntArrayRef{});
  const int64_t b = z_expert.size(0);
  TORCH_CHECK(eps.defined() && eps.dim() == 1 && eps.size(0) == b, "interpolated_grad_penalty: eps must be [B] = [", b,
              "], got ", eps.defined() ? eps.sizes() : torch::IntArrayRef{});
  std::vector<int64_t> bshape(static_cast<size_t>(z_expert.dim()), 1);
  bshape[0] = b;
  const auto e = eps.to(z_expert.scalar_type()).view(bshape);  // [B, 1, ...]
  auto z_hat = (e * z_expert.detach() + (1 - e) * z_agent.detach()).requires_grad_(true);  // a leaf
  const auto f = score_fn(z_hat);  // [B]
  TORCH_CHECK(f.dim() == 1 && f.size(0) == b, "interpolated_grad_penalty: score_fn must return [B] = [", b, "], got ",
              f.sizes());
  const auto g = torch::autograd::grad({f.sum()}, {z_hat}, /*grad_outputs=*/{}, /*retain_graph=*/true,
                                       /*create_graph=*/true)[0];  // [B, ...]
  const auto norms = torch::sqrt(g.reshape({b, -1}).pow(2).sum(1) + 1e-12);  // [B]
  return {grad_penalty_from_norms(norms, opt), norms.detach()};
}

}  // namespace keel::learner
