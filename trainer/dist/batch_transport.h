// Batch transport: a RolloutBatch (plus the metrics it has gathered on its way) sent point to point,
// the rollout -> reward -> learner path of disaggregated placement. The message is a fixed sequence
// of tensors over Communicator::send/recv: an int64 header (step, policy version, which fields are
// defined, metric counts), a uint8 blob of length-prefixed strings (prompt / response texts, finish
// reasons, metric keys, the scorer's reward state when attached: raw bytes, so texts arrive exactly as decoded, valid UTF-8 or not), the
// metric values, group ids, then every defined field of rollout::tensor_fields() in table order.
// Deliberately not carried: `records` (pointers into the sender's prompt list; every rank derives
// the step's prompts from the seed and the receiver points its rows at its own copy).
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "trainer/dist/communicator.h"
#include "trainer/rollout/rollout_batch.h"

namespace keel::dist {

struct BatchMessage {
  int64_t step = 0;                              ///< learner step the rows are for (1-based)
  rollout::RolloutBatch batch;                   ///< rows; records empty on arrival
  std::map<std::string, double> reward_metrics;  ///< the scorer's metrics of these rows
  std::map<std::string, double> role_metrics;    ///< timings / queue depths of the ranks it passed
  /// The sending scorer's stateful-reward state after scoring these rows (checkpoint steps only;
  /// else empty), as checkpoint::encode_reward_state bytes.
  std::string reward_state;
  /// Not 0: no rows — the sender stops (the learners stopped the run on this signal; see
  /// send_stop_marker).
  int stop_signal = 0;
};

/// Sends `msg` to member `dst` of `comm`; the receiver calls recv_batch(comm, <this rank>).
void send_batch(Communicator& comm, const BatchMessage& msg, int dst);
BatchMessage recv_batch(Communicator& comm, int src);

/// Sends, in place of a batch, the marker that the run stops on signal `sig` (> 0): recv_batch
/// returns a message with only stop_signal set.
void send_stop_marker(Communicator& comm, int sig, int dst);

}  // namespace keel::dist
