#include "trainer/loop/update.h"

#include <algorithm>
#include <chrono>
#include <optional>

#include <torch/torch.h>

#include "base/log.h"
#include "trainer/cli/train_common.h"
#include "trainer/dist/batch_gather.h"
#include "models/generate.h"
#include "trainer/loop/fit_data.h"
#include "trainer/loop/run_state.h"
#include "trainer/loop/sample.h"
#include "trainer/rollout/prompt_format.h"

namespace keel::loop {

namespace {

/// Prompt token ids of records (chat template applied), leaving room for `reserve` tokens.
std::vector<std::vector<int64_t>> encode_prompts(const RunState& c, const std::vector<data::PromptRecord>& records,
                                                 const std::vector<int64_t>& reserve) {
  std::vector<std::vector<int64_t>> out;
  const int64_t ctx = c.policy->config().max_position_embeddings;
  for (size_t i = 0; i < records.size(); ++i)
    out.push_back(rollout::encode_prompt(records[i], *c.tok, c.chat_template, ctx, reserve[i]));
  return out;
}

/// Response token ids of a text + EOS.
std::vector<int64_t> encode_response(const RunState& c, const std::string& text) {
  auto ids = c.tok->encode(text, /*add_special=*/false);
  if (c.tok->eos_id() != models::kNoToken) ids.push_back(c.tok->eos_id());
  return ids;
}

/// The next mini-batch of records — with several ranks, this rank's contiguous share of it (every
/// rank advances the data cursor by the whole mini-batch).
std::vector<data::PromptRecord> next_mini_batch(RunState& c) {
  auto records = c.data->next_batch(static_cast<size_t>(c.cfg.batch.mini_batch_size));
  if (c.world == 1) return records;
  const auto per = records.size() / static_cast<size_t>(c.world), first = static_cast<size_t>(c.rank) * per;
  return {records.begin() + static_cast<long>(first), records.begin() + static_cast<long>(first + per)};
}

}  // namespace

learner::RlUpdateResult update_policy(RunState& c, const rollout::RolloutBatch& b, learner::NumericsGuard& guard) {
  const auto& cfg = c.cfg;
  const auto& u = c.update;
  std::optional<learner::CriticUpdate> cu;
  if (c.ppo()) {
    cu.emplace();
    cu->model = c.critic_model();
    cu->optimizer = c.critic_optimizer.get();
    cu->loss.clip = cfg.critic.cliprange_value;
    cu->loss.agg = u.loss.agg;
    cu->vf_coef = cfg.critic.vf_coef;
    cu->lr = u.lr;
    cu->lr.lr = cfg.critic.lr;
    cu->opt_step = &c.critic_opt_step;
  }
  if (c.comm) {
    // This rank's slice of every global mini-batch; denominators, gradients and the guard's
    // scalars are reduced over the ranks.
    const auto rows = dist::rank_rows(b.size(), cfg.batch.mini_batch_size, c.rank, c.world);
    const auto mine = rollout::select_rows(b, torch::tensor(rows, torch::kLong));
    auto ur = u;
    ur.mini_batch_size = cfg.batch.mini_batch_size / c.world;
    ur.dp = &c.dp_hooks;
    return learner::rl_update(*c.policy, *c.optimizer, mine, c.loss_fn, ur, guard, c.opt_step, cu ? &*cu : nullptr);
  }
  return learner::rl_update(*c.policy, *c.optimizer, b, c.loss_fn, u, guard, c.opt_step, cu ? &*cu : nullptr);
}

learner::SupervisedOptions supervised_options(const RunState& c) {
  learner::SupervisedOptions so;
  so.micro_batch_size = c.cfg.batch.micro_batch_size;
  so.padding_free = c.cfg.batch.padding_free;
  so.max_tokens_per_micro_batch = c.cfg.batch.max_tokens_per_micro_batch;
  so.grad_clip = c.cfg.optim.grad_clip;
  so.lr = c.update.lr;
  if (c.comm) so.dp = &c.dp_hooks;
  return so;
}

/// SFT on expert episodes of the run's environment: each record's expert conversation, trained on
/// the expert's turns only (the observations are attended to, as in the rollout, not predicted).
learner::SequenceBatch expert_batch(const RunState& c, const std::vector<data::PromptRecord>& records) {
  std::vector<env::ExpertEpisode> eps;
  size_t pw = 1, rw = 1;
  for (size_t i = 0; i < records.size(); ++i) {
    const uint64_t seed = data::problem_seed(static_cast<uint64_t>(c.cfg.run.seed), data::Split::kTrain,
                                             static_cast<uint64_t>(c.step) * 100003ull + i);
    eps.push_back(env::expert_episode(*c.tok, *c.env, records[i], seed, c.chat_template, c.episode));
    pw = std::max(pw, eps.back().prompt.size());
    rw = std::max(rw, eps.back().response.size());
  }
  const int64_t n = static_cast<int64_t>(eps.size()), pad = c.tok->pad_id() != models::kNoToken ? c.tok->pad_id() : 0;
  std::vector<std::vector<int64_t>> prompts;
  for (const auto& e : eps) prompts.push_back(e.prompt);
  learner::SequenceBatch b;
  std::tie(b.prompt_ids, b.prompt_mask) = models::left_pad(prompts, pad);
  b.response_ids = torch::full({n, static_cast<int64_t>(rw)}, pad, torch::kLong);
  b.response_mask = torch::zeros({n, static_cast<int64_t>(rw)}, torch::kLong);
  b.response_attention = torch::zeros({n, static_cast<int64_t>(rw)}, torch::kLong);
  auto ia = b.response_ids.accessor<int64_t, 2>();
  auto ma = b.response_mask.accessor<int64_t, 2>();
  auto aa = b.response_attention.accessor<int64_t, 2>();
  for (int64_t i = 0; i < n; ++i) {
    const auto& e = eps[static_cast<size_t>(i)];
    for (size_t j = 0; j < e.response.size(); ++j) {
      ia[i][static_cast<int64_t>(j)] = e.response[j];
      ma[i][static_cast<int64_t>(j)] = e.mask[j];
      aa[i][static_cast<int64_t>(j)] = 1;
    }
  }
  return b;
}

StepOut sft_step(RunState& c, learner::NumericsGuard& guard) {
  const auto records = next_mini_batch(c);
  if (c.env) {
    auto r = learner::sft_update(*c.policy, *c.optimizer, expert_batch(c, records), supervised_options(c), guard,
                                 c.opt_step);
    add_data_metrics(c, r.metrics);
    return {r.metrics, r.rollback};
  }
  std::vector<std::vector<int64_t>> responses;
  std::vector<int64_t> reserve;
  for (const auto& r : records) {
    const auto text = c.data->task() ? c.data->task()->gold_response(r) : data::meta_string(r, "response");
    responses.push_back(encode_response(c, text));
    reserve.push_back(static_cast<int64_t>(responses.back().size()));
  }
  const auto batch = learner::collate(encode_prompts(c, records, reserve), responses);
  auto r = learner::sft_update(*c.policy, *c.optimizer, batch, supervised_options(c), guard, c.opt_step);
  add_data_metrics(c, r.metrics);
  return {r.metrics, r.rollback};
}

std::pair<learner::SequenceBatch, learner::SequenceBatch> encode_pairs(
    const RunState& c, const std::vector<data::PromptRecord>& records, const std::function<uint64_t(size_t)>& salt) {
  std::vector<std::vector<int64_t>> chosen, rejected;
  std::vector<int64_t> reserve;
  for (size_t i = 0; i < records.size(); ++i) {
    const auto& r = records[i];
    if (c.data->task()) {
      chosen.push_back(encode_response(c, c.data->task()->gold_response(r)));
      rejected.push_back(encode_response(c, c.data->task()->wrong_response(r, salt(i))));
    } else {
      chosen.push_back(encode_response(c, data::meta_string(r, "chosen")));
      rejected.push_back(encode_response(c, data::meta_string(r, "rejected")));
    }
    reserve.push_back(static_cast<int64_t>(std::max(chosen.back().size(), rejected.back().size())));
  }
  const auto prompts = encode_prompts(c, records, reserve);
  return {learner::collate(prompts, chosen), learner::collate(prompts, rejected)};
}

StepOut dpo_offline_step(RunState& c, learner::NumericsGuard& guard) {
  const auto records = next_mini_batch(c);
  const auto step = static_cast<uint64_t>(c.step);
  const auto [chosen, rejected] = encode_pairs(c, records, [step](size_t) { return step; });
  auto r = learner::dpo_update(*c.policy, c.reference ? &*c.reference : nullptr, *c.optimizer, chosen, rejected,
                               c.dpo_fn, c.dpo_opts, supervised_options(c), guard, c.opt_step);
  add_data_metrics(c, r.metrics);
  return {r.metrics, r.rollback};
}

StepOut dpo_online_step(RunState& c, learner::NumericsGuard& guard, int64_t step, metrics::Metrics m) {
  PromptStore store;
  auto b = sample(c, step, store, m);
  add_data_metrics(c, m);
  std::vector<int64_t> best, worst;
  const int64_t groups = b.group_ids.max().item<int64_t>() + 1;
  for (int64_t g = 0; g < groups; ++g) {
    const auto rows = (b.group_ids == g).nonzero().squeeze(1);
    const auto r = b.rewards.index_select(0, rows);
    if ((r.max() - r.min()).item<double>() <= 0) continue;
    best.push_back(rows[r.argmax()].item<int64_t>());
    worst.push_back(rows[r.argmin()].item<int64_t>());
  }
  m["dpo/pairs"] = static_cast<double>(best.size());
  m["reward/mean"] = b.rewards.mean().item<double>();
  if (b.correct.defined()) m["reward/accuracy"] = b.correct.mean().item<double>();
  if (best.empty()) {
    log::warn("online DPO step {}: every prompt's samples scored the same; no pairs, no update", step);
    return {m, false};
  }
  const auto to_seq = [&](const std::vector<int64_t>& rows) {
    const auto sel = rollout::select_rows(b, torch::tensor(rows, torch::kLong));
    learner::SequenceBatch s{sel.prompt_ids, sel.prompt_mask, sel.response_ids, sel.response_mask};
    return s;
  };
  const auto t = std::chrono::steady_clock::now();
  auto r = learner::dpo_update(*c.policy, c.reference ? &*c.reference : nullptr, *c.optimizer, to_seq(best),
                               to_seq(worst), c.dpo_fn, c.dpo_opts, supervised_options(c), guard, c.opt_step);
  m["time/update_s"] = cli::seconds_since(t);
  for (const auto& [k, v] : r.metrics) m[k] = v;
  return {m, r.rollback};
}

}  // namespace keel::loop
