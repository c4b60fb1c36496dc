// The paged, continuously batched rollout engine. See rollout_engine.h.
#include "models/rollout_engine.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <deque>
#include <limits>
#include <set>
#include <unordered_map>

#include <torch/torch.h>

#include "base/checksum.h"
#include "base/error.h"
#include "models/compat.h"
#include "models/fused_cpu.h"
#include "models/paged_kv.h"

namespace keel::models {

void EngineStats::add(const EngineStats& o) {
  prefill_tokens += o.prefill_tokens;
  reused_tokens += o.reused_tokens;
  decode_tokens += o.decode_tokens;
  decode_steps += o.decode_steps;
  preemptions += o.preemptions;
  pool_blocks = std::max(pool_blocks, o.pool_blocks);
  peak_blocks = std::max(peak_blocks, o.peak_blocks);
  block_bytes = std::max(block_bytes, o.block_bytes);
  peak_prefill_cache_bytes = std::max(peak_prefill_cache_bytes, o.peak_prefill_cache_bytes);
  prefill_seconds += o.prefill_seconds;
  decode_seconds += o.decode_seconds;
  sample_seconds += o.sample_seconds;
}

int64_t dense_kv_bytes(const Transformer& model, int64_t n, int64_t capacity) {
  const auto& c = model.config();
  return 2 * c.num_hidden_layers * n * c.num_key_value_heads * capacity * c.head_dim *
         static_cast<int64_t>(c10::elementSize(model.dtype()));
}

namespace {

/// One row of the output in flight.
struct Sequence : PagedSeq {
  int64_t row = 0;
  int64_t group = 0;
  int64_t limit = 0;               // its max_new_tokens
  std::vector<float> logprobs;     // of the sampled tokens
  FinishReason reason = FinishReason::kLength;
  bool preempted = false;
  bool admitted = false;           // counted off its group's pending rows
};

/// The prompt shared by identical rows: prefilled once, its blocks held until every row of the
/// group has been admitted.
struct Group {
  const std::vector<int64_t>* prompt = nullptr;
  int64_t pending = 0;  // rows not yet admitted
  std::vector<int32_t> blocks;
  at::Tensor logits;    // [V] after the prompt
  bool prefilling = false;  // a row of it waits in the batch being prefilled
};


}  // namespace

at::Tensor paged_attention_reference(const at::Tensor& q, const at::Tensor& k_pool, const at::Tensor& v_pool,
                                     const std::vector<const std::vector<int32_t>*>& tables,
                                     const std::vector<int64_t>& lengths, int64_t window) {
  const int64_t a = q.size(0), hq = q.size(1), d = q.size(2), hkv = k_pool.size(1), bs = k_pool.size(2);
  int64_t max_blocks = 1;
  for (int64_t r = 0; r < a; ++r) max_blocks = std::max(max_blocks, (lengths[static_cast<size_t>(r)] + bs - 1) / bs);
  auto table = torch::zeros({a, max_blocks}, torch::kLong);
  auto ta = table.accessor<int64_t, 2>();
  for (int64_t r = 0; r < a; ++r) {
    const auto& t = *tables[static_cast<size_t>(r)];
    const int64_t nb = (lengths[static_cast<size_t>(r)] + bs - 1) / bs;
    for (int64_t j = 0; j < nb; ++j) ta[r][j] = t[static_cast<size_t>(j)];
  }
  table = table.to(q.device());
  const int64_t s = max_blocks * bs;
  // [A * max_blocks, Hkv, bs, D] -> [A, Hkv, S, D]
  const auto gather = [&](const at::Tensor& pool) {
    return pool.index_select(0, table.flatten()).view({a, max_blocks, hkv, bs, d}).permute({0, 2, 1, 3, 4}).reshape({a, hkv, s, d});
  };
  auto k = gather(k_pool), v = gather(v_pool);
  const int64_t rep = hq / hkv;
  if (rep > 1) {
    k = k.unsqueeze(2).expand({a, hkv, rep, s, d}).reshape({a, hq, s, d});
    v = v.unsqueeze(2).expand({a, hkv, rep, s, d}).reshape({a, hq, s, d});
  }
  auto len = torch::tensor(lengths, torch::kLong).to(q.device()).unsqueeze(1);  // [A, 1]
  auto key = torch::arange(s, torch::TensorOptions().dtype(torch::kLong).device(q.device())).unsqueeze(0);
  auto allowed = key < len;
  if (window > 0) allowed = allowed.logical_and(key >= len - window);
  auto mask = torch::zeros({a, 1, 1, s}, q.options())
                  .masked_fill(allowed.logical_not().view({a, 1, 1, s}), -std::numeric_limits<double>::infinity());
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  auto out = compat::scaled_dot_product_attention(q.to(k.scalar_type()).unsqueeze(2), k, v, mask, /*is_causal=*/false,
                                                  scale);
  return out.squeeze(2);  // [A, Hq, D]
}

at::Tensor paged_attention(const at::Tensor& q, const at::Tensor& k_pool, const at::Tensor& v_pool,
                           const std::vector<const std::vector<int32_t>*>& tables, const std::vector<int64_t>& lengths,
                           int64_t window) {
  TORCH_CHECK(q.dim() == 3 && k_pool.dim() == 4 && v_pool.sizes() == k_pool.sizes() && q.size(2) == k_pool.size(3) &&
                  q.size(1) % k_pool.size(1) == 0,
              "paged_attention: q [A, Hq, D] ", q.sizes(), " and pools [blocks, Hkv, block_size, D] ", k_pool.sizes());
  TORCH_CHECK(static_cast<int64_t>(tables.size()) == q.size(0) && static_cast<int64_t>(lengths.size()) == q.size(0),
              "paged_attention: one block table and length per row");
  const auto qc = q.contiguous();
  if (!(fused_cpu_tensor(qc) && fused_cpu_tensor(k_pool) && fused_cpu_tensor(v_pool)) ||
      compat::TwiceDifferentiableAttention::active())
    return paged_attention_reference(q, k_pool, v_pool, tables, lengths, window);
  const int64_t a = q.size(0), hq = q.size(1), d = q.size(2), hkv = k_pool.size(1), bs = k_pool.size(2);
  const int64_t rep = hq / hkv;
  auto out = torch::empty({a, hq, d}, q.options());
  const float *qp = qc.data_ptr<float>(), *kp = k_pool.data_ptr<float>(), *vp = v_pool.data_ptr<float>();
  float* op = out.data_ptr<float>();
  const int64_t block_stride = hkv * bs * d;
  const auto scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(d)));
  int64_t longest = 1;
  for (auto l : lengths) longest = std::max(longest, l);
  // One (row, key/value head) per unit: its rep query heads against that head's keys.
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 16) / std::max<int64_t>(1, 2 * rep * longest * d));
  parallel_for(0, a * hkv, grain, [&](int64_t begin, int64_t end) {
    std::vector<float> scores(static_cast<size_t>(longest));
    for (int64_t u = begin; u < end; ++u) {
      const int64_t r = u / hkv, g = u % hkv;
      const int64_t s = lengths[static_cast<size_t>(r)];
      const int64_t first = window > 0 ? std::max<int64_t>(0, s - window) : 0;
      kernels::paged_attention_rows(qp + (r * hq + g * rep) * d, rep, kp + g * bs * d, vp + g * bs * d, block_stride,
                                    tables[static_cast<size_t>(r)]->data(), bs, first, s, d, scale,
                                    op + (r * hq + g * rep) * d, scores.data());
    }
  });
  return out;
}

