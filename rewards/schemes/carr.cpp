// CaRR rubric score and C-GRPO combination (see carr.h).
#include "rewards/schemes/carr.h"

#include <deque>
#include <set>

#include <torch/torch.h>

#include "rewards/schemes/group_ops.h"
#include "base/reader.h"

namespace keel::rewards {

double carr_rubric_score(const std::vector<CarrRubric>& rubrics, bool mapping_ok, bool has_citations,
                         const CarrScoreOptions& o) {
  if (rubrics.empty() || !mapping_ok || !has_citations) return 0.0;
  const auto usable = [](const CarrRubric& r) { return r.identified && r.supported; };
  double good = 0;
  if (!o.bfs) {
    for (const auto& r : rubrics) good += usable(r);
    return good / static_cast<double>(rubrics.size());
  }
  // BFS over entities from E0; a usable rubric links every entity it mentions.
  std::set<int64_t> reached{0};
  std::deque<int64_t> frontier{0};
  while (!frontier.empty()) {
    const int64_t e = frontier.front();
    frontier.pop_front();
    for (const auto& r : rubrics) {
      if (!usable(r) || std::find(r.entities.begin(), r.entities.end(), e) == r.entities.end()) continue;
      for (int64_t other : r.entities)
        if (reached.insert(other).second) frontier.push_back(other);
    }
  }
  for (const auto& r : rubrics) {
    if (!usable(r)) continue;
    const bool linked = std::any_of(r.entities.begin(), r.entities.end(), [&](int64_t e) { return reached.count(e) > 0; });
    good += linked;
  }
  return good / static_cast<double>(rubrics.size());  // denominator counts every rubric
}

at::Tensor cgrpo_combine(const at::Tensor& outcome, const at::Tensor& rubric, const at::Tensor& group_ids,
                         const CgrpoOptions& o) {
  TORCH_CHECK(outcome.dim() == 1 && rubric.sizes() == outcome.sizes() && group_ids.sizes() == outcome.sizes(),
              "cgrpo_combine: outcome ", outcome.sizes(), ", rubric ", rubric.sizes(), ", group_ids ",
              group_ids.sizes(), " must all be [N]");
  const at::Tensor out = outcome.to(torch::kFloat64);
  at::Tensor rub = rubric.to(torch::kFloat64);
  if (o.rubric_norm == "group_max") {
    const GroupIndex g = make_group_index(group_ids);
    const at::Tensor mx = group_gather(group_max(rub, {}, g, 0.0), g);
    rub = torch::where(mx > 0, rub / torch::where(mx > 0, mx, torch::ones_like(mx)), rub);
  }
  const at::Tensor linear = (1.0 - o.alpha) * out + o.alpha * rub;
  if (o.mode == "only_positive") return torch::where(out == 0, out, linear);
  if (o.mode == "only_negative") return torch::where(out > 0, out, o.alpha * rub);
  return linear;
}

void read_carr_score_options(config::Reader& r, CarrScoreOptions& o) {
  r.field("bfs", o.bfs, "count only rubrics connected to the answer entity (false = fraction supported)");
}

void read_cgrpo_options(config::Reader& r, CgrpoOptions& o) {
  r.field("alpha", o.alpha, "rubric reward ratio").ge(0).le(1);
  r.field("mode", o.mode, "how outcome and rubric combine").one_of({"linear", "only_positive", "only_negative"}, "mode");
  r.field("rubric_norm", o.rubric_norm, "rubric normalisation within the prompt's group")
      .one_of({"none", "group_max"}, "rubric_norm");
}

}  // namespace keel::rewards
