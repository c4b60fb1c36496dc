#include "trainer/loop/stop.h"

#include <csignal>

#include <torch/torch.h>

#include "base/stop_signal.h"
#include "trainer/loop/run_state.h"

namespace keel::loop {

int agree_on_stop(RunState& c) {
  const int mine = stop::requested();
  if (!c.comm) return mine;
  // [ranks with SIGTERM, ranks with SIGINT], summed (the communicators reduce by sum or mean).
  auto t = torch::tensor({mine == SIGTERM ? 1.0 : 0.0, mine == SIGINT ? 1.0 : 0.0}, torch::kDouble)
               .to(c.comm->device());
  c.comm->all_reduce(t, dist::ReduceOp::kSum);
  t = t.cpu();
  if (t[0].item<double>() > 0) return SIGTERM;
  if (t[1].item<double>() > 0) return SIGINT;
  return 0;
}

void send_stop_decision(RunState& c, int sig) {
  auto t = torch::tensor({static_cast<int64_t>(sig)}, torch::kLong).to(c.sync_comm->device());
  c.sync_comm->broadcast(t, 0);
}

int receive_stop_decision(RunState& c) {
  auto t = torch::zeros({1}, torch::kLong).to(c.sync_comm->device());
  c.sync_comm->broadcast(t, 0);
  return static_cast<int>(t.cpu().item<int64_t>());
}

}  // namespace keel::loop
