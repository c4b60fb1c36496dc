// Sharded checkpoints of sharded optimizers (dist.sharding optimizer / gradients / full): every
// learner rank writes the AdamW moments it holds as one file of the checkpoint,
//   <prefix>.shard-<rank>-of-<world>.pt   (prefix: optimizer, critic_optimizer)
// in the checkpoint's staging directory, before rank 0 commits it (the manifest and the COMPLETE
// marker then cover every rank's file: one atomic commit). Nothing is gathered: no rank ever holds
// the whole state. The files describe the moments in the coordinates of the model's trainable
// parameters (parameter index, element offset and length in its flat view), not of the writer's
// layout, so a run resumes on any number of ranks and at any level (resharding): each rank reads
// the pieces that overlap its own slices, one file in memory at a time; an unsharded run assembles
// whole moments the same way. Like torch.distributed.checkpoint, it assumes the ranks share the
// run directory's filesystem.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

namespace torch::optim {
class AdamW;
}

namespace keel::dist {

/// AdamW moments of elements [offset, offset + length) of trainable parameter `param`'s flat view.
struct MomentSegment {
  size_t param = 0;
  int64_t offset = 0, length = 0;
  at::Tensor exp_avg, exp_avg_sq;  ///< [length]
  int64_t step = 0;                ///< AdamW's step count; 0 = never stepped (no moments)
};

/// What a sharded optimizer (ShardedAdamW, ShardedModel) offers its checkpoints.
class MomentShards {
 public:
  virtual ~MomentShards() = default;
  /// This rank's slices in parameter coordinates; with_state: their moments and steps filled in.
  virtual std::vector<MomentSegment> moment_segments(bool with_state) const = 0;
  /// Takes the moments of moment_segments(false)'s segments, filled (read_moment_segments).
  virtual void load_moments(const std::vector<MomentSegment>& segments) = 0;
};

/// "optimizer.shard-00001-of-00004.pt"
std::string moment_shard_name(const std::string& prefix, int rank, int world);

/// Writes `segments` as rank `rank` of `world`'s file of `prefix` in `dir`, atomically.
/// `numels`: every trainable parameter's element count (checked when read).
void write_moment_shard(const std::filesystem::path& dir, const std::string& prefix, int rank, int world,
                        const std::vector<MomentSegment>& segments, const std::vector<int64_t>& numels);

/// Whether `dir` holds shard files of `prefix`.
bool has_moment_shards(const std::filesystem::path& dir, const std::string& prefix);

/// Fills each of `want`'s segments (param / offset / length set; moments allocated here, on `device`)
/// from the shard files of `prefix` in `dir`, whatever rank count wrote them. keel::Error naming the
/// file when one is missing or unreadable, describes other parameters, or leaves an element uncovered.
void read_moment_segments(const std::filesystem::path& dir, const std::string& prefix, const std::vector<int64_t>& numels,
                          std::vector<MomentSegment>& want, at::Device device);

/// An unsharded AdamW's state from shard files: whole moments per parameter of `params` (a
/// parameter whose pieces never stepped gets no state).
void load_whole_moments(const std::filesystem::path& dir, const std::string& prefix, const std::vector<at::Tensor>& params,
                        torch::optim::AdamW& opt);

}  // namespace keel::dist
