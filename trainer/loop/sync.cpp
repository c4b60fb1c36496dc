#include "trainer/loop/sync.h"

#include <torch/torch.h>

#include "trainer/loop/run_state.h"

namespace keel::loop {

dist::WeightSyncStats sync_weights(RunState& c) {
  torch::NoGradGuard no_grad;
  dist::WeightSyncOptions o;
  o.bucket_mb = c.cfg.dist.bucket_mb;
  return dist::broadcast_parameters(*c.sync_comm, c.policy->parameters(), /*src=*/0, o, &c.sync_buffers);
}

void weight_sync_metrics(const dist::WeightSyncStats& st, metrics::Metrics& m) {
  m["sync/weight_s"] = st.seconds;
  m["sync/weight_gb"] = static_cast<double>(st.bytes) / 1e9;
  m["sync/weight_gbps"] = st.seconds > 0 ? static_cast<double>(st.bytes) / 1e9 / st.seconds : 0.0;
  m["sync/weight_buckets"] = static_cast<double>(st.buckets);
}

}  // namespace keel::loop
