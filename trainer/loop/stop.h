// The graceful stop of a `keel train` job on SIGTERM / SIGINT (base/stop_signal.h): every learner
// rank ends the same step, rank 0 checkpoints it, and the job exits with 128 + the signal. The
// learners decide together (any of them signalled stops all; under `keel launch` every rank gets
// the forwarded signal). Disaggregated, learner 0 hands the decision to the rollout ranks with each
// weight broadcast, and a rollout rank that stops tells the reward rank it feeds; a signal that
// reaches only a rollout or reward rank waits for the learners' decision.
#pragma once

namespace keel::loop {

struct RunState;

/// The signal the current step ends on, the same on every learner rank: 0 (go on), else SIGTERM
/// when any learner rank received SIGTERM, else SIGINT. A collective over the learner ranks.
int agree_on_stop(RunState& s);

/// Disaggregated: learner 0, before each weight broadcast, sends the decision (0 = go on) to the
/// rollout ranks over the sync group; a rollout rank, before joining that broadcast, receives it.
void send_stop_decision(RunState& s, int sig);
int receive_stop_decision(RunState& s);

}  // namespace keel::loop
