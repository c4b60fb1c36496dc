// keel average-rm: WARM (spec/rewards.md D3) — averages the weights of reward models trained with
// keel train-rm (same architecture, e.g. the members of rm.ensemble.size, or runs with different
// seeds) into one HF reward-model directory that the reward_model scheme scores with.
//
//   keel average-rm --out warm_rm  runs/rm/member_0/checkpoints/step-00000200/model  .../member_1/...
//   keel average-rm --out warm_rm --weights 0.5,0.3,0.2  A B C
//
// Deliberately not here: the math (trainer/checkpoint/weight_average.h), training the members.
#include <torch/torch.h>

#include "models/model_config.h"
#include "trainer/checkpoint/weight_average.h"
#include "trainer/cli/commands.h"
#include "base/error.h"
#include "base/log.h"

namespace keel::cli {

int run_average_rm(const AverageRmArgs& a) {
  models::ModelRegistry reg("model family");
  models::register_builtin_models(reg);
  std::vector<double> weights;
  for (size_t start = 0; !a.weights_csv.empty() && start <= a.weights_csv.size();) {
    const size_t comma = std::min(a.weights_csv.find(',', start), a.weights_csv.size());
    const std::string item = a.weights_csv.substr(start, comma - start);
    size_t used_chars = 0;
    double w = 0;
    try {
      w = std::stod(item, &used_chars);
    } catch (const std::exception&) {
      used_chars = 0;
    }
    if (item.empty() || used_chars != item.size()) fail("average-rm: --weights: '{}' is not a number", item);
    weights.push_back(w);
    start = comma + 1;
  }
  const auto used = checkpoint::average_reward_models(a.models, weights, a.out, reg);
  std::string ws;
  for (size_t i = 0; i < used.size(); ++i) ws += fmt::format("{}{:.4f}", i ? ", " : "", used[i]);
  log::info("averaged {} reward models (weights {}) into {}", a.models.size(), ws, a.out);
  return 0;
}

}  // namespace keel::cli
