// Multi-turn decoding with a KV cache kept across turns. See decode_session.h.
#include "models/decode_session.h"

#include <set>

#include <torch/torch.h>

#include "base/error.h"

namespace keel::models {

namespace {

at::Tensor bool_tensor(const std::vector<bool>& v, const at::Device& dev) {
  std::vector<uint8_t> bytes(v.begin(), v.end());
  return torch::tensor(bytes, torch::kUInt8).to(dev, torch::kBool);
}

}  // namespace

DecodeSession::DecodeSession(Transformer& model, const std::vector<std::vector<int64_t>>& prompts,
                             const SamplingOptions& opts, bool reuse_cache)
    : model_(model), opts_(opts), reuse_(reuse_cache), seq_(prompts) {
  TORCH_CHECK(!prompts.empty(), "DecodeSession: no prompts");
  for (size_t i = 0; i < prompts.size(); ++i) TORCH_CHECK(!prompts[i].empty(), "DecodeSession: prompt ", i, " is empty");
  TORCH_CHECK(opts.top_p > 0 && opts.top_p <= 1, "DecodeSession: top_p must be in (0, 1], got ", opts.top_p);
  TORCH_CHECK(opts.top_k >= 0, "DecodeSession: top_k must be >= 0, got ", opts.top_k);
  for (int64_t l = 0; l < model.config().num_hidden_layers; ++l)
    if (model.config().layer_uses_sliding_window(l))
      fail("multi-turn decoding: layer {} of the model uses a sliding window, which the cache's holes would "
           "distort; not supported", l);
  for (size_t i = 0; i < prompts.size(); ++i) gens_.push_back(row_generator(opts.seed, opts.first_row + static_cast<int64_t>(i)));
  prefill_all();
}

void DecodeSession::prefill_all() {
  torch::NoGradGuard ng;
  const auto dev = model_.device();
  auto [ids, mask] = left_pad(seq_, opts_.pad_token_id);
  cache_ = model_.make_cache(rows(), ids.size(1) + 16);
  mask_ = mask.to(dev);
  const auto hidden = model_.forward_hidden(ids.to(dev), mask_, {}, &cache_).select(1, -1);
  logits_ = model_.lm_logits(hidden).to(torch::kFloat);
  forwarded_ += mask.sum().item<int64_t>();
  stale_ = false;
}

void DecodeSession::ensure_capacity(int64_t extra) {
  const int64_t need = cache_.length + extra;
  if (need <= cache_.capacity()) return;
  const int64_t cap = std::max(need, cache_.capacity() * 2);
  for (auto* layers : {&cache_.k, &cache_.v})
    for (auto& t : *layers) {
      auto grown = torch::zeros({t.size(0), t.size(1), cap, t.size(3)}, t.options());
      grown.narrow(2, 0, cache_.length).copy_(t.narrow(2, 0, cache_.length));
      t = grown;
    }
}

void DecodeSession::feed(const at::Tensor& ids, const at::Tensor& new_mask, const at::Tensor& has_new) {
  const auto dev = model_.device();
  ensure_capacity(ids.size(1));
  mask_ = torch::cat({mask_, new_mask.to(dev)}, 1);
  const auto hidden = model_.forward_hidden(ids.to(dev), mask_, {}, &cache_).select(1, -1);
  const auto logits = model_.lm_logits(hidden).to(torch::kFloat);
  logits_ = torch::where(has_new.to(dev).unsqueeze(1), logits, logits_);
  forwarded_ += new_mask.sum().item<int64_t>();
}

DecodeSession::Turn DecodeSession::generate_turn(const std::vector<bool>& active, int64_t max_new_tokens) {
  TORCH_CHECK(static_cast<int64_t>(active.size()) == rows(), "generate_turn: ", active.size(), " flags for ", rows(), " rows");
  TORCH_CHECK(max_new_tokens >= 1, "generate_turn: max_new_tokens must be >= 1");
  torch::NoGradGuard ng;
  if (!reuse_ && stale_) prefill_all();  // the naive baseline: the whole conversation again
  const auto dev = model_.device();
  const int64_t n = rows();
  const bool greedy = opts_.greedy || opts_.temperature <= 0;
  const double lp_temperature = opts_.temperature > 0 ? opts_.temperature : 1.0;
  const auto& eos_list = opts_.eos_token_ids.empty() ? model_.config().eos_token_ids : opts_.eos_token_ids;
  const std::set<int64_t> eos(eos_list.begin(), eos_list.end());
  const std::set<int64_t> stop(opts_.stop_token_ids.begin(), opts_.stop_token_ids.end());

  Turn out;
  out.tokens.resize(static_cast<size_t>(n));
  out.logprobs.resize(static_cast<size_t>(n));
  out.reasons.assign(static_cast<size_t>(n), FinishReason::kLength);
  std::vector<bool> alive = active;
  for (int64_t step = 0; step < max_new_tokens; ++step) {
    bool any = false;
    for (bool a : alive) any = any || a;
    if (!any) break;
    auto u = torch::zeros({n}, torch::kDouble);
    if (!greedy) {
      auto ua = u.accessor<double, 1>();
      for (int64_t i = 0; i < n; ++i)
        if (alive[static_cast<size_t>(i)]) ua[i] = next_uniform(gens_[static_cast<size_t>(i)]);
    }
    const auto tok = sample_tokens(logits_, u, opts_).to(torch::kCPU);  // [N]
    const auto lp = torch::log_softmax(logits_ / lp_temperature, -1)
                        .gather(1, tok.to(dev).unsqueeze(1))
                        .squeeze(1)
                        .to(torch::kCPU);
    const auto ta = tok.accessor<int64_t, 1>();
    const auto la = lp.accessor<float, 1>();
    auto ids = torch::full({n, 1}, opts_.pad_token_id, torch::kLong);
    auto ia = ids.accessor<int64_t, 2>();
    const std::vector<bool> fed = alive;
    for (int64_t i = 0; i < n; ++i) {
      const auto s = static_cast<size_t>(i);
      if (!alive[s]) continue;
      out.tokens[s].push_back(ta[i]);
      out.logprobs[s].push_back(la[i]);
      seq_[s].push_back(ta[i]);
      ia[i][0] = ta[i];
      if (eos.count(ta[i])) alive[s] = false, out.reasons[s] = FinishReason::kEos;
      else if (stop.count(ta[i])) alive[s] = false, out.reasons[s] = FinishReason::kStopToken;
    }
    const auto fed_t = bool_tensor(fed, torch::kCPU);
    feed(ids, fed_t.to(torch::kLong).unsqueeze(1), fed_t);
  }
  return out;
}

void DecodeSession::append(const std::vector<std::vector<int64_t>>& tokens) {
  TORCH_CHECK(static_cast<int64_t>(tokens.size()) == rows(), "append: ", tokens.size(), " lists for ", rows(), " rows");
  size_t width = 0;
  for (size_t i = 0; i < tokens.size(); ++i) {
    width = std::max(width, tokens[i].size());
    seq_[i].insert(seq_[i].end(), tokens[i].begin(), tokens[i].end());
  }
  if (width == 0) return;
  if (!reuse_) {
    stale_ = true;  // recomputed with the whole conversation at the next turn
    return;
  }
  torch::NoGradGuard ng;
  const int64_t n = rows(), w = static_cast<int64_t>(width);
  auto ids = torch::full({n, w}, opts_.pad_token_id, torch::kLong);
  auto mask = torch::zeros({n, w}, torch::kLong);
  std::vector<bool> has(static_cast<size_t>(n), false);
  auto ia = ids.accessor<int64_t, 2>();
  auto ma = mask.accessor<int64_t, 2>();
  for (int64_t i = 0; i < n; ++i) {
    const auto& row = tokens[static_cast<size_t>(i)];
    const int64_t off = w - static_cast<int64_t>(row.size());  // right-aligned: the last column is the newest token
    for (size_t j = 0; j < row.size(); ++j) {
      ia[i][off + static_cast<int64_t>(j)] = row[j];
      ma[i][off + static_cast<int64_t>(j)] = 1;
    }
    has[static_cast<size_t>(i)] = !row.empty();
  }
  feed(ids, mask, bool_tensor(has, torch::kCPU));
}

}  // namespace keel::models
