// Information-gain turn reward (see info_gain.h).
#include "rewards/schemes/info_gain.h"

#include <map>
#include <sstream>
#include <vector>

#include <torch/torch.h>

#include "rewards/schemes/truthrl.h"
#include "base/reader.h"

namespace keel::rewards {

at::Tensor info_gain_probs(const at::Tensor& gold_logprobs, const at::Tensor& gold_mask) {
  TORCH_CHECK(gold_logprobs.dim() == 3 && gold_mask.dim() == 2 && gold_mask.size(0) == gold_logprobs.size(0) &&
                  gold_mask.size(1) == gold_logprobs.size(2),
              "info_gain_probs: gold_logprobs ", gold_logprobs.sizes(), " must be [N, K, L] and gold_mask ",
              gold_mask.sizes(), " [N, L]");
  const at::Tensor w = gold_mask.to(gold_logprobs.scalar_type()).unsqueeze(1);  // [N, 1, L]
  const at::Tensor mean = (gold_logprobs * w).sum(2) / w.sum(2).clamp_min(1.0);
  return mean.exp();
}

at::Tensor info_gain_turn_rewards(const at::Tensor& p, const at::Tensor& turn_mask, const at::Tensor& outcome) {
  TORCH_CHECK(p.dim() == 2 && turn_mask.dim() == 2 && p.size(0) == turn_mask.size(0) && p.size(1) == turn_mask.size(1) + 1,
              "info_gain_turn_rewards: p ", p.sizes(), " must be [N, T + 1] for turn_mask ", turn_mask.sizes());
  TORCH_CHECK(outcome.dim() == 1 && outcome.size(0) == p.size(0), "info_gain_turn_rewards: outcome must be [N], got ",
              outcome.sizes());
  const at::Tensor m = turn_mask.to(torch::kBool);
  const at::Tensor gain = p.slice(1, 1) - p.slice(1, 0, -1);  // [N, T]
  const at::Tensor idx = torch::arange(m.size(1), torch::kLong).expand_as(m);
  const at::Tensor last = idx.masked_fill(m.logical_not(), -1).amax(1, true);  // [N, 1]
  const at::Tensor is_last = (idx == last).logical_and(m);
  at::Tensor out = gain.masked_fill(m.logical_not(), 0.0);
  return torch::where(is_last, outcome.to(p.scalar_type()).unsqueeze(1).expand_as(out), out);
}

double token_f1(const std::string& prediction, const std::string& gold) {
  auto split = [](const std::string& s) {
    std::istringstream in(squad_normalize(s));
    std::vector<std::string> t;
    std::string w;
    while (in >> w) t.push_back(w);
    return t;
  };
  const auto p = split(prediction), g = split(gold);
  if (p.empty() || g.empty()) return p == g ? 1.0 : 0.0;
  std::map<std::string, int> gc;
  for (const auto& w : g) gc[w]++;
  double common = 0;
  for (const auto& w : p)
    if (gc[w] > 0) {
      --gc[w];
      ++common;
    }
  if (common == 0) return 0.0;
  const double prec = common / static_cast<double>(p.size()), rec = common / static_cast<double>(g.size());
  return 2 * prec * rec / (prec + rec);
}

void read_info_gain_options(config::Reader& r, InfoGainOptions& o) {
  r.field("normalize", o.normalize, "how token probabilities of the gold answer are combined")
      .one_of({"geometric_mean"}, "normalize");
  r.field("final_score", o.final_score, "grade of the final answer on the last turn").one_of({"f1", "em"}, "final_score");
}

}  // namespace keel::rewards
