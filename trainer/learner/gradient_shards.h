// An optimizer whose gradients live in shards across the learner ranks (dist.sharding gradients /
// full: trainer/dist/sharded_model.h). The learner's updates (rl_update, sft_update, dpo_update)
// talk to it through this interface, found by dynamic_cast on the optimizer they are given, so
// trainer/learner never sees a communicator:
//   * an UpdateScope spans one update: it shards the model's weights at the start (full) and makes
//     them whole again at the end, for rollout, evaluation, checkpoints and weight sync;
//   * reduce_and_clip() replaces "sum the gradients over the ranks, then clip_grad_norm_": the
//     gradients still whole (the layers' are reduce-scattered during backward) are reduce-scattered
//     into the shards, and the global norm is taken over the shards.
#pragma once

#include <exception>
#include <vector>

#include <ATen/core/Tensor.h>
#include <torch/optim/optimizer.h>

#include "trainer/learner/data_parallel_hooks.h"

namespace keel::learner {

class GradientShards {
 public:
  virtual ~GradientShards() = default;
  /// Collective. Start / end of an update (see UpdateScope).
  virtual void begin_update() = 0;
  virtual void end_update() = 0;
  /// Collective. Every gradient not yet in a shard is summed over the ranks into this rank's shard
  /// and freed; then the shards are scaled to a global L2 norm of at most max_norm (as
  /// torch::nn::utils::clip_grad_norm_). Returns the norm before clipping.
  virtual double reduce_and_clip(double max_norm) = 0;
};

/// The sharded optimizer behind `optimizer`, or null.
inline GradientShards* gradient_shards(torch::optim::Optimizer& optimizer) {
  return dynamic_cast<GradientShards*>(&optimizer);
}

/// begin_update() / end_update() of a sharded optimizer (no-op for any other).
class UpdateScope {
 public:
  explicit UpdateScope(torch::optim::Optimizer& optimizer) : shards_(gradient_shards(optimizer)) {
    if (shards_ != nullptr) shards_->begin_update();
  }
  ~UpdateScope() noexcept(false) {
    if (shards_ != nullptr && std::uncaught_exceptions() == 0) shards_->end_update();
  }
  UpdateScope(const UpdateScope&) = delete;
  UpdateScope& operator=(const UpdateScope&) = delete;

 private:
  GradientShards* shards_;
};

/// After a mini-batch's backward passes: the gradients summed over the ranks (dp, when set) and
/// clipped to max_norm; returns the global norm before clipping. A sharded optimizer does both
/// itself (GradientShards::reduce_and_clip). Defined in supervised_update.cpp.
double reduce_and_clip_gradients(torch::optim::Optimizer& optimizer, const DataParallelHooks* dp,
                                 const std::vector<at::Tensor>& params, double max_norm);

}  // namespace keel::learner
