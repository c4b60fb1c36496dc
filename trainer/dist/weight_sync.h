// Weight sync: broadcast a list of parameter tensors from one rank to the rest of a communicator in
// fixed-size buckets (dist.bucket_mb), the learner -> rollout path of disaggregated placement.
// Not a parameter server and not sharding-aware: every member holds the full list.
//
// Parameters that lie back to back in memory on every member (an arena) form one run, seen as one
// parameter below. Parameters under direct_min_mb are seen as one byte stream (their flattened
// bytes, in list order) cut into buckets of bucket_mb; a bucket that spans several tensors is packed into a
// staging buffer on the source, broadcast, and unpacked on the receivers, a bucket inside one
// tensor is broadcast in place. Larger parameters are broadcast in place in bucket_mb pieces. Up
// to `max_in_flight` broadcasts are in flight at once, so packing and unpacking overlap with the
// transfer.
#pragma once

#include <cstdint>
#include <vector>

#include <ATen/core/Tensor.h>

#include "trainer/dist/communicator.h"

namespace keel::dist {

struct WeightSyncOptions {
  double bucket_mb = 64;                ///< bucket size in MiB (dist.bucket_mb); > 0
  /// broadcasts in flight at once; >= 1. Gloo runs them one at a time (CommOptions::gloo_threads),
  /// so this keeps its queue full: 109.5M fp32 parameters in 87 broadcasts between 2 Gloo ranks
  /// reached 0.92 of one raw broadcast with 4, 0.96 with 2 (one run each; noisy).
  int max_in_flight = 4;
  /// Parameters of at least this many MiB skip the staging copy: they are broadcast straight
  /// from / into their own storage, in bucket_mb pieces. < 0 = never (everything is packed).
  /// INTERPRETATION: the issue asks for flatten -> broadcast -> unflatten; on CPU a memcpy costs
  /// about as much as the Gloo transfer itself (bench/weight_sync_bench.cpp), so only parameters
  /// under this size are flattened into buckets.
  double direct_min_mb = 1;
  bool check_layout = true;             ///< first compare every rank's (dtype, shape) list with src's
  /// Parameters that lie back to back in memory on every member are broadcast as one run, in place
  /// (with check_layout only: its collective also compares which neighbours are adjacent, and any
  /// difference between members keeps every member on the per-parameter plan). keel's CPU models keep their parameters so (one arena in list
  /// order), and Gloo pays per message: 109.5M fp32 parameters in 87 messages reached about half
  /// of one raw broadcast's throughput on this project's 2-core VMs, and packing them into fewer
  /// buckets costs a copy on each side that two cores cannot hide.
  bool merge_adjacent = true;
};

struct WeightSyncStats {
  int64_t bytes = 0;                    ///< parameter bytes broadcast
  double seconds = 0;                   ///< wall time of the whole call on this rank
  int64_t buckets = 0;                  ///< broadcasts issued (packed buckets + direct pieces)
  int64_t staged_buckets = 0;           ///< of which went through a staging buffer (packed)
  double copy_seconds = 0;              ///< of `seconds`, spent packing (src) / unpacking (others)
  double wait_seconds = 0;              ///< of `seconds`, spent waiting for broadcasts to finish
};

/// Staging memory kept between calls: a trainer syncs every step, and fresh multi-MB buffers would
/// be page-faulted in each time (measured in bench/weight_sync_bench.cpp, --fresh-buffers 1).
/// Opaque to callers; one per (communicator, device).
struct WeightSyncBuffers {
  std::vector<at::Tensor> staging;      ///< [>= bucket bytes] uint8 each, max_in_flight of them
};

/// Broadcasts `params` from member `src` of `comm`. Every member passes a list with the same
/// dtypes and shapes in the same order, on comm.device(); on members other than src the tensors
/// are overwritten in place (any strides). Bit-exact: the bytes are copied, never converted.
/// Throws (naming the ranks) when check_layout finds a member whose list differs from src's.
/// `buffers` (optional) keeps the staging buffers for the next call.
WeightSyncStats broadcast_parameters(Communicator& comm, const std::vector<at::Tensor>& params, int src,
                                     const WeightSyncOptions& opt = {}, WeightSyncBuffers* buffers = nullptr);

}  // namespace keel::dist
