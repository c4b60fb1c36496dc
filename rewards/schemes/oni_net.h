// The small character-level network behind ONI's learned intrinsic rewards (spec rewards.md D4;
// facebookresearch/oni rlaif/reward_model.py, ClassificationRewardModel), with everything needed to
// train it online and checkpoint it bit-exactly: message bytes -> [B, L] codes, the CNN + MLP module,
// a plain Adam whose moments live in a StateDict, and a 64-bit generator for minibatch sampling.
//
// Layout (as the released classifier; L = max_chars, E = embed_dim, H = hidden_dim):
//   bytes [B, L] -> Embedding(256, E, pad 0) -> Conv1d(E,H,7) ReLU MaxPool(3,3)
//   -> Conv1d(H,H,7) ReLU MaxPool(3,3) -> 4 x [Conv1d(H,H,3) ReLU] -> MaxPool(3,3)
//   -> flatten [B, H·P] -> Linear(H·P, 2H) ReLU -> MLP(mlp_hidden, ReLU) -> Linear(., n_out)
// P = positions after the last pool (5 for the released 256-byte NetHack message).
// INTERPRETATION: the input length is a parameter (the released model reads NetHack's fixed 256-byte
// message line; here a message is the UTF-8 bytes of any string, truncated / zero-padded to
// max_chars >= 123, the shortest length that leaves one position after the last pool); the released
// MLP hidden sizes are a command-line list, default here [64].
// Not here: what the outputs mean (classification logits or a scalar reward: oni_models.h).
//
// Legend: B messages, L = max_chars bytes.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "rewards/schemes/state_dict.h"

namespace keel::rewards {

struct OniNetOptions {
  int64_t max_chars = 256;                 ///< message bytes read (truncate / zero-pad); >= 123
  int64_t embed_dim = 32;                  ///< character embedding width
  int64_t hidden_dim = 64;                 ///< convolution channels (the FC layer has 2·hidden_dim)
  std::vector<int64_t> mlp_hidden = {64};  ///< hidden widths of the MLP head (INTERPRETATION)
  int64_t seed = 0;                        ///< weight initialisation and minibatch sampling seed
};

/// Shortest max_chars the CNN accepts.
constexpr int64_t kOniMinChars = 123;

/// Positions left after the last pool for input length L (0 when L < kOniMinChars).
int64_t oni_cnn_positions(int64_t max_chars);

/// Byte codes [B, L] int64: the first L bytes of each message (as unsigned 0..255), zero-padded.
at::Tensor oni_encode_messages(const std::vector<std::string>& messages, int64_t max_chars);

/// The char CNN + MLP with n_out outputs, initialised deterministically from options.seed.
class OniNet {
 public:
  OniNet(const OniNetOptions& o, int64_t n_out);
  /// codes [B, L] int64 -> [B, n_out] float32 (records autograd unless under a NoGradGuard).
  at::Tensor forward(const at::Tensor& codes) const;
  /// The trainable tensors, in a fixed order (the Adam state follows it).
  std::vector<at::Tensor> parameters() const;
  /// "<prefix><parameter name, dots as _>" per tensor (e.g. "net/conv1_weight"); values are cloned.
  void save_state(StateDict& out, const std::string& prefix) const;
  /// Copies the saved tensors in; a missing key or a shape mismatch is a keel::Error naming it.
  void load_state(const StateDict& in, const std::string& prefix);
  int64_t n_out() const { return n_out_; }

  struct Impl;  ///< the torch::nn module (oni_net.cpp)

 private:
  std::shared_ptr<Impl> impl_;
  int64_t n_out_;
};

struct OniAdamOptions {
  double lr = 1e-4;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
};

/// Adam (Kingma & Ba) with torch.optim.Adam's update order and defaults, no weight decay; its state
/// (step count, first and second moments) saves to a StateDict so training resumes bit-exactly.
class OniAdam {
 public:
  OniAdam(std::vector<at::Tensor> params, OniAdamOptions o);
  /// One update from the parameters' .grad() (parameters without a gradient are skipped).
  void step();
  void zero_grad();
  int64_t steps() const { return step_; }
  /// "<prefix>step", "<prefix>m/<i>", "<prefix>v/<i>".
  void save_state(StateDict& out, const std::string& prefix) const;
  void load_state(const StateDict& in, const std::string& prefix);

 private:
  std::vector<at::Tensor> params_, m_, v_;
  OniAdamOptions o_;
  int64_t step_ = 0;
};

/// SplitMix64: a 64-bit generator whose whole state is one integer (checkpointed as int64).
class OniRng {
 public:
  explicit OniRng(uint64_t seed) : state_(seed) {}
  uint64_t next();
  /// Uniform in [0, n), n >= 1.
  int64_t below(int64_t n);
  /// k distinct indices of [0, n) (a partial Fisher–Yates shuffle); all of [0, n) in order when k >= n.
  std::vector<int64_t> sample(int64_t n, int64_t k);
  void save_state(StateDict& out, const std::string& key) const;
  void load_state(const StateDict& in, const std::string& key);

 private:
  uint64_t state_;
};

}  // namespace keel::rewards
