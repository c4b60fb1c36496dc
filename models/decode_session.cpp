// Multi-turn decoding over the paged KV cache, kept across turns. See decode_session.h.
#include "models/decode_session.h"

#include <algorithm>
#include <map>
#include <set>

#include <torch/torch.h>

#include "models/paged_kv.h"

namespace keel::models {

struct DecodeSession::Paged {
  Paged(Transformer& model, int64_t blocks, int64_t block_size)
      : kv(model, blocks, block_size, /*prefix_cache=*/false, stats) {}
  EngineStats stats;  // (declared before kv, which keeps a reference)
  PagedKV kv;
  std::vector<PagedSeq> rows;
  std::vector<at::Tensor> next;  // [N] each row's next-token logits [V] fp32 (undefined: none yet)
};

DecodeSession::DecodeSession(Transformer& model, const std::vector<std::vector<int64_t>>& prompts,
                             const SamplingOptions& opts, bool reuse_cache, int64_t block_size)
    : model_(model), opts_(opts), reuse_(reuse_cache) {
  TORCH_CHECK(!prompts.empty(), "DecodeSession: no prompts");
  for (size_t i = 0; i < prompts.size(); ++i) TORCH_CHECK(!prompts[i].empty(), "DecodeSession: prompt ", i, " is empty");
  TORCH_CHECK(opts.top_p > 0 && opts.top_p <= 1, "DecodeSession: top_p must be in (0, 1], got ", opts.top_p);
  TORCH_CHECK(opts.top_k >= 0, "DecodeSession: top_k must be >= 0, got ", opts.top_k);
  TORCH_CHECK(block_size >= 1, "DecodeSession: block_size must be >= 1, got ", block_size);
  // A first pool for the prompts and a few blocks of each row's turns; it doubles when full.
  int64_t blocks = 0;
  for (const auto& p : prompts) blocks += (static_cast<int64_t>(p.size()) + block_size - 1) / block_size + 2;
  torch::NoGradGuard ng;
  p_ = std::make_unique<Paged>(model, blocks, block_size);
  p_->rows.resize(prompts.size());
  p_->next.resize(prompts.size());
  for (size_t i = 0; i < prompts.size(); ++i) {
    p_->rows[i].tokens = prompts[i];
    p_->rows[i].prompt_len = static_cast<int64_t>(prompts[i].size());
    gens_.push_back(row_generator(opts.seed, opts.first_row + static_cast<int64_t>(i)));
  }
  // Identical prompts prefill once: the first row of each computes, the others share its blocks.
  std::map<std::vector<int64_t>, size_t> first;
  std::vector<size_t> compute, copies;
  for (size_t i = 0; i < prompts.size(); ++i)
    if (first.emplace(prompts[i], i).second) compute.push_back(i);
    else copies.push_back(i);
  prefill(compute);
  for (size_t i : copies) {
    const auto& src = p_->rows[first.at(prompts[i])];
    auto& row = p_->rows[i];
    row.blocks = src.blocks;
    for (int32_t b : row.blocks) p_->kv.pool().retain(b);
    row.cached = src.cached;
    p_->next[i] = p_->next[first.at(prompts[i])];
    p_->stats.reused_tokens += row.cached;
  }
}

DecodeSession::~DecodeSession() = default;

int64_t DecodeSession::rows() const { return static_cast<int64_t>(p_->rows.size()); }
const std::vector<int64_t>& DecodeSession::sequence(int64_t i) const { return p_->rows[static_cast<size_t>(i)].tokens; }
int64_t DecodeSession::forwarded_tokens() const { return p_->stats.prefill_tokens + p_->stats.decode_tokens; }
const EngineStats& DecodeSession::stats() const {
  p_->stats.peak_blocks = p_->kv.pool().peak();
  return p_->stats;
}

void DecodeSession::prefill(const std::vector<size_t>& rows) {
  std::vector<PagedSeq*> todo;
  for (size_t i : rows) todo.push_back(&p_->rows[i]);
  while (!todo.empty()) {
    todo = p_->kv.prefill(todo, opts_.pad_token_id);
    if (!todo.empty()) p_->kv.pool().grow(2 * p_->kv.pool().size());  // a session is never preempted: grow
  }
  for (size_t i : rows) {
    p_->next[i] = p_->rows[i].logits;
    p_->rows[i].logits = at::Tensor();
  }
}

void DecodeSession::recompute_all() {
  std::vector<size_t> all;
  for (size_t i = 0; i < p_->rows.size(); ++i) {
    p_->kv.release(p_->rows[i]);
    all.push_back(i);
  }
  prefill(all);
  stale_ = false;
}

DecodeSession::Turn DecodeSession::generate_turn(const std::vector<bool>& active, int64_t max_new_tokens) {
  TORCH_CHECK(static_cast<int64_t>(active.size()) == rows(), "generate_turn: ", active.size(), " flags for ", rows(), " rows");
  TORCH_CHECK(max_new_tokens >= 1, "generate_turn: max_new_tokens must be >= 1");
  torch::NoGradGuard ng;
  if (!reuse_ && stale_) recompute_all();  // the naive baseline: the whole conversation again
  const auto n = static_cast<size_t>(rows());
  const bool greedy = opts_.greedy || opts_.temperature <= 0;
  const auto& eos_list = opts_.eos_token_ids.empty() ? model_.config().eos_token_ids : opts_.eos_token_ids;
  const std::set<int64_t> eos(eos_list.begin(), eos_list.end());
  const std::set<int64_t> stop(opts_.stop_token_ids.begin(), opts_.stop_token_ids.end());

  Turn out;
  out.tokens.resize(n);
  out.logprobs.resize(n);
  out.reasons.assign(n, FinishReason::kLength);
  std::vector<bool> alive = active;
  for (int64_t step = 0; step < max_new_tokens; ++step) {
    std::vector<size_t> live;
    for (size_t i = 0; i < n; ++i)
      if (alive[i]) live.push_back(i);
    if (live.empty()) break;
    std::vector<at::Tensor> rows_logits;
    for (size_t i : live) rows_logits.push_back(p_->next[i]);
    const auto logits = torch::stack(rows_logits);  // [A, V]
    const auto a = static_cast<int64_t>(live.size());
    auto u = torch::zeros({a}, torch::kDouble);
    if (!greedy) {
      auto ua = u.accessor<double, 1>();
      for (int64_t r = 0; r < a; ++r) ua[r] = next_uniform(gens_[live[static_cast<size_t>(r)]]);
    }
    const auto tok = sample_tokens(logits, u, opts_);
    const auto lp = sampled_logprobs(logits, tok, opts_).to(torch::kCPU);
    const auto tok_cpu = tok.to(torch::kCPU);
    const auto ta = tok_cpu.accessor<int64_t, 1>();
    const auto la = lp.accessor<float, 1>();
    std::vector<PagedSeq*> fed;
    for (int64_t r = 0; r < a; ++r) {
      const size_t i = live[static_cast<size_t>(r)];
      out.tokens[i].push_back(ta[r]);
      out.logprobs[i].push_back(la[r]);
      auto& row = p_->rows[i];
      row.tokens.push_back(ta[r]);
      if (eos.count(ta[r])) alive[i] = false, out.reasons[i] = FinishReason::kEos;
      else if (stop.count(ta[r])) alive[i] = false, out.reasons[i] = FinishReason::kStopToken;
      fed.push_back(&row);
    }
    for (auto* row : fed)
      while (!p_->kv.reserve_slot(*row)) p_->kv.pool().grow(2 * p_->kv.pool().size());
    const auto next = p_->kv.decode(fed);  // [A, V]
    for (int64_t r = 0; r < a; ++r) p_->next[live[static_cast<size_t>(r)]] = next[r];
  }
  return out;
}

void DecodeSession::append(const std::vector<std::vector<int64_t>>& tokens) {
  TORCH_CHECK(static_cast<int64_t>(tokens.size()) == rows(), "append: ", tokens.size(), " lists for ", rows(), " rows");
  std::vector<size_t> extended;
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i].empty()) continue;
    auto& row = p_->rows[i];
    row.tokens.insert(row.tokens.end(), tokens[i].begin(), tokens[i].end());
    extended.push_back(i);
  }
  if (extended.empty()) return;
  if (!reuse_) {
    stale_ = true;  // recomputed with the whole conversation at the next turn
    return;
  }
  torch::NoGradGuard ng;
  prefill(extended);
}

}  // namespace keel::models
