#include "trainer/learner/sequence_batch.h"

#include <torch/torch.h>

#include "models/generate.h"

namespace keel::learner {

SequenceBatch SequenceBatch::rows(int64_t lo, int64_t hi) const {
  SequenceBatch s;
  const auto pm = prompt_mask.slice(0, lo, hi);
  const int64_t p0 = (pm.sum(0) > 0).to(torch::kLong).argmax().item<int64_t>();  // first used column
  const auto rm = response_mask.slice(0, lo, hi);
  const auto seen = (response_attention.defined() ? response_attention : response_mask).slice(0, lo, hi);
  const int64_t r1 = std::max<int64_t>(1, seen.sum(1).max().item<int64_t>());
  s.prompt_ids = prompt_ids.slice(0, lo, hi).slice(1, p0);
  s.prompt_mask = pm.slice(1, p0);
  s.response_ids = response_ids.slice(0, lo, hi).slice(1, 0, r1);
  s.response_mask = rm.slice(1, 0, r1);
  if (response_attention.defined()) s.response_attention = seen.slice(1, 0, r1);
  return s;
}

SequenceBatch SequenceBatch::to(const at::Device& device) const {
  const auto on = [&](const at::Tensor& t) { return t.defined() ? t.to(device) : t; };
  return {on(prompt_ids), on(prompt_mask), on(response_ids), on(response_mask), on(response_attention)};
}

std::vector<std::pair<int64_t, int64_t>> micro_batches(const at::Tensor& row_tokens, int64_t lo, int64_t hi,
                                                       int64_t max_rows, int64_t max_tokens) {
  TORCH_CHECK(max_rows > 0, "micro_batches: max_rows must be > 0");
  std::vector<std::pair<int64_t, int64_t>> out;
  if (max_tokens <= 0) {
    for (int64_t s = lo; s < hi; s += max_rows) out.emplace_back(s, std::min(hi, s + max_rows));
    return out;
  }
  const auto tok = row_tokens.to(torch::kLong).cpu().contiguous();
  TORCH_CHECK(tok.dim() == 1 && tok.size(0) >= hi, "micro_batches: row_tokens ", tok.sizes(), " does not cover row ", hi - 1);
  const auto* t = tok.data_ptr<int64_t>();
  int64_t s = lo, sum = 0;
  for (int64_t i = lo; i < hi; ++i) {
    if (i > s && (i - s == max_rows || sum + t[i] > max_tokens)) {
      out.emplace_back(s, i);
      s = i;
      sum = 0;
    }
    sum += t[i];
  }
  if (hi > lo) out.emplace_back(s, hi);
  return out;
}

at::Tensor row_tokens(const at::Tensor& prompt_mask, const at::Tensor& response_mask,
                      const at::Tensor& response_attention) {
  const auto& seen = response_attention.defined() ? response_attention : response_mask;
  return (prompt_mask.to(torch::kLong).sum(1) + seen.to(torch::kLong).sum(1)).cpu();
}

SequenceBatch sequences(const rollout::RolloutBatch& b) {
  return {b.prompt_ids, b.prompt_mask, b.response_ids, b.response_mask, b.response_attention};
}

models::SequenceLogprobs no_grad_logprobs(models::Transformer& model, const SequenceBatch& b, int64_t micro,
                                          const models::LogprobOptions& opts) {
  TORCH_CHECK(micro > 0, "no_grad_logprobs: micro must be > 0");
  torch::NoGradGuard ng;
  std::vector<at::Tensor> lp, ent, val, red;
  const auto dev = model.device();
  for (int64_t s = 0; s < b.size(); s += micro) {
    const int64_t e = std::min(b.size(), s + micro);
    const auto sl = [&](const at::Tensor& t) { return t.slice(0, s, e).to(dev); };
    models::LogprobOptions o = opts;
    if (b.response_attention.defined()) o.response_attention = sl(b.response_attention);
    auto out = models::sequence_logprobs(model, sl(b.prompt_ids), sl(b.prompt_mask), sl(b.response_ids),
                                         sl(b.response_mask), o);
    if (out.logprobs.defined()) lp.push_back(out.logprobs.cpu());
    if (out.entropy.defined()) ent.push_back(out.entropy.cpu());
    if (out.values.defined()) val.push_back(out.values.cpu());
    if (out.hidden_reduced.defined()) red.push_back(out.hidden_reduced.cpu());
  }
  const auto cat = [](const std::vector<at::Tensor>& v) { return v.empty() ? at::Tensor() : torch::cat(v); };
  return {cat(lp), cat(ent), cat(val), cat(red)};
}

SequenceBatch collate(const std::vector<std::vector<int64_t>>& prompts,
                      const std::vector<std::vector<int64_t>>& responses, int64_t pad_id) {
  TORCH_CHECK(prompts.size() == responses.size(), "collate: ", prompts.size(), " prompts but ", responses.size(),
              " responses");
  SequenceBatch b;
  std::tie(b.prompt_ids, b.prompt_mask) = models::left_pad(prompts, pad_id);
  const auto n = static_cast<int64_t>(responses.size());
  int64_t rmax = 1;
  for (const auto& r : responses) rmax = std::max<int64_t>(rmax, static_cast<int64_t>(r.size()));
  b.response_ids = torch::full({n, rmax}, pad_id, torch::kLong);
  b.response_mask = torch::zeros({n, rmax}, torch::kLong);
  auto ids = b.response_ids.accessor<int64_t, 2>();
  auto m = b.response_mask.accessor<int64_t, 2>();
  for (int64_t i = 0; i < n; ++i)
    for (size_t t = 0; t < responses[static_cast<size_t>(i)].size(); ++t) {
      ids[i][static_cast<int64_t>(t)] = responses[static_cast<size_t>(i)][t];
      m[i][static_cast<int64_t>(t)] = 1;
    }
  return b;
}

}  // namespace keel::learner
