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

}  // namespace

const std::vector<TensorField>& tensor_fields() {
  using L = TensorField::Layout;
  static const std::vector<TensorField> fields = {
      {&RolloutBatch::prompt_ids, L::kPrompt, true},        {&RolloutBatch::prompt_mask, L::kPrompt, false},
      {&RolloutBatch::response_ids, L::kResponse, true},    {&RolloutBatch::response_mask, L::kResponse, false},
      {&RolloutBatch::old_logprobs, L::kResponse, false},   {&RolloutBatch::ref_logprobs, L::kResponse, false},
      {&RolloutBatch::values, L::kResponse, false},         {&RolloutBatch::token_rewards, L::kResponse, false},
      {&RolloutBatch::advantages, L::kResponse, false},     {&RolloutBatch::returns, L::kResponse, false},
      {&RolloutBatch::loss_mask, L::kResponse, false},      {&RolloutBatch::rewards, L::kRow, false},
      {&RolloutBatch::row_versions, L::kRow, false},        {&RolloutBatch::correct, L::kRow, false},
      {&RolloutBatch::step_scores, L::kResponse, false},    {&RolloutBatch::step_end_mask, L::kResponse, false},
      {&RolloutBatch::pair_prefs, L::kRow, false},
      {&RolloutBatch::response_attention, L::kResponse, false}, {&RolloutBatch::turn_ids, L::kResponse, false, -1.0},
      {&RolloutBatch::env_info, L::kRow, false},           {&RolloutBatch::env_turn_info, L::kRow, false},
      {&RolloutBatch::env_turn_rewards, L::kRow, false},   {&RolloutBatch::env_turn_message_ids, L::kRow, false, -1.0},
  };
  return fields;
}

at::Tensor pad_columns(const at::Tensor& t, int64_t w, TensorField::Layout layout, double value) {
  const int64_t extra = layout == TensorField::Layout::kRow ? 0 : w - t.size(1);
  if (extra <= 0) return t;
  auto pad = torch::full({t.size(0), extra}, value, t.options());
  return layout == TensorField::Layout::kPrompt ? torch::cat({pad, t}, 1) : torch::cat({t, pad}, 1);
}

RolloutBatch select_rows(const RolloutBatch& b, const at::Tensor& rows) {
  const auto idx = rows.to(torch::kLong);
  std::vector<int64_t> r(idx.data_ptr<int64_t>(), idx.data_ptr<int64_t>() + idx.numel());
  RolloutBatch o;
  for (const auto& f : tensor_fields())
    if ((b.*f.member).defined()) o.*f.member = (b.*f.member).index_select(0, idx);
  o.group_ids = b.group_ids.index_select(0, idx);
  o.prompt_texts = pick(b.prompt_texts, r);
  o.response_texts = pick(b.response_texts, r);
  o.finish_reasons = pick(b.finish_reasons, r);
  o.records = pick(b.records, r);
  o.env_keys = b.env_keys;
  o.policy_version = b.policy_version;
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
  RolloutBatch o;
  for (const auto& f : tensor_fields()) {
    const bool defined = (parts.front().*f.member).defined();
    std::vector<at::Tensor> ts;
    for (const auto& p : parts) {
      TORCH_CHECK((p.*f.member).defined() == defined, "concat: a field is defined in some batches only");
      if (defined)
        ts.push_back(pad_columns(p.*f.member, f.layout == TensorField::Layout::kPrompt ? pw : rw, f.layout,
                                 f.token_ids ? static_cast<double>(pad_id) : f.fill));
    }
    if (defined) o.*f.member = torch::cat(ts, 0);
  }
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
  o.env_keys = parts.front().env_keys;
  o.policy_version = parts.front().policy_version;
  return o;
}

}  // namespace keel::rollout
