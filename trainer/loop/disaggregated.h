// Disaggregated placement (dist.placement disaggregated; trainer/dist/placement.h): the loop of
// each role. Learner ranks 0..L-1 (data-parallel among themselves, as colocated), rollout ranks,
// reward ranks (or none: the rollout ranks score). Every rank derives each step's prompts from the
// seed; rollout ranks generate their share (stage sample), reward ranks score it (stage score), and
// every learner rank receives every share (rollout order, so the batch is one process's) and
// trains (rl_learn); learner 0 broadcasts the weights to the rollout ranks (stage sync).
//
// Schedule. Step s (1-based) trains on batch s; version v = learner updates done (v0 = the initial
// or resumed weights). A rollout rank generates batch t with the newest version it holds and keeps
// up to max_staleness (+ KEEL_TEST_ROLLOUT_LAG) batches generated ahead; before sending batch s it
// joins the broadcast of version s-1. So with k = 0 every batch is sampled by the weights it is
// trained on (synchronous), with k >= 1 batch s+k is generated with version s-1 while the learner
// trains on batch s, and arrives k versions stale. Every rank runs the same sequence of sends,
// receives and broadcasts per step, so no rank can wait on another that waits on it.
#pragma once

#include <cstdint>

#include "trainer/learner/numerics_guard.h"
#include "trainer/loop/update.h"

namespace keel::loop {

struct RunState;

/// KEEL_TEST_EXIT_AT=<world rank>:<step> makes that rank die (exit 3) as the step starts, mid-job
/// for the others (the rank-failure tests; every placement). KEEL_TEST_STEP_SLEEP_MS=<ms> makes
/// every step start that much later (the signal tests need a step in flight).
void maybe_test_exit(int global_rank, int64_t step);

/// A rollout rank: generate (and score, without reward ranks) its share of each step's prompts,
/// send it on, take part in the weight broadcasts. Returns when the last step's share is sent (0),
/// or the signal the learners stopped the run on (before a weight broadcast; trainer/loop/stop.h),
/// after passing the stop on to the reward rank it feeds.
int rollout_loop(RunState& s);

/// A reward rank: score the shares of the rollout ranks it serves (i % reward_ranks == its index),
/// step by step, and send them to every learner rank. Every rank derives the step's prompt list
/// from the seed, so the rows' records are pointed at this rank's own copy. Returns 0 after the last
/// step, or the signal of the stop markers its rollout ranks sent when the learners stopped the run.
int reward_loop(RunState& s);

/// A learner rank's step: receive every rollout rank's scored share (in rollout order, so the batch
/// has one process's row order), drop rows staler than max_staleness, then rl_learn on the whole
/// batch (each learner rank trains on its slice of every mini-batch, as colocated).
StepOut disaggregated_learner_step(RunState& s, learner::NumericsGuard& guard, int64_t step);

}  // namespace keel::loop
