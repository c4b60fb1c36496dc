// Teacher-forced response log-probs. See logprobs.h.
#include "models/logprobs.h"

#include <torch/torch.h>

#include "models/fused_cpu.h"

namespace keel::models {

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
