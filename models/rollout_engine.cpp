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
#include "models/transformer_impl.h"

namespace keel::models {

int64_t dense_kv_bytes(const Transformer& model, int64_t n, int64_t capacity) {
  const auto& c = model.config();
  return 2 * c.num_hidden_layers * n * c.num_key_value_heads * capacity * c.head_dim *
         static_cast<int64_t>(c10::elementSize(model.dtype()));
}

namespace {

constexpr int32_t kNoBlock = -1;
/// Most cache slots (rows x padded length) of one prefill forward: big enough for efficient
/// matmuls, small enough that the transient dense cache stays a fraction of the pool.
constexpr int64_t kPrefillTokens = 2048;

/// The KV blocks of every layer: k[l], v[l] [num_blocks, Hkv, block_size, D], reference counts, a
/// free list, and the prefix cache (full blocks found by the chain hash of their tokens).
/// Free blocks are handed out lowest id first and freed ones reused first, so the blocks ever
/// written are ids 0 .. peak - 1: the pool is allocated uninitialised (on CPU the pages of blocks
/// never used are never touched) and its real footprint is the peak, which stats report.
class BlockPool {
 public:
  BlockPool(const Transformer& model, int64_t num_blocks, int64_t block_size) : bs_(block_size) {
    const auto& c = model.config();
    const auto opts = torch::TensorOptions().dtype(model.dtype()).device(model.device());
    const std::vector<int64_t> shape = {num_blocks, c.num_key_value_heads, block_size, c.head_dim};
    for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
      if (opts.device().is_cpu()) {  // blocks are read in scattered pieces: 2 MiB pages
        k.push_back(empty_on_huge_pages(shape, model.dtype()));
        v.push_back(empty_on_huge_pages(shape, model.dtype()));
      } else {
        k.push_back(torch::empty(shape, opts));
        v.push_back(torch::empty(shape, opts));
      }
    }
    refs_.assign(static_cast<size_t>(num_blocks), 0);
    hash_.assign(static_cast<size_t>(num_blocks), 0);
    for (int64_t b = num_blocks - 1; b >= 0; --b) free_.push_back(static_cast<int32_t>(b));
  }

  int64_t block_size() const { return bs_; }
  int64_t size() const { return static_cast<int64_t>(refs_.size()); }
  int64_t used() const { return size() - static_cast<int64_t>(free_.size()); }
  int64_t peak() const { return peak_; }

  /// A block with one reference, or kNoBlock when none is free and no cached block can be evicted.
  int32_t allocate() {
    if (free_.empty()) evict_one();
    if (free_.empty()) return kNoBlock;
    const int32_t b = free_.back();
    free_.pop_back();
    refs_[static_cast<size_t>(b)] = 1;
    peak_ = std::max(peak_, used());
    return b;
  }
  /// Whether `n` blocks could be allocated now (free ones plus evictable cached ones).
  bool can_allocate(int64_t n) const {
    int64_t avail = static_cast<int64_t>(free_.size());
    for (int32_t b : cached_)
      if (avail >= n) break;
      else if (refs_[static_cast<size_t>(b)] == 1) ++avail;
    return avail >= n;
  }
  void retain(int32_t b) { ++refs_[static_cast<size_t>(b)]; }
  void release(int32_t b) {
    auto& r = refs_[static_cast<size_t>(b)];
    TORCH_INTERNAL_ASSERT(r > 0, "rollout engine: block ", b, " released twice");
    if (--r == 0) free_.push_back(b);
  }
  void release_all(std::vector<int32_t>& blocks) {
    for (int32_t b : blocks) release(b);
    blocks.clear();
  }
  int32_t refs(int32_t b) const { return refs_[static_cast<size_t>(b)]; }

  /// Copy-on-write: a private copy of `b` (keys and values of every layer), one reference moved to
  /// it; kNoBlock when the pool is full.
  int32_t copy_for_write(int32_t b) {
    const int32_t c = allocate();
    if (c == kNoBlock) return c;
    for (size_t l = 0; l < k.size(); ++l) {
      k[l][c].copy_(k[l][b]);
      v[l][c].copy_(v[l][b]);
    }
    release(b);
    return c;
  }

