// Weight sync: broadcast a list of parameter tensors from one rank to the rest of a communicator in
// fixed-size buckets (dist.bucket_mb), the learner -> rollout path of disaggregated placement.
// Not a parameter server and not sharding-aware: every member holds the full list.
//
// The parameters are seen as one byte stream (their flattened bytes, in list order) cut into
// buckets of bucket_mb; a bucket that lies inside one contiguous tensor is broadcast in place,
// a bucket that spans several tensors is packed into a staging buffer on the source, broadcast,
// and unpacked on the receivers. Up to `max_in_flight` buckets are in flight at once, so packing
// and unpacking overlap with the transfer.
#pragma once

#include <cstdint>
#include <vector>

#include <ATen/core/Tensor.h>

#include "trainer/dist/communicator.h"

namespace keel::dist {

struct WeightSyncOptions {
  double bucket_mb = 64;                ///< bucket size in MiB (dist.bucket_mb); > 0
  int max_in_flight = 2;                ///< buckets broadcast concurrently; >= 1
  bool check_layout = true;             ///< first compare every rank's (dtype, shape) list with src's
};

struct WeightSyncStats {
  int64_t bytes = 0;                    ///< parameter bytes broadcast
  double seconds = 0;                   ///< wall time of the whole call on this rank
  int64_t buckets = 0;                  ///< broadcasts issued
  int64_t staged_buckets = 0;           ///< of which went through a staging buffer (packed)
};

/// Broadcasts `params` from member `src` of `comm`. Every member passes a list with the same
/// dtypes and shapes in the same order, on comm.device(); on members other than src the tensors
/// are overwritten in place (any strides). Bit-exact: the bytes are copied, never converted.
/// Throws (naming the ranks) when check_layout finds a member whose list differs from src's.
WeightSyncStats broadcast_parameters(Communicator& comm, const std::vector<at::Tensor>& params, int src,
                                     const WeightSyncOptions& opt = {});

}  // namespace keel::dist
