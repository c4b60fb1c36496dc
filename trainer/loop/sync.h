// Stage sync (disaggregated placement): the policy's weights from learner 0 to the rollout ranks
// over the sync group ({learner 0} + rollout ranks), in dist.bucket_mb buckets. Reads the policy's
// parameters (learner 0) and overwrites them (rollout ranks); learner 0 reports the broadcast with
// the next step's metrics.
#pragma once

#include "trainer/dist/weight_sync.h"
#include "trainer/metrics/metrics.h"

namespace keel::loop {

struct RunState;

/// Policy weights from learner 0 to the rollout ranks (member 0 of the sync group is learner 0).
dist::WeightSyncStats sync_weights(RunState& s);

/// Metrics of a weight broadcast (learner 0's view).
void weight_sync_metrics(const dist::WeightSyncStats& st, metrics::Metrics& m);

}  // namespace keel::loop