  // ---- prefix cache ----
  /// Chain hash of a full block: its tokens, seeded with the hash of the blocks before it.
  static uint64_t chain_hash(uint64_t parent, const int64_t* tokens, int64_t n) {
    return checksum::xxh64(tokens, static_cast<size_t>(n) * sizeof(int64_t), parent ^ 0x6b65656c70726678ull) | 1ull;
  }
  /// The cached block holding `tokens` after the chain `parent`, retained; kNoBlock if none.
  int32_t lookup(uint64_t h, uint64_t parent, const int64_t* tokens) {
    auto it = by_hash_.find(h);
    if (it == by_hash_.end()) return kNoBlock;
    const auto& e = entries_[it->second];
    if (e.parent != parent || !std::equal(e.tokens.begin(), e.tokens.end(), tokens)) return kNoBlock;
    retain(it->second);
    return it->second;
  }
  /// Registers full block `b` (the cache takes a reference, released on eviction).
  void insert(int32_t b, uint64_t h, uint64_t parent, const int64_t* tokens) {
    if (by_hash_.count(h) != 0 || hash_[static_cast<size_t>(b)] != 0) return;
    by_hash_[h] = b;
    hash_[static_cast<size_t>(b)] = h;
    entries_[b] = Entry{parent, std::vector<int64_t>(tokens, tokens + bs_)};
    retain(b);
    cached_.push_back(b);
  }

  std::vector<at::Tensor> k, v;  // per layer [num_blocks, Hkv, block_size, D]

 private:
  struct Entry {
    uint64_t parent;
    std::vector<int64_t> tokens;
  };
  /// Drops the oldest cached block that only the cache holds.
  void evict_one() {
    for (auto it = cached_.begin(); it != cached_.end(); ++it) {
      const int32_t b = *it;
      if (refs_[static_cast<size_t>(b)] != 1) continue;
      by_hash_.erase(hash_[static_cast<size_t>(b)]);
      entries_.erase(b);
      hash_[static_cast<size_t>(b)] = 0;
      cached_.erase(it);
      release(b);
      return;
    }
  }

  int64_t bs_;
  int64_t peak_ = 0;
  std::vector<int32_t> refs_;
  std::vector<uint64_t> hash_;  // 0 = not in the prefix cache
  std::vector<int32_t> free_;   // a stack: back() is handed out next
  std::deque<int32_t> cached_;  // prefix-cache blocks, oldest first
  std::unordered_map<uint64_t, int32_t> by_hash_;
  std::unordered_map<int32_t, Entry> entries_;
};

/// One row of the output in flight.
struct Sequence {
  int64_t row = 0;
  int64_t group = 0;
  int64_t limit = 0;               // its max_new_tokens
  std::vector<int64_t> tokens;     // prompt, then every sampled token
  int64_t prompt_len = 0;
  std::vector<float> logprobs;     // of the sampled tokens
  std::vector<int32_t> blocks;     // block table
  int64_t cached = 0;              // tokens whose keys/values are in the blocks
  at::Tensor logits;               // [V] fp32: the next token's, when it has them from a prefill
  FinishReason reason = FinishReason::kLength;
  bool preempted = false;
  bool admitted = false;           // counted off its group's pending rows
  uint64_t parent = 0;             // prefix-cache chain hash of its held full blocks
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

bool paged_fast_path(const at::Tensor& t) { return t.device().is_cpu() && t.scalar_type() == at::kFloat; }

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
  if (!(paged_fast_path(q) && paged_fast_path(k_pool) && k_pool.is_contiguous() && v_pool.is_contiguous()) ||
      compat::TwiceDifferentiableAttention::active())
    return paged_attention_reference(q, k_pool, v_pool, tables, lengths, window);
  const int64_t a = q.size(0), hq = q.size(1), d = q.size(2), hkv = k_pool.size(1), bs = k_pool.size(2);
  const int64_t rep = hq / hkv;
  const auto qc = q.contiguous();
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
      : model_(model), m_(*model.impl()), cfg_(model.config()), opts_(opts), eo_(eo), stats_(stats),
        pool_(model, pool_blocks(model, prompts, opts, eo), eo.block_size) {
    greedy_ = opts.greedy || opts.temperature <= 0;
    lp_temperature_ = opts.temperature > 0 ? opts.temperature : 1.0;
    const auto& eos = opts.eos_token_ids.empty() ? cfg_.eos_token_ids : opts.eos_token_ids;
    eos_.insert(eos.begin(), eos.end());
    stop_.insert(opts.stop_token_ids.begin(), opts.stop_token_ids.end());
    stats_.pool_blocks = pool_.size();
    stats_.block_bytes = dense_kv_bytes(model, 1, eo.block_size);
  }

