// ShardedAdamW: optimizer-state sharding over the learner ranks — ZeRO stage 1 (Rajbhandari et
// al. 2020, "ZeRO: Memory Optimizations Toward Training Trillion Parameter Models", P_os): the
// parameters, laid end to end, are cut into W equal slices; rank r keeps AdamW's two moments for
// slice r only and updates only those elements (in place, through views of the parameters), then
// every rank all-gathers the updated slices so the replicas agree again. AdamW is elementwise, so
// this computes what the unsharded optimizer computes on the same (already summed) gradients, with
// 1/W of its state on each rank. dist.sharding: optimizer.
//
// It is a torch::optim::Optimizer over the whole parameter list, so zero_grad() and the learning-
// rate schedule (which sets the group's AdamWOptions) work as for keel's AdamW; step() expects the
// gradients already summed over the ranks (DataParallelHooks::reduce_gradients) and is a
// collective. Checkpoints are sharded (MomentShards, optimizer_shards.h: each rank writes its
// slices' moments, read back on any number of ranks); the constructor also takes its slice of a
// whole state (an unsharded checkpoint's optimizer.pt). Gradient and parameter sharding (ZeRO-2 /
// 3): sharded_model.h.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include <torch/optim/adamw.h>

#include "trainer/dist/communicator.h"
#include "trainer/dist/optimizer_shards.h"
#include "trainer/learner/fused_adamw.h"

namespace keel::dist {

class ShardedAdamW : public torch::optim::AdamW, public MomentShards {
 public:
  /// `full`: an AdamW over the same parameters whose state this rank takes its slice of (a
  /// checkpoint's), or null for a fresh state. Parameters must be contiguous and stay where they
  /// are (the slices are views of them): build it after the model is placed.
  ShardedAdamW(Communicator& comm, const std::vector<at::Tensor>& params, const torch::optim::AdamWOptions& options,
               const torch::optim::AdamW* full = nullptr);

  /// This rank's AdamW step on its slice, then the all-gather of every slice. A collective.
  torch::Tensor step(LossClosure closure = nullptr) override;

  std::vector<MomentSegment> moment_segments(bool with_state) const override;
  void load_moments(const std::vector<MomentSegment>& segments) override;

  /// Refused: a sharded state is written through moment_segments() (optimizer_shards.h).
  void save(torch::serialize::OutputArchive& archive) const override;
  void load(torch::serialize::InputArchive& archive) override;

  int64_t total_elements() const { return total_; }
  /// Bytes of the AdamW moments this rank holds.
  int64_t state_bytes() const;
  /// Elements whose moments this rank holds.
  int64_t shard_elements() const;

 private:
  /// The part of parameter `param` (elements [offset, offset + length) of its flat view) that lies
  /// in this rank's slice, and a view of it (the inner optimizer's parameter).
  struct Piece {
    size_t param;
    int64_t offset, length;
    at::Tensor view;
  };

  /// Every rank's slice of a flat [total] tensor, all-gathered: this rank contributes of(piece)
  /// ([length] each, or undefined = zeros) at its pieces' places. A collective.
  at::Tensor all_gather_slices(const std::function<at::Tensor(const Piece&)>& of) const;

  Communicator& comm_;
  std::vector<at::Tensor> params_;
  int64_t total_ = 0;  ///< elements of all parameters
  int64_t slice_ = 0;  ///< elements per rank's slice (the last one padded)
  std::vector<Piece> pieces_;
  std::unique_ptr<learner::FusedAdamW> inner_;  ///< AdamW over the pieces' views
};

/// Bytes of an AdamW's moments on this rank (a ShardedAdamW's slice, or a whole state).
int64_t adamw_state_bytes(const torch::optim::AdamW& opt);

}  // namespace keel::dist
