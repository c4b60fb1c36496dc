#include "trainer/learner/lr_schedule.h"

#include <algorithm>
#include <cmath>

#include <torch/torch.h>

#include "base/error.h"

namespace keel::learner {

double lr_at(const LrScheduleOptions& o, int64_t step) {
  if (o.warmup_steps > 0 && step < o.warmup_steps)
    return o.lr * static_cast<double>(step) / static_cast<double>(o.warmup_steps);
  if (o.schedule == "constant") return o.lr;
  const int64_t decay = std::max<int64_t>(1, o.total_steps - o.warmup_steps);
  const double p = std::clamp(static_cast<double>(step - o.warmup_steps) / static_cast<double>(decay), 0.0, 1.0);
  const double r = o.min_lr_ratio;
  if (o.schedule == "linear") return o.lr * (r + (1 - r) * (1 - p));
  if (o.schedule == "cosine") return o.lr * (r + (1 - r) * 0.5 * (1 + std::cos(M_PI * p)));
  fail("unknown lr schedule '{}' (known: constant, cosine, linear)", o.schedule);
}

double scheduled_step(torch::optim::Optimizer& optimizer, const LrScheduleOptions& o, int64_t& step) {
  const double lr = lr_at(o, step);
  for (auto& g : optimizer.param_groups()) static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);
  optimizer.step();
  ++step;
  return lr;
}

}  // namespace keel::learner