  static int64_t pool_blocks(const Transformer& model, const std::vector<std::vector<int64_t>>& prompts,
                             const SamplingOptions& opts, const EngineOptions& eo) {
    (void)model;
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
      TORCH_CHECK(!active_.empty(), "rollout engine: the KV pool (", pool_.size(), " blocks of ", pool_.block_size(),
                  " tokens) cannot hold one sequence of ", done_[static_cast<size_t>(queue_.front())].tokens.size(),
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
  /// prompt shares its blocks; the other rows are prefilled together (prefill_rows), except that
  /// a row whose prompt, or whose next full block, is being computed by a row already in the batch
  /// waits for that batch and then shares or finds those blocks in the prefix cache.
  void admit() {
    for (;;) {
      std::vector<int64_t> batch, deferred;  // batch: rows to prefill, their prefix-cache hits held
      std::set<uint64_t> computing;          // chain hashes of the full prompt blocks the batch computes
      int64_t batch_blocks = 0;              // blocks the batch still needs
      const int64_t bs = pool_.block_size();
      while (!queue_.empty() &&
             static_cast<int64_t>(active_.size() + batch.size() + deferred.size()) < eo_.max_batch) {
        const int64_t i = queue_.front();
        auto& s = seq(i);
        auto& g = groups_[static_cast<size_t>(s.group)];
        if (!s.preempted && g.logits.defined()) {
          // Another sample of a prefilled prompt: share its blocks (copy-on-write at the first write).
          s.blocks = g.blocks;
          for (int32_t b : s.blocks) pool_.retain(b);
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
        const int64_t need = lookup_prefix(s);
        const auto n = static_cast<int64_t>(s.tokens.size());
        const int64_t hit = static_cast<int64_t>(s.blocks.size());
        if (eo_.prefix_cache && (hit + 1) * bs <= n - 1 &&
            computing.count(BlockPool::chain_hash(s.parent, s.tokens.data() + hit * bs, bs)) != 0) {
          pool_.release_all(s.blocks);
          s.cached = 0;
          deferred.push_back(i);
          queue_.pop_front();
          continue;
        }
        if (!pool_.can_allocate(batch_blocks + need)) {  // no room now: wait for rows to finish
          pool_.release_all(s.blocks);
          s.cached = 0;
          break;
        }
        if (eo_.prefix_cache) {
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
      prefill_rows(batch);
      for (auto it = deferred.rbegin(); it != deferred.rend(); ++it) queue_.push_front(*it);
      if (deferred.empty() || !progress) return;
    }
  }

  /// Takes row i into the batch once its next token's logits are in s.logits: the first sample of a
  /// prompt with more to come lends the group its blocks, the last one admitted releases them.
  void activate(int64_t i) {
    auto& s = seq(i);
    auto& g = groups_[static_cast<size_t>(s.group)];
    if (!s.admitted) {
      s.admitted = true;
      --g.pending;
    }
    if (g.pending > 0 && !g.logits.defined() && s.cached == s.prompt_len) {
      g.blocks = s.blocks;
      for (int32_t b : g.blocks) pool_.retain(b);
      g.logits = s.logits;
    }
    if (g.pending == 0) {
      pool_.release_all(g.blocks);
      g.logits = at::Tensor();
    }
    if (!s.preempted) g.prefilling = false;
    s.preempted = false;
    active_.push_back(i);
  }

  /// The full blocks of s.tokens the prefix cache holds, retained into s.blocks (s.cached = their
  /// tokens; at least the last token is left to compute: it gives the next token's logits).
  /// Returns the blocks still to allocate.
  int64_t lookup_prefix(Sequence& s) {
    const auto n = static_cast<int64_t>(s.tokens.size());
    const int64_t bs = pool_.block_size();
    s.blocks.clear();
    s.parent = 0;
    if (eo_.prefix_cache) {
      for (int64_t j = 0; (j + 1) * bs <= n - 1; ++j) {
        const uint64_t h = BlockPool::chain_hash(s.parent, s.tokens.data() + j * bs, bs);
        const int32_t b = pool_.lookup(h, s.parent, s.tokens.data() + j * bs);
        if (b == kNoBlock) break;
        s.blocks.push_back(b);
        s.parent = h;
      }
    }
    s.cached = static_cast<int64_t>(s.blocks.size()) * bs;
    return (n + bs - 1) / bs - static_cast<int64_t>(s.blocks.size());
  }

  /// Prefills `rows` (their prefix-cache blocks held in s.blocks, s.cached tokens) in left-padded
  /// sub-batches of similar length, each one forward over a dense cache: the held blocks copied in,
  /// the rest of each row computed and then written to fresh blocks. A row the pool cannot take
  /// after all goes back to the front of the queue.
  void prefill_rows(std::vector<int64_t> rows) {
    if (rows.empty()) return;
    const auto t0 = std::chrono::steady_clock::now();
    const auto fresh = [&](int64_t i) { return static_cast<int64_t>(seq(i).tokens.size()) - seq(i).cached; };
    std::stable_sort(rows.begin(), rows.end(), [&](int64_t x, int64_t y) { return fresh(x) < fresh(y); });
    size_t begin = 0;
    while (begin < rows.size()) {
      // Grow the sub-batch while padding stays under a quarter of the computed tokens and the
      // dense cache under kPrefillTokens slots.
      size_t end = begin + 1;
      int64_t real = fresh(rows[begin]), past = seq(rows[begin]).cached;
      for (; end < rows.size(); ++end) {
        const int64_t t = fresh(rows[end]);
        const int64_t p = std::max(past, seq(rows[end]).cached);
        const auto count = static_cast<int64_t>(end - begin + 1);
        if (count * t > (real + t) * 5 / 4 || count * (p + t) > kPrefillTokens) break;
        real += t;
        past = p;
      }
      prefill_batch(std::vector<int64_t>(rows.begin() + static_cast<long>(begin), rows.begin() + static_cast<long>(end)));
      begin = end;
    }
    stats_.prefill_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }

  void prefill_batch(std::vector<int64_t> rows) {
    const int64_t bs = pool_.block_size();
    // Allocate every row's blocks first; one that does not fit returns to the queue.
    for (auto it = rows.begin(); it != rows.end();) {
      auto& s = seq(*it);
      const auto n = static_cast<int64_t>(s.tokens.size());
      const int64_t hit = static_cast<int64_t>(s.blocks.size());
      bool ok = true;
      for (int64_t j = hit; j < (n + bs - 1) / bs && ok; ++j) {
        const int32_t b = pool_.allocate();
        if (b == kNoBlock) ok = false;
        else s.blocks.push_back(b);
      }
      if (ok) {
        ++it;
        continue;
      }
      pool_.release_all(s.blocks);
      s.cached = 0;
      if (!s.preempted) groups_[static_cast<size_t>(s.group)].prefilling = false;
      queue_.push_front(*it);
      it = rows.erase(it);
    }
    if (rows.empty()) return;
    const auto b = static_cast<int64_t>(rows.size());
    int64_t pc = 0, tmax = 0;
    for (int64_t i : rows) {
      pc = std::max(pc, seq(i).cached);
      tmax = std::max(tmax, static_cast<int64_t>(seq(i).tokens.size()) - seq(i).cached);
    }
    // Row r: its held tokens at slots [pc - past, pc), its new ones at [pc + tmax - t, pc + tmax).
    auto ids = torch::full({b, tmax}, opts_.pad_token_id, torch::kLong);
    auto mask = torch::zeros({b, pc + tmax}, torch::kLong);
    auto ia = ids.accessor<int64_t, 2>();
    auto ma = mask.accessor<int64_t, 2>();
    auto cache = model_.make_cache(b, pc + tmax);
    stats_.peak_prefill_cache_bytes = std::max(stats_.peak_prefill_cache_bytes, dense_kv_bytes(model_, b, pc + tmax));
    for (int64_t r = 0; r < b; ++r) {
      const auto& s = seq(rows[static_cast<size_t>(r)]);
      const auto n = static_cast<int64_t>(s.tokens.size());
      const int64_t past = s.cached, t = n - past;
      for (int64_t k = 0; k < t; ++k) ia[r][tmax - t + k] = s.tokens[static_cast<size_t>(past + k)];
      for (int64_t k = pc - past; k < pc; ++k) ma[r][k] = 1;
      for (int64_t k = pc + tmax - t; k < pc + tmax; ++k) ma[r][k] = 1;
      for (size_t l = 0; l < cache.k.size(); ++l)
        for (int64_t j = 0; j < past / bs; ++j) {
          const int32_t blk = s.blocks[static_cast<size_t>(j)];
          cache.k[l][r].narrow(1, pc - past + j * bs, bs).copy_(pool_.k[l][blk]);
          cache.v[l][r].narrow(1, pc - past + j * bs, bs).copy_(pool_.v[l][blk]);
        }
    }
    cache.length = pc;
    const auto dev = model_.device();
    auto hidden = model_.forward_hidden(ids.to(dev), mask.to(dev), {}, &cache).select(1, -1);  // [b, H]
    auto logits = model_.lm_logits(hidden).to(torch::kFloat);                                 // [b, V]
    for (int64_t r = 0; r < b; ++r) {
      const int64_t i = rows[static_cast<size_t>(r)];
      auto& s = seq(i);
      const auto n = static_cast<int64_t>(s.tokens.size());
      const int64_t past = s.cached, t = n - past, hit = past / bs;
      for (size_t l = 0; l < cache.k.size(); ++l)
        for (int64_t j = hit; j < (n + bs - 1) / bs; ++j) {
          const int64_t cnt = std::min(bs, n - j * bs), slot = pc + tmax - t + (j * bs - past);
          const int32_t blk = s.blocks[static_cast<size_t>(j)];
          pool_.k[l][blk].narrow(1, 0, cnt).copy_(cache.k[l][r].narrow(1, slot, cnt));
          pool_.v[l][blk].narrow(1, 0, cnt).copy_(cache.v[l][r].narrow(1, slot, cnt));
        }
      if (eo_.prefix_cache)
        for (int64_t j = hit; (j + 1) * bs <= std::min(n, s.prompt_len); ++j) {
          const uint64_t h = BlockPool::chain_hash(s.parent, s.tokens.data() + j * bs, bs);
          pool_.insert(s.blocks[static_cast<size_t>(j)], h, s.parent, s.tokens.data() + j * bs);
          s.parent = h;
        }
      stats_.prefill_tokens += t;
      stats_.reused_tokens += past;
      s.logits = logits[r];
      s.cached = n;
      activate(i);
    }
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
    auto lp = torch::log_softmax(logits / lp_temperature_, -1).gather(1, tok.unsqueeze(1)).squeeze(1);
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
      if (end) pool_.release_all(s.blocks);
      else still.push_back(i);
    }
    active_ = std::move(still);
  }

  /// Makes room for every active row's next key/value (a new block at a block boundary, a private
  /// copy of a shared block), preempting the most recently admitted rows while the pool is full.
  void reserve_slots() {
    for (size_t r = 0; r < active_.size(); ++r) {
      auto& s = seq(active_[r]);
      const int64_t bs = pool_.block_size();
      const auto j = static_cast<size_t>(s.cached / bs);
      for (;;) {
        int32_t b = kNoBlock;
        if (j == s.blocks.size()) b = pool_.allocate();
        else if (pool_.refs(s.blocks[j]) > 1) b = pool_.copy_for_write(s.blocks[j]);
        else break;
        if (b != kNoBlock) {
          if (j == s.blocks.size()) s.blocks.push_back(b);
          else s.blocks[j] = b;
          break;
        }
        // Full: preempt the newest other row (or this one, if it is the newest).
        TORCH_CHECK(active_.size() > 1, "rollout engine: the KV pool (", pool_.size(), " blocks of ", bs,
                    " tokens) cannot hold one sequence of ", s.cached + 1, " tokens; raise the pool size (rollout.kv_blocks)");
        const int64_t victim = active_.back();
        preempt(victim);
        active_.pop_back();
        if (r >= active_.size()) return;  // the victim was this row
      }
    }
  }

  void preempt(int64_t i) {
    auto& s = seq(i);
    pool_.release_all(s.blocks);
    s.cached = 0;
    s.logits = at::Tensor();
    s.preempted = true;
    queue_.push_front(i);
    ++stats_.preemptions;
  }

  /// One forward of every active row's last sampled token over the paged cache.
  void decode_step() {
    reserve_slots();
    const auto a = static_cast<int64_t>(active_.size());
    if (a == 0) return;
    const auto dev = model_.device();
    const int64_t bs = pool_.block_size();
    std::vector<int64_t> ids(static_cast<size_t>(a)), pos(static_cast<size_t>(a)), lengths(static_cast<size_t>(a));
    std::vector<const std::vector<int32_t>*> tables(static_cast<size_t>(a));
    std::vector<int64_t> slot_block(static_cast<size_t>(a)), slot_off(static_cast<size_t>(a));
    for (int64_t r = 0; r < a; ++r) {
      auto& s = seq(active_[static_cast<size_t>(r)]);
      const auto ur = static_cast<size_t>(r);
      ids[ur] = s.tokens.back();
      pos[ur] = s.cached;
      lengths[ur] = s.cached + 1;
      tables[ur] = &s.blocks;
      slot_block[ur] = s.blocks[static_cast<size_t>(s.cached / bs)];
      slot_off[ur] = s.cached % bs;
    }
    const compat::SingleThreaded serial(dev.is_cpu() && a <= kSmallForwardTokens);
    const compat::CudaAutocast ac(dev, model_.autocast().value_or(at::kBFloat16), model_.autocast().has_value());
    const auto long_opts = torch::TensorOptions().dtype(torch::kLong);
    auto pos_t = torch::tensor(pos, long_opts).to(dev).unsqueeze(1);  // [A, 1]
    auto [cos, sin] = rope_cos_sin(m_.inv_freq, pos_t);
    auto x = m_.model->embed_tokens(torch::tensor(ids, long_opts).to(dev).unsqueeze(1));  // [A, 1, H]
    cos = cos.to(x.scalar_type());
    sin = sin.to(x.scalar_type());
    at::Tensor blk_t, off_t;
    for (int64_t l = 0; l < cfg_.num_hidden_layers; ++l) {
      auto& layer = m_.model->layer_list[static_cast<size_t>(l)];
      auto& attn = *layer->self_attn;
      auto [q, k, v] = attn.project(layer->input_layernorm(x), cos, sin);  // [A, H*, 1, D]
      auto& kp = pool_.k[static_cast<size_t>(l)];
      auto& vp = pool_.v[static_cast<size_t>(l)];
      write_slots(kp, k, slot_block, slot_off, blk_t, off_t);
      write_slots(vp, v, slot_block, slot_off, blk_t, off_t);
      const int64_t window = cfg_.layer_uses_sliding_window(l) ? cfg_.sliding_window : 0;
      auto o = paged_attention(q.squeeze(2), kp, vp, tables, lengths, window);  // [A, Hq, D]
      auto h = x + linear(o.reshape({a, 1, attn.num_heads * attn.head_dim}), attn.o_proj->weight, attn.o_proj->bias);
      x = h + layer->mlp(layer->post_attention_layernorm(h));
    }
    step_logits_ = model_.lm_logits(m_.model->norm(x)).select(1, 0).to(torch::kFloat);  // [A, V]
    for (int64_t i : active_) ++seq(i).cached;
    stats_.decode_tokens += a;
    ++stats_.decode_steps;
  }

  /// pool[slot_block[r], :, slot_off[r], :] = kv[r, :, 0, :] for each row r.
  static void write_slots(at::Tensor& pool, const at::Tensor& kv, const std::vector<int64_t>& blocks,
                          const std::vector<int64_t>& offs, at::Tensor& blk_t, at::Tensor& off_t) {
    const int64_t a = kv.size(0), hkv = kv.size(1), d = kv.size(3), bs = pool.size(2);
    if (paged_fast_path(pool) && pool.is_contiguous()) {
      const auto src = kv.contiguous();  // [A, Hkv, 1, D]
      const float* sp = src.data_ptr<float>();
      float* pp = pool.data_ptr<float>();
      for (int64_t r = 0; r < a; ++r)
        for (int64_t g = 0; g < hkv; ++g)
          std::copy_n(sp + (r * hkv + g) * d, d,
                      pp + ((blocks[static_cast<size_t>(r)] * hkv + g) * bs + offs[static_cast<size_t>(r)]) * d);
      return;
    }
    if (!blk_t.defined()) {
      blk_t = torch::tensor(blocks, torch::kLong).to(pool.device());
      off_t = torch::tensor(offs, torch::kLong).to(pool.device());
    }
    using torch::indexing::Slice;
    pool.index_put_({blk_t, Slice(), off_t}, kv.squeeze(2).to(pool.scalar_type()));
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
    stats_.peak_blocks = pool_.peak();
    return out;
  }

  Transformer& model_;
  TransformerImpl& m_;
  const ModelConfig& cfg_;
  const SamplingOptions& opts_;
  const EngineOptions& eo_;
  EngineStats& stats_;
  BlockPool pool_;
  bool greedy_ = false;
  double lp_temperature_ = 1.0;
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
