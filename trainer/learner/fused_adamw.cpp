#include "trainer/learner/fused_adamw.h"

#include <cmath>
#include <string>
#include <type_traits>

#include <torch/torch.h>

#include "models/fused_cpu.h"

namespace keel::learner {


torch::Tensor FusedAdamW::step(LossClosure closure) {
  // torch's step for anything the fused kernel does not cover, decided before touching any state.
  for (auto& group : param_groups()) {
    if (static_cast<torch::optim::AdamWOptions&>(group.options()).amsgrad()) return AdamW::step(std::move(closure));
    for (auto& p : group.params())
      if (p.grad().defined() &&
          (!models::fused_cpu_tensor(p) || p.grad().is_sparse() || !models::fused_cpu_tensor(p.grad())))
        return AdamW::step(std::move(closure));
  }
  torch::NoGradGuard no_grad;
  torch::Tensor loss;
  if (closure != nullptr) {
    at::AutoGradMode enable_grad(true);
    loss = closure();
  }
  using Key = typename std::decay_t<decltype(state())>::key_type;
  for (auto& group : param_groups()) {
    auto& o = static_cast<torch::optim::AdamWOptions&>(group.options());
    const double beta1 = std::get<0>(o.betas()), beta2 = std::get<1>(o.betas());
    for (auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      auto& slot = state()[compat::optimizer_state_key<Key>(p)];
      if (!slot) {
        auto fresh = std::make_unique<torch::optim::AdamWParamState>();
        fresh->step(0);
        fresh->exp_avg(torch::zeros_like(p, at::MemoryFormat::Preserve));
        fresh->exp_avg_sq(torch::zeros_like(p, at::MemoryFormat::Preserve));
        slot = std::move(fresh);
      }
      auto& st = static_cast<torch::optim::AdamWParamState&>(*slot);
      st.step(st.step() + 1);
      const double bias_correction1 = 1 - std::pow(beta1, static_cast<double>(st.step()));
      const double bias_correction2 = 1 - std::pow(beta2, static_cast<double>(st.step()));
      models::AdamWCoefficients c{};
      c.decay = static_cast<float>(1 - o.lr() * o.weight_decay());
      c.beta1 = static_cast<float>(beta1);
      c.one_minus_beta1 = static_cast<float>(1 - beta1);
      c.beta2 = static_cast<float>(beta2);
      c.one_minus_beta2 = static_cast<float>(1 - beta2);
      c.sqrt_bias_correction2 = static_cast<float>(std::sqrt(bias_correction2));
      c.eps = static_cast<float>(o.eps());
      c.neg_step_size = static_cast<float>(-o.lr() / bias_correction1);
      auto m = st.exp_avg(), v = st.exp_avg_sq();
      // e.g. state loaded from a checkpoint in another layout
      if (!models::fused_cpu_tensor(m) || !models::fused_cpu_tensor(v)) {
        m = m.contiguous();
        v = v.contiguous();
        st.exp_avg(m);
        st.exp_avg_sq(v);
      }
      auto pd = p.detach();
      models::adamw_update(pd, p.grad(), m, v, c);
    }
  }
  return loss;
}

}  // namespace keel::learner
