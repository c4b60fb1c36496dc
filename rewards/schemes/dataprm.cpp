// DataPRM ternary step reward (see dataprm.h).
#include "rewards/schemes/dataprm.h"

#include <regex>

#include <torch/torch.h>

#include "rewards/schemes/group_ops.h"
#include "rewards/schemes/prm.h"
#include "rewards/schemes/truthrl.h"
#include "base/reader.h"

namespace keel::rewards {

double dataprm_parse_score(const std::string& judge_output, const DataPrmOptions& o) {
  std::string text;
  if (!extract_last_boxed(judge_output, text)) text = judge_output;
  static const std::regex kNumber(R"([-+]?(?:\d+\.?\d*|\.\d+))");
  std::string last;
  for (auto it = std::sregex_iterator(text.begin(), text.end(), kNumber); it != std::sregex_iterator(); ++it)
    last = it->str();
  if (last.empty()) return -1.0;
  double v;
  try {
    v = std::stod(last);
  } catch (...) {
    return -1.0;
  }
  if (v == 1.0) return o.correct;
  if (v == 0.5) return o.correctable;
  if (v == 0.0) return o.fatal;
  return -1.0;
}

at::Tensor dataprm_final_step_rule(const at::Tensor& scores, const at::Tensor& step_mask, const at::Tensor& has_answer,
                                   const DataPrmOptions& o) {
  TORCH_CHECK(scores.dim() == 2 && step_mask.sizes() == scores.sizes() && has_answer.dim() == 1 &&
                  has_answer.size(0) == scores.size(0),
              "dataprm_final_step_rule: scores ", scores.sizes(), ", step_mask ", step_mask.sizes(), ", has_answer ",
              has_answer.sizes(), " mismatch");
  if (o.max_steps > scores.size(1)) return scores;
  const at::Tensor m = step_mask.to(torch::kBool);
  const at::Tensor hit = m.select(1, o.max_steps - 1).logical_and(has_answer.to(torch::kBool).logical_not());
  at::Tensor out = scores.clone();
  out.select(1, o.max_steps - 1).masked_fill_(hit, o.fatal);
  return out;
}

DataPrmAggregate dataprm_aggregate(const at::Tensor& scores, const at::Tensor& step_mask, const std::string& method,
                                   const DataPrmOptions& o) {
  TORCH_CHECK(scores.dim() == 2 && step_mask.sizes() == scores.sizes(), "dataprm_aggregate: scores ", scores.sizes(),
              " and step_mask ", step_mask.sizes(), " must both be [N, S]");
  const at::Tensor m = step_mask.to(torch::kBool);
  const at::Tensor failed = m.logical_and(scores < 0);
  at::Tensor s = scores.to(torch::kFloat64);
  at::Tensor valid = m;
  if (o.parse_error == "zero") s = s.masked_fill(failed, o.fatal);
  else valid = m.logical_and(failed.logical_not());
  return DataPrmAggregate{prm_aggregate(s, valid, method), failed.any(1)};
}

at::Tensor dataprm_reward(const at::Tensor& outcome, const at::Tensor& scores, const at::Tensor& step_mask,
                          const DataPrmOptions& o) {
  TORCH_CHECK(outcome.dim() == 1 && outcome.size(0) == scores.size(0), "dataprm_reward: outcome must be [N], got ",
              outcome.sizes());
  return outcome.to(torch::kFloat64) + o.beta * dataprm_aggregate(scores, step_mask, o.aggregate, o).value;
}

at::Tensor dataprm_best_of_n(const at::Tensor& scores, const at::Tensor& step_mask, const at::Tensor& group_ids,
                             const DataPrmOptions& o) {
  const at::Tensor mn = dataprm_aggregate(scores, step_mask, "min", o).value;
  const at::Tensor mean = dataprm_aggregate(scores, step_mask, "mean", o).value;
  const GroupIndex g = make_group_index(group_ids);
  const int64_t n = scores.size(0);
  std::vector<int64_t> best(g.num_groups, -1);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t gi = g.index[i].item<int64_t>();
    const int64_t b = best[gi];
    if (b < 0) {
      best[gi] = i;
      continue;
    }
    const double mi = mn[i].item<double>(), mb = mn[b].item<double>();
    if (mi > mb || (mi == mb && mean[i].item<double>() > mean[b].item<double>())) best[gi] = i;
  }
  at::Tensor pick = torch::zeros({n}, torch::kBool);
  for (int64_t b : best) pick[b] = true;
  return pick;
}

void read_dataprm_options(config::Reader& r, DataPrmOptions& o) {
  r.field("correct", o.correct, "value of a correct, useful step");
  r.field("correctable", o.correctable, "value of a step with a minor, correctable error");
  r.field("fatal", o.fatal, "value of a fatal step");
  r.field("parse_error", o.parse_error, "judge failures: drop from the aggregate (and flag) or score as fatal")
      .one_of({"drop", "zero"}, "parse_error policy");
  r.field("beta", o.beta, "weight of the aggregated step score added to the outcome").ge(0);
  r.field("aggregate", o.aggregate, "step aggregation for the RL reward").one_of({"min", "prod", "last", "mean"}, "aggregate");
  r.field("max_steps", o.max_steps, "final allowed step (1-based); no answer by then scores it 0").ge(1);
}

}  // namespace keel::rewards
