// AdamW with a one-pass CPU update: torch::optim::AdamW's options, state (AdamWParamState) and
// serialization, so checkpoints, schedules and code that holds a torch::optim::AdamW are
// unchanged; only step() differs. For fp32 CPU parameters it updates each tensor in one fused
// pass (models/fused_cpu.h adamw_update) instead of torch's nine ATen ops; anything else (CUDA,
// other dtypes, non-contiguous tensors, amsgrad, sparse grads) takes torch's own step.
#pragma once

#include <string>
#include <type_traits>

#include <torch/optim/adamw.h>

namespace keel::learner {

/// The key of a parameter in torch's optimizer state map: its TensorImpl's address as a string in
/// LibTorch 1.13, the pointer itself in later versions.
template <typename Key>
Key optimizer_state_key(const at::Tensor& p) {
  if constexpr (std::is_same_v<Key, std::string>) return c10::guts::to_string(p.unsafeGetTensorImpl());
  else return p.unsafeGetTensorImpl();
}

class FusedAdamW : public torch::optim::AdamW {
 public:
  using torch::optim::AdamW::AdamW;
  torch::Tensor step(LossClosure closure = nullptr) override;
};

}  // namespace keel::learner
