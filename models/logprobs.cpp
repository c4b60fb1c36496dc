// Teacher-forced response log-probs. See logprobs.h.
#include "models/logprobs.h"

#include <torch/torch.h>

#include "models/fused_cpu.h"

namespace keel::models {

namespace {

/// sequence_logprobs' padding-free body. ids / mask [N, P + R] as the padded pass builds them; the
/// prompt occupies the first p columns.
SequenceLogprobs packed_logprobs(Transformer& model, const at::Tensor& ids, const at::Tensor& mask, int64_t p,
                                 const at::Tensor& response_ids, const at::Tensor& response_mask,
                                 const LogprobOptions& opts) {
  const int64_t n = ids.size(0), r = response_ids.size(1);
  const auto keep = mask.to(torch::kBool);
  // Row-major selection keeps each row's real tokens in order (left-padded prompt, then the seen
  // response prefix), so the rows come out back to back.
  const auto packed_ids = ids.masked_select(keep).unsqueeze(0);  // [1, T]
  const auto lens_t = mask.sum(1).cpu();
  std::vector<int64_t> lens(lens_t.data_ptr<int64_t>(), lens_t.data_ptr<int64_t>() + n);
  const auto hidden = model.forward_hidden_packed(packed_ids, lens)[0];  // [T, H]
  // Packed index of every real [N, P + R] position; the state that predicts response token t of a
  // row sits at column p - 1 + t.
  const auto packed_index = (keep.to(torch::kLong).flatten().cumsum(0) - 1).view(keep.sizes());
  const auto valid = response_mask.to(torch::kBool);  // [N, R]
  const auto at = packed_index.narrow(1, p - 1, r).masked_select(valid);  // [M]
  const auto h = hidden.index_select(0, at);                               // [M, H]
  const auto scatter = [&](const at::Tensor& per_token) {                  // [M] -> [N, R], 0 elsewhere
    return torch::zeros({n, r}, per_token.options()).masked_scatter(valid, per_token);
  };
  SequenceLogprobs out;
  if (opts.values) {
    TORCH_CHECK(model.heads().value_head, "sequence_logprobs: values asked of a model without a value head");
    out.values = scatter(model.values(h.unsqueeze(0))[0].to(torch::kFloat));
  }
  if (opts.hidden_reduce) {  // every real position, as the padded pass has them (0 on padding)
    const auto real = keep.narrow(1, p - 1, r);
    const auto hr = hidden.index_select(0, packed_index.narrow(1, p - 1, r).masked_select(real)).to(torch::kFloat);
    const auto full = torch::zeros({n, r, hr.size(1)}, hr.options()).masked_scatter(real.unsqueeze(-1), hr);
    out.hidden_reduced = opts.hidden_reduce(full, response_mask);
  }
  if (!opts.logprobs) return out;
  const auto logits = model.lm_logits(h.unsqueeze(0)).to(torch::kFloat);  // [1, M, V]
  const auto tokens = response_ids.to(torch::kLong).masked_select(valid).unsqueeze(0);  // [1, M]
  if (!opts.entropy) {
    out.logprobs = scatter(token_logprobs(logits, tokens, opts.temperature)[0]);
    return out;
  }
  const auto logp_all = torch::log_softmax(logits / opts.temperature, -1);
  out.logprobs = scatter(logp_all.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)[0]);
  out.entropy = scatter((-(logp_all.exp() * logp_all).sum(-1))[0]);
  return out;
}

}  // namespace

SequenceLogprobs sequence_logprobs(Transformer& model, const at::Tensor& prompt_ids, const at::Tensor& prompt_mask,
                                   const at::Tensor& response_ids, const at::Tensor& response_mask,
                                   const LogprobOptions& opts) {
  TORCH_CHECK(prompt_ids.dim() == 2 && prompt_mask.sizes() == prompt_ids.sizes(), "sequence_logprobs: prompt_ids ",
              prompt_ids.sizes(), " and prompt_mask ", prompt_mask.sizes(), " must both be [N, P]");
  TORCH_CHECK(response_ids.dim() == 2 && response_mask.sizes() == response_ids.sizes() &&
                  response_ids.size(0) == prompt_ids.size(0),
              "sequence_logprobs: response_ids ", response_ids.sizes(), " and response_mask ", response_mask.sizes(),
              " must both be [N, R] with N = ", prompt_ids.size(0));
  TORCH_CHECK(prompt_ids.size(1) >= 1, "sequence_logprobs: prompts must have at least one token");
  TORCH_CHECK(prompt_mask.select(1, -1).to(torch::kBool).all().item<bool>(),
              "sequence_logprobs: prompts must be left-padded (last prompt column all real)");
  TORCH_CHECK(opts.temperature > 0, "sequence_logprobs: temperature must be > 0, got ", opts.temperature);
  const int64_t p = prompt_ids.size(1), r = response_ids.size(1);
  const auto ids = torch::cat({prompt_ids, response_ids}, 1);                                     // [N, P + R]
  const at::Tensor& seen = opts.response_attention.defined() ? opts.response_attention : response_mask;
  TORCH_CHECK(seen.sizes() == response_mask.sizes(), "sequence_logprobs: response_attention ", seen.sizes(),
              " must match response_mask ", response_mask.sizes());
  const auto mask = torch::cat({prompt_mask.to(torch::kLong), seen.to(torch::kLong)}, 1);  // [N, P + R]
  if (opts.padding_free) return packed_logprobs(model, ids, mask, p, response_ids, response_mask, opts);
  // Only the positions that predict response tokens need logits: P - 1 .. P + R - 2.
  const auto hidden = model.forward_hidden(ids, mask).narrow(1, p - 1, r);  // [N, R, H]
  const auto valid = response_mask.to(torch::kFloat);
  SequenceLogprobs out;
  if (opts.values) {
    TORCH_CHECK(model.heads().value_head, "sequence_logprobs: values asked of a model without a value head");
    out.values = model.values(hidden).to(torch::kFloat) * valid;
  }
  if (opts.hidden_reduce) out.hidden_reduced = opts.hidden_reduce(hidden.to(torch::kFloat), response_mask);
  if (!opts.logprobs) return out;
  const auto logits = model.lm_logits(hidden).to(torch::kFloat);  // [N, R, V]
  if (!opts.entropy) {  // the fused one-pass path on CPU (models/fused_cpu.h), no [N, R, V] log-softmax
    out.logprobs = token_logprobs(logits, response_ids.to(torch::kLong), opts.temperature) * valid;
    return out;
  }
  const auto logp_all = torch::log_softmax(logits / opts.temperature, -1);
  out.logprobs = logp_all.gather(-1, response_ids.to(torch::kLong).unsqueeze(-1)).squeeze(-1) * valid;
  out.entropy = -(logp_all.exp() * logp_all).sum(-1) * valid;
  return out;
}

}  // namespace keel::models