namespace {

class Engine {
 public:
  Engine(Transformer& model, const std::vector<std::vector<int64_t>>& prompts, const SamplingOptions& opts,
         const EngineOptions& eo, EngineStats& stats)
      : opts_(opts), eo_(eo), stats_(stats),
        kv_(model, pool_blocks(prompts, opts, eo), eo.block_size, eo.prefix_cache, stats) {
    greedy_ = opts.greedy || opts.temperature <= 0;
    const auto& eos = opts.eos_token_ids.empty() ? model.config().eos_token_ids : opts.eos_token_ids;
    eos_.insert(eos.begin(), eos.end());
    stop_.insert(opts.stop_token_ids.begin(), opts.stop_token_ids.end());
  }

  static int64_t pool_blocks(const std::vector<std::vector<int64_t>>& prompts, const SamplingOptions& opts,
                             const EngineOptions& eo) {
    if (eo.num_blocks > 0) return eo.num_blocks;
    size_t p = 1;
    for (const auto& x : prompts) p = std::max(p, x.size());
    const auto limits = row_limits(opts, static_cast<int64_t>(prompts.size()));
    const int64_t max_new = *std::max_element(limits.begin(), limits.end());
    const int64_t rows = std::min<int64_t>(eo.max_batch, static_cast<int64_t>(prompts.size()));
    return std::max<int64_t>(1, rows) * ((static_cast<int64_t>(p) + max_new + eo.block_size - 1) / eo.block_size);
  }

