// Learning-rate schedules with linear warm-up, as HF transformers / verl define them:
//   warm-up (step < warmup):  lr * step / warmup
//   then, progress p = (step - warmup) / (total - warmup) in [0, 1]:
//     constant: lr
//     linear:   lr * (r + (1 - r) * (1 - p))
//     cosine:   lr * (r + (1 - r) * 0.5 * (1 + cos(pi * p)))
// with r = min_lr_ratio. `step` counts optimizer steps from 0.
#pragma once

#include <cstdint>
#include <string>

namespace torch::optim {
class Optimizer;
}

namespace keel::learner {

struct LrScheduleOptions {
  double lr = 1e-5;
  double min_lr_ratio = 0.0;
  int64_t warmup_steps = 0;
  int64_t total_steps = 1;
  std::string schedule = "constant";  ///< constant | cosine | linear
};

/// The learning rate for optimizer step `step` (0-based).
double lr_at(const LrScheduleOptions& o, int64_t step);

/// One optimizer step at the scheduled rate: sets every param group's lr to lr_at(o, step) (the
/// optimizer must be AdamW), steps it and advances `step`. Returns the rate used.
double scheduled_step(torch::optim::Optimizer& optimizer, const LrScheduleOptions& o, int64_t& step);

}  // namespace keel::learner
