#include "trainer/rollout/rollout_batch.h"

#include <torch/torch.h>

namespace keel::rollout {

namespace {

/// Per-row string vectors indexed like the tensors.
template <typename T>
std::vector<T> pick(const std::vector<T>& v, const std::vector<int64_t>& rows) {
  std::vector<T> out;
  if (v.empty()) return out;
  for (const int64_t r : rows) out.push_back(v[static_cast<size_t>(r)]);
  return out;
}

/// Pads [N, W] to width w on the left (prompts) or the right (responses).
at::Tensor pad_to(const at::Tensor& t, int64_t w, bool left, double value) {
  const int64_t extra = w - t.size(1);
  if (extra == 0) return t;
  auto pad = torch::full({t.size(0), extra}, value, t.options());
  return left ? torch::cat({pad, t}, 1) : torch::cat({t, pad}, 1);
}

}  // namespace

RolloutBatch select_rows(const RolloutBatch& b, const at::Tensor& rows) {
  const auto idx = rows.to(torch::kLong);
  const auto sel = [&](const at::Tensor& t) { return t.defined() ? t.index_select(0, idx) : t; };
  std::vector<int64_t> r(idx.data_ptr<int64_t>(), idx.data_ptr<int64_t>() + idx.numel());
  RolloutBatch o;
  o.prompt_ids = sel(b.prompt_ids);
  o.prompt_mask = sel(b.prompt_mask);
  o.response_ids = sel(b.response_ids);
  o.response_mask = sel(b.response_mask);
  o.old_logprobs = sel(b.old_logprobs);
  o.group_ids = sel(b.group_ids);
  o.prompt_texts = pick(b.prompt_texts, r);
  o.response_texts = pick(b.response_texts, r);
  o.finish_reasons = pick(b.finish_reasons, r);
  o.records = pick(b.records, r);
  o.policy_version = b.policy_version;
  o.ref_logprobs = sel(b.ref_logprobs);
  o.values = sel(b.values);
  o.rewards = sel(b.rewards);
  o.token_rewards = sel(b.token_rewards);
  o.advantages = sel(b.advantages);
  o.returns = sel(b.returns);
  o.loss_mask = sel(b.loss_mask);
  return o;
}

RolloutBatch concat(const std::vector<RolloutBatch>& parts, int64_t pad_id) {
  TORCH_CHECK(!parts.empty(), "concat: no batches");
  if (parts.size() == 1) return parts.front();
  int64_t pw = 0, rw = 0;
  for (const auto& p : parts) {
    pw = std::max(pw, p.prompt_ids.size(1));
    rw = std::max(rw, p.response_ids.size(1));
  }
  const auto cat = [&](auto field, bool left, int64_t w, double value) {
    std::vector<at::Tensor> ts;
    for (const auto& p : parts) {
      const at::Tensor& t = field(p);
      TORCH_CHECK(t.defined() == field(parts.front()).defined(), "concat: a field is defined in some batches only");
      if (t.defined()) ts.push_back(w > 0 ? pad_to(t, w, left, value) : t);
    }
    return ts.empty() ? at::Tensor() : torch::cat(ts, 0);
  };
  RolloutBatch o;
  o.prompt_ids = cat([](const RolloutBatch& p) -> const at::Tensor& { return p.prompt_ids; }, true, pw, pad_id);
  o.prompt_mask = cat([](const RolloutBatch& p) -> const at::Tensor& { return p.prompt_mask; }, true, pw, 0);
  o.response_ids = cat([](const RolloutBatch& p) -> const at::Tensor& { return p.response_ids; }, false, rw, pad_id);
  o.response_mask = cat([](const RolloutBatch& p) -> const at::Tensor& { return p.response_mask; }, false, rw, 0);
  o.old_logprobs = cat([](const RolloutBatch& p) -> const at::Tensor& { return p.old_logprobs; }, false, rw, 0);
  o.ref_logprobs = cat([](const RolloutBatch& p) -> const at::Tensor& { return p.ref_logprobs; }, false, rw, 0);
  o.values = cat([](const RolloutBatch& p) -> const at::Tensor& { return p.values; }, false, rw, 0);
  o.token_rewards = cat([](const RolloutBatch& p) -> const at::Tensor& { return p.token_rewards; }, false, rw, 0);
  o.advantages = cat([](const RolloutBatch& p) -> const at::Tensor& { return p.advantages; }, false, rw, 0);
  o.returns = cat([](const RolloutBatch& p) -> const at::Tensor& { return p.returns; }, false, rw, 0);
  o.loss_mask = cat([](const RolloutBatch& p) -> const at::Tensor& { return p.loss_mask; }, false, rw, 0);
  o.rewards = cat([](const RolloutBatch& p) -> const at::Tensor& { return p.rewards; }, false, 0, 0);
  std::vector<at::Tensor> groups;
  int64_t offset = 0;
  for (const auto& p : parts) {
    groups.push_back(p.group_ids + offset);
    if (p.size() > 0) offset += p.group_ids.max().item<int64_t>() + 1;
  }
  o.group_ids = torch::cat(groups, 0);
  for (const auto& p : parts) {
    o.prompt_texts.insert(o.prompt_texts.end(), p.prompt_texts.begin(), p.prompt_texts.end());
    o.response_texts.insert(o.response_texts.end(), p.response_texts.begin(), p.response_texts.end());
    o.finish_reasons.insert(o.finish_reasons.end(), p.finish_reasons.begin(), p.finish_reasons.end());
    o.records.insert(o.records.end(), p.records.begin(), p.records.end());
  }
  o.policy_version = parts.front().policy_version;
  return o;
}

}  // namespace keel::rollout