  GenerateOutput run(const std::vector<std::vector<int64_t>>& prompts) {
    const auto n = static_cast<int64_t>(prompts.size());
    const auto limits = row_limits(opts_, n);
    // Identical prompts form one group (the samples of a prompt need not be adjacent).
    std::unordered_map<uint64_t, std::vector<int64_t>> by_hash;
    std::vector<int64_t> group_of(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      const auto& p = prompts[static_cast<size_t>(i)];
      const uint64_t h = checksum::xxh64(p.data(), p.size() * sizeof(int64_t));
      int64_t g = -1;
      for (int64_t cand : by_hash[h])
        if (*groups_[static_cast<size_t>(cand)].prompt == p) g = cand;
      if (g < 0) {
        g = static_cast<int64_t>(groups_.size());
        groups_.push_back(Group{&p, 0, {}, {}, false});
        by_hash[h].push_back(g);
      }
      group_of[static_cast<size_t>(i)] = g;
    }
    done_.resize(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      auto& s = done_[static_cast<size_t>(i)];
      s.row = i;
      s.group = group_of[static_cast<size_t>(i)];
      s.limit = limits[static_cast<size_t>(i)];
      s.tokens = prompts[static_cast<size_t>(i)];
      s.prompt_len = static_cast<int64_t>(s.tokens.size());
      gens_.push_back(row_generator(opts_.seed, opts_.first_row + i));
      if (s.limit > 0) {
        queue_.push_back(i);
        ++groups_[static_cast<size_t>(s.group)].pending;
      }
    }
    while (!queue_.empty() || !active_.empty()) {
      admit();
      TORCH_CHECK(!active_.empty(), "rollout engine: the KV pool (", kv_.pool().size(), " blocks of ",
                  kv_.pool().block_size(), " tokens) cannot hold one sequence of ",
                  done_[static_cast<size_t>(queue_.front())].tokens.size(),
                  " tokens; raise the pool size (rollout.kv_blocks)");
      auto t0 = std::chrono::steady_clock::now();
      sample_and_retire();
      auto t1 = std::chrono::steady_clock::now();
      if (!active_.empty()) decode_step();
      stats_.sample_seconds += std::chrono::duration<double>(t1 - t0).count();
      stats_.decode_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
    }
    return assemble(prompts);
  }

 private:
  Sequence& seq(int64_t i) { return done_[static_cast<size_t>(i)]; }

  /// Fills free slots from the queue while the pool has room. Another sample of a prefilled
  /// prompt shares its blocks; the other rows are prefilled together (PagedKV::prefill), except
  /// that a row whose prompt, or whose next full block, is being computed by a row already in the
  /// batch waits for that batch and then shares or finds those blocks in the prefix cache.
  void admit() {
    auto& pool = kv_.pool();
    const int64_t bs = pool.block_size();
    for (;;) {
      std::vector<int64_t> batch, deferred;  // batch: rows to prefill, their prefix-cache hits held
      std::set<uint64_t> computing;          // chain hashes of the full prompt blocks the batch computes
      int64_t batch_blocks = 0;              // blocks the batch still needs
      while (!queue_.empty() &&
             static_cast<int64_t>(active_.size() + batch.size() + deferred.size()) < eo_.max_batch) {
        const int64_t i = queue_.front();
        auto& s = seq(i);
        auto& g = groups_[static_cast<size_t>(s.group)];
        if (!s.preempted && g.logits.defined()) {
          // Another sample of a prefilled prompt: share its blocks (copy-on-write at the first write).
          s.blocks = g.blocks;
          for (int32_t b : s.blocks) pool.retain(b);
          s.cached = s.prompt_len;
          s.logits = g.logits;
          stats_.reused_tokens += s.prompt_len;
          queue_.pop_front();
          activate(i);
          continue;
        }
        if (!s.preempted && g.prefilling) {
          deferred.push_back(i);
          queue_.pop_front();
          continue;
        }
        const int64_t need = kv_.lookup_prefix(s);
        const auto n = static_cast<int64_t>(s.tokens.size());
        const int64_t hit = static_cast<int64_t>(s.blocks.size());
        if (kv_.prefix_cache() && (hit + 1) * bs <= std::min(n - 1, s.prompt_len) &&
            computing.count(BlockPool::chain_hash(s.parent, s.tokens.data() + hit * bs, bs)) != 0) {
          kv_.release(s);
          deferred.push_back(i);
          queue_.pop_front();
          continue;
        }
        if (!pool.can_allocate(batch_blocks + need)) {  // no room now: wait for rows to finish
          kv_.release(s);
          break;
        }
        if (kv_.prefix_cache()) {
          uint64_t h = s.parent;
          for (int64_t j = hit; (j + 1) * bs <= std::min(n, s.prompt_len); ++j)
            computing.insert(h = BlockPool::chain_hash(h, s.tokens.data() + j * bs, bs));
        }
        batch_blocks += need;
        batch.push_back(i);
        queue_.pop_front();
        if (!s.preempted) g.prefilling = true;
      }
      const bool progress = !batch.empty();
      prefill(batch);
      for (auto it = deferred.rbegin(); it != deferred.rend(); ++it) queue_.push_front(*it);
      if (deferred.empty() || !progress) return;
    }
  }

