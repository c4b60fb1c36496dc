#include "trainer/learner/supervised_update.h"

#include <limits>

#include <torch/torch.h>

#include "models/logprobs.h"
#include "models/transformer.h"
#include "trainer/learner/gradient_shards.h"
#include "trainer/learner/sequence_batch.h"

namespace keel::learner {

double reduce_and_clip_gradients(torch::optim::Optimizer& optimizer, const DataParallelHooks* dp,
                                 const std::vector<at::Tensor>& params, double max_norm) {
  if (auto* shards = gradient_shards(optimizer)) return shards->reduce_and_clip(max_norm);
  if (dp != nullptr) dp->reduce_gradients(params);
  return torch::nn::utils::clip_grad_norm_(params, max_norm);
}

StepResult guarded_step(const std::vector<at::Tensor>& params, torch::optim::Optimizer& optimizer, double loss,
                        double grad_clip, const LrScheduleOptions& lr, NumericsGuard& guard, int64_t& opt_step,
                        const DataParallelHooks* dp) {
  StepResult r;
  const double max_norm = grad_clip > 0 ? grad_clip : std::numeric_limits<double>::infinity();
  const double grad_norm = reduce_and_clip_gradients(optimizer, dp, params, max_norm);
  r.metrics["actor/grad_norm"] = grad_norm;
  const auto verdict = guard.check(loss, grad_norm);
  if (verdict == NumericsGuard::Verdict::kOk) {
    r.metrics["actor/lr"] = scheduled_step(optimizer, lr, opt_step);
    r.stepped = true;
  }
  r.rollback = verdict == NumericsGuard::Verdict::kRollback;
  optimizer.zero_grad();
  return r;
}

namespace {
/// When data-parallel: `sum` summed and `mean` averaged over the ranks, in place.
void reduce_scalars(const SupervisedOptions& o, std::map<std::string, double>& sum, std::map<std::string, double>& mean) {
  if (o.dp != nullptr) o.dp->reduce_scalars(sum, mean);
}

double sum_over_ranks(const SupervisedOptions& o, const std::string& key, double v) {
  std::map<std::string, double> sum{{key, v}}, mean;
  reduce_scalars(o, sum, mean);
  return sum.at(key);
}
}  // namespace

StepResult sft_update(models::Transformer& policy, torch::optim::Optimizer& optimizer, const SequenceBatch& batch,
                      const SupervisedOptions& o, NumericsGuard& guard, int64_t& opt_step) {
  TORCH_CHECK(o.micro_batch_size > 0, "sft_update: micro_batch_size must be > 0");
  const int64_t n = batch.size();
  const double tokens = sum_over_ranks(o, "tokens", static_cast<double>(batch.response_mask.sum().item<int64_t>()));
  const UpdateScope sharded(optimizer);
  policy.train(true);
  optimizer.zero_grad();
  double loss_total = 0;
  const auto row_tok = row_tokens(batch.prompt_mask, batch.response_mask, batch.response_attention);
  for (const auto& [s, e] : micro_batches(row_tok, 0, n, o.micro_batch_size, o.max_tokens_per_micro_batch)) {
    const auto mb = batch.rows(s, e).to(policy.device());
    models::LogprobOptions lo;
    lo.padding_free = o.padding_free;
    lo.response_attention = mb.response_attention;  // multi-turn: the observations are seen, not trained on
    const auto lp = models::sequence_logprobs(policy, mb.prompt_ids, mb.prompt_mask, mb.response_ids,
                                              mb.response_mask, lo).logprobs;
    // Token mean over the whole mini-batch: every micro-batch divides by the global count.
    auto loss = -(lp * mb.response_mask.to(lp.scalar_type())).sum() / std::max(1.0, tokens);
    loss.backward();
    loss_total += loss.item<double>();
  }
  loss_total = sum_over_ranks(o, "loss", loss_total);
  auto r = guarded_step(policy.parameters(), optimizer, loss_total, o.grad_clip, o.lr, guard, opt_step, o.dp);
  r.metrics["sft/loss"] = loss_total;
  r.metrics["sft/tokens"] = tokens;
  return r;
}

StepResult dpo_update(models::Transformer& policy, models::Transformer* reference, torch::optim::Optimizer& optimizer,
                      const SequenceBatch& chosen, const SequenceBatch& rejected, const DpoLossFn& loss_fn,
                      const DpoOptions& dpo, const SupervisedOptions& o, NumericsGuard& guard, int64_t& opt_step) {
  TORCH_CHECK(chosen.size() == rejected.size(), "dpo_update: ", chosen.size(), " chosen but ", rejected.size(),
              " rejected rows");
  TORCH_CHECK(o.micro_batch_size > 0, "dpo_update: micro_batch_size must be > 0");
  const int64_t n = chosen.size();
  const auto ctx = DpoAggContext::count(static_cast<int64_t>(sum_over_ranks(o, "pairs", static_cast<double>(n))));
  const UpdateScope sharded(optimizer);
  policy.train(true);
  optimizer.zero_grad();
  double loss_total = 0;
  std::map<std::string, double> sums;
  int micro = 0;
  const auto pair_tok = row_tokens(chosen.prompt_mask, chosen.response_mask, chosen.response_attention) +
                        row_tokens(rejected.prompt_mask, rejected.response_mask, rejected.response_attention);
  models::LogprobOptions lo;
  lo.padding_free = o.padding_free;
  for (const auto& [s, e] : micro_batches(pair_tok, 0, n, o.micro_batch_size, o.max_tokens_per_micro_batch)) {
    const auto c = chosen.rows(s, e).to(policy.device()), r = rejected.rows(s, e).to(policy.device());
    DpoInputs in;
    const auto seq = [&lo](models::Transformer& m, const SequenceBatch& b) {
      const auto lp = models::sequence_logprobs(m, b.prompt_ids, b.prompt_mask, b.response_ids, b.response_mask, lo);
      return sequence_logp(lp.logprobs, b.response_mask);
    };
    in.chosen_logp = seq(policy, c);
    in.rejected_logp = seq(policy, r);
    if (reference) {
      torch::NoGradGuard ng;
      in.chosen_ref_logp = seq(*reference, c);
      in.rejected_ref_logp = seq(*reference, r);
    }
    in.chosen_len = c.response_mask.sum(1).to(torch::kFloat);
    in.rejected_len = r.response_mask.sum(1).to(torch::kFloat);
    in.agg = ctx;
    auto out = loss_fn(in, dpo);
    out.loss.backward();
    loss_total += out.loss.item<double>();
    for (const auto& [k, v] : out.metrics) sums[k] += v;
    ++micro;
  }
  // dpo/loss is a per-micro-batch share (they add up, over micro-batches and ranks); the rest are
  // per-micro-batch means (averaged over the ranks).
  std::map<std::string, double> add{{"loss", loss_total}}, avg;
  for (const auto& [k, v] : sums) {
    if (k == "dpo/loss") add[k] = v;
    else avg[k] = v / std::max(1, micro);
  }
  reduce_scalars(o, add, avg);
  auto res = guarded_step(policy.parameters(), optimizer, add.at("loss"), o.grad_clip, o.lr, guard, opt_step, o.dp);
  add.erase("loss");
  for (const auto* m : {&add, &avg})
    for (const auto& [k, v] : *m) res.metrics[k] = v;
  return res;
}

}  // namespace keel::learner
