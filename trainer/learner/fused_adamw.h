// AdamW with a one-pass CPU update: torch::optim::AdamW's options, state (AdamWParamState) and
// serialization, so checkpoints, schedules and code that holds a torch::optim::AdamW are
// unchanged; only step() differs. For fp32 CPU parameters it updates each tensor in one fused
// pass (models/fused_cpu.h adamw_update) instead of torch's nine ATen ops; anything else (CUDA,
// other dtypes, non-contiguous tensors, amsgrad, sparse grads) takes torch's own step.
#pragma once

#include <torch/optim/adamw.h>

namespace keel::learner {

class FusedAdamW : public torch::optim::AdamW {
 public:
  using torch::optim::AdamW::AdamW;
  torch::Tensor step(LossClosure closure = nullptr) override;
};

}  // namespace keel::learner
