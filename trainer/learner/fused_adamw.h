// AdamW with a one-pass CPU update: torch::optim::AdamW's options, state (AdamWParamState) and
// serialization, so checkpoints, schedules and code that holds a torch::optim::AdamW are
// unchanged; only step() differs. For fp32 CPU parameters it updates each tensor in one fused
// pass (models/fused_cpu.h adamw_update) instead of torch's nine ATen ops; anything else (CUDA,
// other dtypes, non-contiguous tensors, amsgrad, sparse grads) takes torch's own step.
#pragma once

#include <memory>
#include <string>
#include <type_traits>

#include <torch/optim/adamw.h>

#include "models/compat.h"

namespace keel::learner {

/// AdamW's state of parameter `p`, or null (never stepped).
inline const torch::optim::AdamWParamState* adamw_state(const torch::optim::AdamW& opt, const at::Tensor& p) {
  using Key = std::decay_t<decltype(opt.state())>::key_type;
  const auto it = opt.state().find(compat::optimizer_state_key<Key>(p));
  return it == opt.state().end() ? nullptr : static_cast<const torch::optim::AdamWParamState*>(it->second.get());
}

/// Sets AdamW's state of parameter `p`: `step` steps taken, moments `exp_avg` / `exp_avg_sq` (kept,
/// not copied).
inline void set_adamw_state(torch::optim::AdamW& opt, const at::Tensor& p, int64_t step, at::Tensor exp_avg,
                            at::Tensor exp_avg_sq) {
  using Key = std::decay_t<decltype(opt.state())>::key_type;
  auto st = std::make_unique<torch::optim::AdamWParamState>();
  st->step(step);
  st->exp_avg(std::move(exp_avg));
  st->exp_avg_sq(std::move(exp_avg_sq));
  opt.state()[compat::optimizer_state_key<Key>(p)] = std::move(st);
}

class FusedAdamW : public torch::optim::AdamW {
 public:
  using torch::optim::AdamW::AdamW;
  torch::Tensor step(LossClosure closure = nullptr) override;
};

}  // namespace keel::learner
