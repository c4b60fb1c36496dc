// Last-token read-outs over left-padded batches (see sequence_scoring.h).
#include "rewards/models/sequence_scoring.h"

#include <torch/torch.h>

#include "models/generate.h"

namespace keel::rewards {

namespace {

/// Chunks [s, e) of `seqs`, each left-padded, on the model's device: (ids [n, P], mask [n, P]).
std::pair<torch::Tensor, torch::Tensor> padded(const models::Transformer& model,
                                               const std::vector<std::vector<int64_t>>& seqs, size_t s, size_t e,
                                               int64_t pad_id) {
  std::vector<std::vector<int64_t>> part(seqs.begin() + static_cast<long>(s), seqs.begin() + static_cast<long>(e));
  auto [ids, mask] = models::left_pad(part, pad_id);  // throws on an empty sequence
  return {ids.to(model.device()), mask.to(model.device())};
}

}  // namespace

std::vector<int64_t> keep_last_tokens(const std::vector<int64_t>& ids, int64_t max_len) {
  if (max_len <= 0 || static_cast<int64_t>(ids.size()) <= max_len) return ids;
  return std::vector<int64_t>(ids.end() - max_len, ids.end());
}

torch::Tensor last_token_rewards(models::Transformer& model, const std::vector<std::vector<int64_t>>& seqs,
                                 int64_t pad_id) {
  TORCH_CHECK(model.heads().reward_head, "last_token_rewards: the model has no reward head (score.weight)");
  TORCH_CHECK(!seqs.empty(), "last_token_rewards: no sequences");
  auto [ids, mask] = padded(model, seqs, 0, seqs.size(), pad_id);
  const auto hidden = model.forward_hidden(ids, mask);            // [N, P, H]
  return model.rewards(hidden.narrow(1, hidden.size(1) - 1, 1)).squeeze(1);  // [N]: last column = last real token
}

torch::Tensor score_sequences(models::Transformer& model, const std::vector<std::vector<int64_t>>& seqs,
                              int64_t batch_size, int64_t pad_id) {
  TORCH_CHECK(batch_size >= 1, "score_sequences: batch_size must be >= 1, got ", batch_size);
  torch::NoGradGuard ng;
  std::vector<torch::Tensor> parts;
  for (size_t s = 0; s < seqs.size(); s += static_cast<size_t>(batch_size)) {
    const size_t e = std::min(seqs.size(), s + static_cast<size_t>(batch_size));
    std::vector<std::vector<int64_t>> part(seqs.begin() + static_cast<long>(s), seqs.begin() + static_cast<long>(e));
    parts.push_back(last_token_rewards(model, part, pad_id).to(torch::kCPU, torch::kFloat));
  }
  return parts.empty() ? torch::zeros({0}, torch::kFloat) : torch::cat(parts);
}

torch::Tensor next_token_logits(models::Transformer& model, const std::vector<std::vector<int64_t>>& seqs,
                                int64_t batch_size, int64_t pad_id) {
  TORCH_CHECK(batch_size >= 1, "next_token_logits: batch_size must be >= 1, got ", batch_size);
  TORCH_CHECK(model.heads().lm_head, "next_token_logits: the model has no LM head");
  torch::NoGradGuard ng;
  std::vector<torch::Tensor> parts;
  for (size_t s = 0; s < seqs.size(); s += static_cast<size_t>(batch_size)) {
    const size_t e = std::min(seqs.size(), s + static_cast<size_t>(batch_size));
    auto [ids, mask] = padded(model, seqs, s, e, pad_id);
    const auto hidden = model.forward_hidden(ids, mask);                          // [n, P, H]
    const auto last = hidden.narrow(1, hidden.size(1) - 1, 1);                    // [n, 1, H]
    parts.push_back(model.lm_logits(last).squeeze(1).to(torch::kCPU, torch::kFloat));  // [n, V]
  }
  return parts.empty() ? torch::zeros({0, model.config().vocab_size}, torch::kFloat) : torch::cat(parts);
}

}  // namespace keel::rewards