  /// Prefills `rows` and activates them; a row the pool cannot take after all goes back to the
  /// front of the queue, holding nothing.
  void prefill(const std::vector<int64_t>& rows) {
    std::vector<PagedSeq*> ptrs;
    for (int64_t i : rows) ptrs.push_back(&seq(i));
    const auto refused = kv_.prefill(ptrs, opts_.pad_token_id);
    for (int64_t i : rows) {
      auto& s = seq(i);
      if (std::find(refused.begin(), refused.end(), &s) == refused.end()) {
        activate(i);
        continue;
      }
      kv_.release(s);
      if (!s.preempted) groups_[static_cast<size_t>(s.group)].prefilling = false;
      queue_.push_front(i);
    }
  }

  /// Takes row i into the batch once its next token's logits are in s.logits: the first sample of a
  /// prompt with more to come lends the group its blocks, the last one admitted releases them.
  void activate(int64_t i) {
    auto& pool = kv_.pool();
    auto& s = seq(i);
    auto& g = groups_[static_cast<size_t>(s.group)];
    if (!s.admitted) {
      s.admitted = true;
      --g.pending;
    }
    if (g.pending > 0 && !g.logits.defined() && s.cached == s.prompt_len) {
      g.blocks = s.blocks;
      for (int32_t b : g.blocks) pool.retain(b);
      g.logits = s.logits;
    }
    if (g.pending == 0) {
      pool.release_all(g.blocks);
      g.logits = at::Tensor();
    }
    if (!s.preempted) g.prefilling = false;
    s.preempted = false;
    active_.push_back(i);
  }

  /// Samples the next token of every active row from its logits; retires the rows that stop.
  void sample_and_retire() {
    const auto a = static_cast<int64_t>(active_.size());
    // Rows that decoded come first in active_ (in step_logits_'s order), rows just admitted after.
    int64_t admitted = 0;
    for (int64_t i : active_) admitted += seq(i).logits.defined() ? 1 : 0;
    at::Tensor logits;  // [A, V]
    if (admitted == 0) {
      logits = step_logits_;
    } else {
      std::vector<at::Tensor> rows;
      rows.reserve(static_cast<size_t>(a));
      int64_t from_step = 0;
      for (int64_t i : active_) {
        auto& s = seq(i);
        rows.push_back(s.logits.defined() ? s.logits.unsqueeze(0) : step_logits_.narrow(0, from_step++, 1));
      }
      logits = torch::cat(rows, 0);
    }
    auto u = torch::empty({a}, torch::kDouble);
    if (!greedy_) {
      auto ua = u.accessor<double, 1>();
      for (int64_t r = 0; r < a; ++r) ua[r] = next_uniform(gens_[static_cast<size_t>(active_[static_cast<size_t>(r)])]);
    }
    auto tok = sample_tokens(logits, u, opts_);
    auto lp = sampled_logprobs(logits, tok, opts_);
    tok = tok.to(torch::kCPU);
    lp = lp.to(torch::kCPU);
    const auto ta = tok.accessor<int64_t, 1>();
    const auto la = lp.accessor<float, 1>();
    std::vector<int64_t> still;
    for (int64_t r = 0; r < a; ++r) {
      const int64_t i = active_[static_cast<size_t>(r)];
      auto& s = seq(i);
      s.logits = at::Tensor();
      s.tokens.push_back(ta[r]);
      s.logprobs.push_back(la[r]);
      bool end = true;
      if (eos_.count(ta[r]) != 0) s.reason = FinishReason::kEos;
      else if (stop_.count(ta[r]) != 0) s.reason = FinishReason::kStopToken;
      else if (static_cast<int64_t>(s.logprobs.size()) >= s.limit) s.reason = FinishReason::kLength;
      else end = false;
      if (end) kv_.release(s);
      else still.push_back(i);
    }
    active_ = std::move(still);
  }

