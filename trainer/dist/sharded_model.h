// ShardedModel: gradient and parameter sharding over the learner ranks — ZeRO stages 2 and 3
// (Rajbhandari et al. 2020, "ZeRO: Memory Optimizations Toward Training Trillion Parameter
// Models", P_os+g and P_os+g+p; stage 3 is what PyTorch FSDP calls FULL_SHARD).
// dist.sharding: gradients | full.
//
// Layout (FSDP's flat parameters): the model's trainable parameters are grouped into units, one
// per decoder layer plus a root unit (embeddings, final norm, LM head, value / reward heads). Each
// unit's parameters become views of one flat buffer [W * n], zero-padded to a multiple of the W
// ranks; rank r owns elements [r*n, (r+1)*n): its AdamW moments, its gradient shard and its fp32
// master slice (gradients: the slice of the whole weights itself; full: a copy that outlives them).
//
// One update (learner::UpdateScope, which rl_update / sft_update / dpo_update open):
//   * forward (gradient checkpointing's, the layers' only): before layer i its unit is all-gathered
//     into the flat buffer (full) while the next layer's gather is already in flight (prefetch),
//     and freed after it;
//   * backward: the recomputing layer gathers its unit again (prefetching the layer below), runs its
//     backward, then reduce-scatters the layer's gradients into this rank's shard and frees them
//     (both levels), and frees the weights (full). Only one or two layers' weights and one layer's
//     gradients exist whole at a time;
//   * after the mini-batch, reduce_and_clip reduce-scatters what is still whole (the root unit's
//     gradients), clips over the shards' global norm, and step() runs AdamW on the slices, then
//     all-gathers the units that stay whole (gradients: all; full: the root);
//   * at the end of the update every unit is gathered again: rollout, evaluation, the reference
//     passes, checkpoints and weight sync see a whole model, as with dist.sharding none. The root
//     unit stays whole throughout (FSDP keeps its root unit gathered between forward and backward
//     too).
// AdamW is elementwise, so W ranks compute what one process computes on the same summed gradients,
// within fp32 rounding of the summation order (tests/trainer/dist/sharded_model_test.cpp).
//
// Needs model.activation_checkpointing: the recomputing backward is where a layer's weights are
// gathered again and where its gradients are complete (models::LayerResidency). Checkpoints are
// sharded (MomentShards: each rank writes its slices' moments, optimizer_shards.h; the weights are
// whole outside the update and written once, as HF safetensors). Deliberately not here: LoRA (its adapters are small;
// dist.sharding optimizer covers them), sharding the frozen reference model, and keeping weights
// sharded outside the update (rollout needs them whole).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include <torch/optim/adamw.h>

#include "models/transformer.h"
#include "trainer/dist/communicator.h"
#include "trainer/dist/optimizer_shards.h"
#include "trainer/learner/fused_adamw.h"
#include "trainer/learner/gradient_shards.h"

namespace keel::dist {

enum class ShardLevel { kGradients, kFull };

class ShardedModel : public learner::FusedAdamW, public learner::GradientShards, public MomentShards {
 public:
  /// Takes over `model`'s trainable parameters (they become views of the units' flat buffers) and
  /// installs itself as the model's LayerResidency. `full`: an AdamW over model.parameters() whose
  /// state this rank takes its slices of (a checkpoint's), or null for a fresh state. The weights
  /// must be equal on every rank (replicate_parameters first).
  ShardedModel(Communicator& comm, models::Transformer model, ShardLevel level,
               const torch::optim::AdamWOptions& options, const torch::optim::AdamW* full = nullptr);
  ~ShardedModel() override;
  ShardedModel(const ShardedModel&) = delete;
  ShardedModel& operator=(const ShardedModel&) = delete;

  /// AdamW on this rank's slices (the group's options, which the LR schedule sets), then the
  /// all-gather of the units that stay whole. A collective.
  torch::Tensor step(LossClosure closure = nullptr) override;

  void begin_update() override;
  void end_update() override;
  double reduce_and_clip(double max_norm) override;

  std::vector<MomentSegment> moment_segments(bool with_state) const override;
  void load_moments(const std::vector<MomentSegment>& segments) override;

  /// Refused: a sharded state is written through moment_segments() (optimizer_shards.h).
  void save(torch::serialize::OutputArchive& archive) const override;
  void load(torch::serialize::InputArchive& archive) override;

  ShardLevel level() const { return level_; }
  /// Bytes of the AdamW moments this rank holds.
  int64_t state_bytes() const;
  /// Bytes this rank holds now of weights (whole or master slices), gradients (whole or shards),
  /// AdamW moments and gather buffers in flight: ZeRO's "model states".
  int64_t model_state_bytes() const;
  /// The largest model_state_bytes() seen at the points where it peaks (a unit gathered, a unit's
  /// whole gradients with the buffer of their reduce-scatter, the step) since reset_peak().
  int64_t peak_model_state_bytes() const { return peak_; }
  void reset_peak() { peak_ = model_state_bytes(); }

 private:
  struct Unit {
    std::vector<size_t> params;  ///< indices into params_
    int64_t numel = 0;           ///< elements of its parameters
    int64_t shard = 0;           ///< elements per rank (numel padded to a multiple of W, over W)
    at::Tensor flat;             ///< [W * shard]; the parameters are views of it
    at::Tensor master;           ///< [shard] this rank's slice, what AdamW updates (gradients: a view of flat; full: its own)
    std::unique_ptr<CommWork> pending;  ///< the in-flight gather into flat
  };
  class Residency;

  Unit& layer_unit(int64_t layer) { return units_[static_cast<size_t>(layer + 1)]; }
  /// Whether the unit's flat buffer holds memory: its weights are there (or their gather is in flight).
  static bool whole(const Unit& u);
  /// fn(param, offset, length, pos) for each piece of this rank's slice of `u`, cut at its
  /// parameters' boundaries: elements [offset, offset + length) of params_[param], which sit at
  /// [pos, pos + length) of the slice.
  void for_each_piece(const Unit& u, const std::function<void(size_t, int64_t, int64_t, int64_t)>& fn) const;
  void gather(Unit& u, bool wait);
  void finish_gather(Unit& u);
  void release(Unit& u);
  /// The unit's whole gradients reduce-scattered into its master's gradient and freed. A collective.
  void reduce_scatter_gradients(Unit& u);
  /// peak_ raised to model_state_bytes() plus `transient` bytes held besides.
  void note_peak(int64_t transient = 0);

  Communicator& comm_;
  models::Transformer model_;
  ShardLevel level_;
  std::vector<at::Tensor> params_;  ///< model.parameters(), in its order
  std::vector<Unit> units_;         ///< [0] root, [1 + i] decoder layer i
  std::shared_ptr<Residency> residency_;
  bool active_ = false;  ///< inside an update
  int64_t peak_ = 0;
};

/// This rank's peak model-state bytes in the last step (ShardedModel: measured; otherwise whole
/// weights and gradients of `params` plus the optimizer's moments, what exists at the step), and
/// resets a ShardedModel's peak.
int64_t take_peak_model_state_bytes(torch::optim::AdamW& opt, const std::vector<at::Tensor>& params);

}  // namespace keel::dist
