// StateDict lookup helpers (see state_dict.h).
#include "rewards/schemes/state_dict.h"

#include <torch/types.h>

#include "base/error.h"

namespace keel::rewards {

at::Tensor state_get(const StateDict& state, const std::string& key) {
  auto it = state.find(key);
  if (it == state.end()) fail("reward state: missing key '{}' in the checkpoint", key);
  return it->second.clone();
}

double state_get_double(const StateDict& state, const std::string& key) {
  const at::Tensor t = state_get(state, key);
  if (t.numel() != 1) fail("reward state: key '{}' holds {} values, expected one", key, t.numel());
  return t.to(torch::kFloat64).item<double>();
}

void state_put_double(StateDict& state, const std::string& key, double v) {
  state[key] = torch::scalar_tensor(v, torch::kFloat64);
}

}  // namespace keel::rewards
