#include "trainer/learner/rl_update.h"

#include <cmath>
#include <optional>

#include <torch/torch.h>

#include "models/logprobs.h"
#include "models/transformer.h"
#include "trainer/learner/gradient_shards.h"
#include "trainer/learner/loss_agg.h"
#include "trainer/learner/sequence_batch.h"

namespace keel::learner {

namespace {

/// Rows [lo, hi) of the batch with all-padding prompt columns (left) and response columns (right)
/// trimmed away.
struct Slice {
  at::Tensor pids, pmask, rids, rmask, rattn, old_lp, adv, loss_mask, ref_lp, groups, values, returns;
};

/// On `dev`, the policy's device (the batch itself stays on the CPU, where rollout and credit run).
Slice slice_rows(const rollout::RolloutBatch& b, int64_t lo, int64_t hi, const at::Device& dev) {
  Slice s;
  auto pm = b.prompt_mask.slice(0, lo, hi);
  const int64_t p0 = (pm.sum(0) > 0).to(torch::kLong).argmax().item<int64_t>();  // first used column
  auto rm = b.response_mask.slice(0, lo, hi);
  // Multi-turn rows: the columns run to the last token the model sees (observations included).
  const auto seen = (b.response_attention.defined() ? b.response_attention : b.response_mask).slice(0, lo, hi);
  const int64_t r1 = std::max<int64_t>(1, seen.sum(1).max().item<int64_t>());
  s.pids = b.prompt_ids.slice(0, lo, hi).slice(1, p0);
  s.pmask = pm.slice(1, p0);
  s.rids = b.response_ids.slice(0, lo, hi).slice(1, 0, r1);
  s.rmask = rm.slice(1, 0, r1);
  if (b.response_attention.defined()) s.rattn = seen.slice(1, 0, r1);
  s.old_lp = b.old_logprobs.slice(0, lo, hi).slice(1, 0, r1);
  s.adv = b.advantages.slice(0, lo, hi).slice(1, 0, r1);
  s.loss_mask = b.loss_mask.slice(0, lo, hi).slice(1, 0, r1);
  if (b.ref_logprobs.defined()) s.ref_lp = b.ref_logprobs.slice(0, lo, hi).slice(1, 0, r1);
  s.groups = b.group_ids.slice(0, lo, hi);
  if (b.values.defined()) s.values = b.values.slice(0, lo, hi).slice(1, 0, r1);
  if (b.returns.defined()) s.returns = b.returns.slice(0, lo, hi).slice(1, 0, r1);
  for (auto* t : {&s.pids, &s.pmask, &s.rids, &s.rmask, &s.rattn, &s.old_lp, &s.adv, &s.loss_mask, &s.ref_lp, &s.groups,
                  &s.values, &s.returns})
    if (t->defined()) *t = t->to(dev);
  return s;
}

}  // namespace

RlUpdateResult rl_update(models::Transformer& policy, torch::optim::Optimizer& optimizer,
                         const rollout::RolloutBatch& b, const PolicyLossFn& loss_fn, const RlUpdateOptions& o,
                         NumericsGuard& guard, int64_t& opt_step, const CriticUpdate* critic) {
  TORCH_CHECK(b.advantages.defined() && b.loss_mask.defined(), "rl_update: the batch has no advantages / loss mask");
  const int64_t n = b.size();
  TORCH_CHECK(n % o.mini_batch_size == 0, "rl_update: ", n, " rows do not split into mini-batches of ", o.mini_batch_size);
  TORCH_CHECK(o.mini_batch_size % o.micro_batch_size == 0, "rl_update: mini_batch_size ", o.mini_batch_size,
              " is not a multiple of micro_batch_size ", o.micro_batch_size);
  const bool shared_critic = critic && critic->model == &policy;
  const bool separate_critic = critic && !shared_critic;
  if (critic) {
    TORCH_CHECK(critic->model && b.values.defined() && b.returns.defined(),
                "rl_update: a critic update needs the batch's values and returns");
    TORCH_CHECK(shared_critic || (critic->optimizer && critic->opt_step),
                "rl_update: a separate critic needs its optimizer and step counter");
  }
  // Sharded optimizers (dist.sharding gradients / full): the weights sharded for this update only.
  const UpdateScope sharded(optimizer);
  std::optional<UpdateScope> critic_sharded;
  if (separate_critic) critic_sharded.emplace(*critic->optimizer);
  policy.train(true);
  if (separate_critic) critic->model->train(true);
  auto params = policy.parameters();
  const auto tokens = row_tokens(b.prompt_mask, b.response_mask, b.response_attention);
  RlUpdateResult res;
  std::map<std::string, double> sums;
  int64_t mini_batches = 0;
  for (int epoch = 0; epoch < o.epochs; ++epoch) {
    for (int64_t m0 = 0; m0 < n; m0 += o.mini_batch_size) {
      const int64_t m1 = m0 + o.mini_batch_size;
      // Global denominators of this mini-batch: with data-parallel ranks the counts are summed
      // over them, so each rank's loss is its share of the global mean.
      AggContext ctx;
      if (o.dp == nullptr) {
        ctx = AggContext::from_mask(b.loss_mask.slice(0, m0, m1));
      } else {
        AggCounts counts = count_for_agg(b.loss_mask.slice(0, m0, m1));
        o.dp->reduce_counts(counts);
        ctx = AggContext::from_counts(counts);
      }
      optimizer.zero_grad();
      if (separate_critic) critic->optimizer->zero_grad();
      double loss_total = 0;
      std::map<std::string, double> mb;
      int micro = 0;
      for (const auto& [u0, u1] : micro_batches(tokens, m0, m1, o.micro_batch_size, o.max_tokens_per_micro_batch)) {
        const auto s = slice_rows(b, u0, u1, policy.device());
        models::LogprobOptions lo;
        lo.padding_free = o.padding_free;
        lo.temperature = o.temperature;
        lo.entropy = true;
        lo.values = shared_critic;
        lo.response_attention = s.rattn;
        const auto lp = models::sequence_logprobs(policy, s.pids, s.pmask, s.rids, s.rmask, lo);
        PolicyLossInputs in;
        in.logp = lp.logprobs;
        in.logp_old = s.old_lp;
        in.advantages = s.adv;
        in.response_mask = s.loss_mask;
        in.logp_ref = s.ref_lp;
        in.group_ids = s.groups;
        in.entropy = o.loss.entropy_coef > 0 ? lp.entropy : lp.entropy.detach();
        in.agg = ctx;
        auto out = loss_fn(in, o.loss);
        if (critic) {
          ValueLossInputs vin;
          vin.values_old = s.values;
          vin.returns = s.returns;
          vin.response_mask = s.loss_mask;
          vin.agg = ctx;
          if (shared_critic) {
            vin.values = lp.values;
          } else {
            models::LogprobOptions co;
            co.values = true;
            co.logprobs = false;
            co.padding_free = o.padding_free;
            co.response_attention = s.rattn;
            vin.values = models::sequence_logprobs(*critic->model, s.pids, s.pmask, s.rids, s.rmask, co).values;
          }
          auto vl = value_loss(vin, critic->loss);
          if (shared_critic) {
            out.loss = out.loss + critic->vf_coef * vl.loss;
          } else {
            vl.loss.backward();
          }
          for (const auto& [k, v] : vl.metrics) out.metrics[k] = v;
        }
        out.loss.backward();
        loss_total += out.loss.item<double>();
        for (const auto& [k, v] : out.metrics) mb[k] += v;
        ++micro;
      }
      // Data-parallel: gradients summed over the ranks before the norm is taken and clipped.
      const double max_norm = o.grad_clip > 0 ? o.grad_clip : std::numeric_limits<double>::infinity();
      double grad_norm = reduce_and_clip_gradients(optimizer, o.dp, params, max_norm);
      if (separate_critic) {
        const auto cparams = critic->model->parameters();
        const double cnorm = reduce_and_clip_gradients(*critic->optimizer, o.dp, cparams, max_norm);
        sums["critic/grad_norm"] += cnorm;
        if (std::isfinite(cnorm)) {
          sums["critic/lr"] += scheduled_step(*critic->optimizer, critic->lr, *critic->opt_step);
        }
        critic->optimizer->zero_grad();
      }
      // This step's scalars. pg_loss / kl_loss / vf_loss are per-micro-batch shares (they add up,
      // over micro-batches and ranks); rates are averaged over micro-batches (and ranks).
      std::map<std::string, double> step_sum{{"actor/loss", loss_total}};
      std::map<std::string, double> step_mean{{"actor/grad_norm", grad_norm}};
      for (const auto& [k, v] : mb) {
        if (k == "actor/pg_loss" || k == "actor/kl_loss" || k == "critic/vf_loss") step_sum[k] = v;
        else step_mean[k] = v / micro;
      }
      // Reduced before the guard so that every rank takes the same skip / rollback decision.
      if (o.dp != nullptr) {
        o.dp->reduce_scalars(step_sum, step_mean);
        loss_total = step_sum.at("actor/loss");
        grad_norm = step_mean.at("actor/grad_norm");
      }
      const auto verdict = guard.check(loss_total, grad_norm);
      if (verdict == NumericsGuard::Verdict::kOk) {
        sums["actor/lr"] += scheduled_step(optimizer, o.lr, opt_step);
        ++res.optimizer_steps;
      } else {
        optimizer.zero_grad();
        if (verdict == NumericsGuard::Verdict::kRollback) {
          res.rollback = true;
          return res;
        }
      }
      for (const auto& [k, v] : step_sum) sums[k] += v;
      for (const auto& [k, v] : step_mean) sums[k] += v;
      ++mini_batches;
    }
  }
  optimizer.zero_grad();
  for (const auto& [k, v] : sums) res.metrics[k] = v / static_cast<double>(std::max<int64_t>(1, mini_batches));
  if (res.optimizer_steps > 0 && sums.count("actor/lr"))
    res.metrics["actor/lr"] = sums["actor/lr"] / static_cast<double>(res.optimizer_steps);
  res.metrics["actor/skipped_steps"] = static_cast<double>(guard.skipped_total());
  return res;
}

}  // namespace keel::learner
