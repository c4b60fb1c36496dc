#include "trainer/checkpoint/reward_state_io.h"

#include <sstream>

#include <torch/torch.h>

#include "base/error.h"

namespace keel::checkpoint {

std::string encode_reward_state(const rewards::RewardState& state) {
  torch::serialize::OutputArchive a;
  for (const auto& [k, v] : state) a.write(k, v.to(torch::kCPU));
  std::ostringstream out;
  a.save_to(out);
  return std::move(out).str();
}

rewards::RewardState decode_reward_state(const std::string& bytes, const std::string& what) {
  torch::serialize::InputArchive a;
  try {
    a.load_from(bytes.data(), bytes.size());
  } catch (const c10::Error& e) {
    fail("{}: not a readable reward-state archive ({} bytes): {}", what, bytes.size(), e.what_without_backtrace());
  }
  rewards::RewardState out;
  for (const auto& k : a.keys()) {
    at::Tensor t;
    a.read(k, t);
    out[k] = t;
  }
  return out;
}

std::string reward_state_file(int index) {
  return index == 0 ? std::string("reward_state.pt") : "reward_state.scorer" + std::to_string(index) + ".pt";
}

}  // namespace keel::checkpoint