  /// Makes room for every active row's next key/value, preempting the most recently admitted rows
  /// while the pool is full.
  void reserve_slots() {
    for (size_t r = 0; r < active_.size(); ++r) {
      auto& s = seq(active_[r]);
      while (!kv_.reserve_slot(s)) {
        // Full: preempt the newest other row (or this one, if it is the newest).
        TORCH_CHECK(active_.size() > 1, "rollout engine: the KV pool (", kv_.pool().size(), " blocks of ",
                    kv_.pool().block_size(), " tokens) cannot hold one sequence of ", s.cached + 1,
                    " tokens; raise the pool size (rollout.kv_blocks)");
        const int64_t victim = active_.back();
        preempt(victim);
        active_.pop_back();
        if (r >= active_.size()) return;  // the victim was this row
      }
    }
  }

  void preempt(int64_t i) {
    auto& s = seq(i);
    kv_.release(s);
    s.logits = at::Tensor();
    s.preempted = true;
    queue_.push_front(i);
    ++stats_.preemptions;
  }

  /// One forward of every active row's last sampled token over the paged cache.
  void decode_step() {
    reserve_slots();
    if (active_.empty()) return;
    std::vector<PagedSeq*> rows;
    for (int64_t i : active_) rows.push_back(&seq(i));
    step_logits_ = kv_.decode(rows);
  }

  GenerateOutput assemble(const std::vector<std::vector<int64_t>>& prompts) {
    GenerateOutput out;
    std::tie(out.prompt_ids, out.prompt_mask) = left_pad(prompts, opts_.pad_token_id);
    const auto n = static_cast<int64_t>(prompts.size());
    int64_t r_max = 0;
    for (const auto& s : done_) r_max = std::max<int64_t>(r_max, static_cast<int64_t>(s.logprobs.size()));
    out.response_ids = torch::full({n, r_max}, opts_.pad_token_id, torch::kLong);
    out.response_mask = torch::zeros({n, r_max}, torch::kLong);
    out.logprobs = torch::zeros({n, r_max}, torch::kFloat);
    auto ia = out.response_ids.accessor<int64_t, 2>();
    auto ma = out.response_mask.accessor<int64_t, 2>();
    auto la = out.logprobs.accessor<float, 2>();
    for (const auto& s : done_) {
      for (size_t j = 0; j < s.logprobs.size(); ++j) {
        ia[s.row][static_cast<int64_t>(j)] = s.tokens[static_cast<size_t>(s.prompt_len) + j];
        ma[s.row][static_cast<int64_t>(j)] = 1;
        la[s.row][static_cast<int64_t>(j)] = s.logprobs[j];
      }
      out.finish_reasons.push_back(s.reason);
    }
    stats_.peak_blocks = kv_.pool().peak();
    return out;
  }

  const SamplingOptions& opts_;
  const EngineOptions& eo_;
  EngineStats& stats_;
  PagedKV kv_;
  bool greedy_ = false;
  std::set<int64_t> eos_, stop_;
  std::vector<Sequence> done_;  // every row's state, by row
  std::vector<Group> groups_;
  std::vector<at::Generator> gens_;
  std::deque<int64_t> queue_;   // rows waiting for a slot
  std::vector<int64_t> active_;  // rows decoding, in admission order
  at::Tensor step_logits_;      // [A, V] of the last decode step, rows in active_ order
};

}  // namespace

GenerateOutput generate_paged(Transformer& model, const std::vector<std::vector<int64_t>>& prompts,
                              const SamplingOptions& opts, const EngineOptions& engine, EngineStats* stats) {
  TORCH_CHECK(!prompts.empty(), "generate_paged: no prompts");
  for (size_t i = 0; i < prompts.size(); ++i) TORCH_CHECK(!prompts[i].empty(), "generate_paged: prompt ", i, " is empty");
  TORCH_CHECK(opts.max_new_tokens >= 0, "generate_paged: max_new_tokens must be >= 0");
  TORCH_CHECK(opts.top_p > 0 && opts.top_p <= 1, "generate_paged: top_p must be in (0, 1], got ", opts.top_p);
  TORCH_CHECK(opts.top_k >= 0, "generate_paged: top_k must be >= 0, got ", opts.top_k);
  TORCH_CHECK(engine.max_batch >= 1, "generate_paged: max_batch must be >= 1, got ", engine.max_batch);
  TORCH_CHECK(engine.block_size >= 1, "generate_paged: block_size must be >= 1, got ", engine.block_size);
  TORCH_CHECK(engine.num_blocks >= 0, "generate_paged: num_blocks must be >= 0, got ", engine.num_blocks);
  torch::NoGradGuard no_grad;
  EngineStats local;
  EngineStats& st = stats != nullptr ? *stats : local;
  st = EngineStats{};
  Engine e(model, prompts, opts, engine, st);
  return e.run(prompts);
}

}  // namespace keel::models
