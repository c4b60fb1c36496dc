// The paged KV cache. See paged_kv.h.
#include "models/paged_kv.h"

#include <algorithm>

#include <torch/torch.h>

#include "base/checksum.h"
#include "models/compat.h"
#include "models/fused_cpu.h"
#include "models/transformer_impl.h"

namespace keel::models {

// ---- BlockPool ---------------------------------------------------------------------------------

BlockPool::BlockPool(const Transformer& model, int64_t num_blocks, int64_t block_size) : model_(model), bs_(block_size) {
  for (int64_t l = 0; l < model.config().num_hidden_layers; ++l) {
    k.push_back(make_blocks(model, num_blocks));
    v.push_back(make_blocks(model, num_blocks));
  }
  refs_.assign(static_cast<size_t>(num_blocks), 0);
  hash_.assign(static_cast<size_t>(num_blocks), 0);
  for (int64_t b = num_blocks - 1; b >= 0; --b) free_.push_back(static_cast<int32_t>(b));
}

at::Tensor BlockPool::make_blocks(const Transformer& model, int64_t blocks) const {
  const auto& c = model.config();
  const std::vector<int64_t> shape = {blocks, c.num_key_value_heads, bs_, c.head_dim};
  if (model.device().is_cpu()) return empty_on_huge_pages(shape, model.dtype());  // read in scattered pieces
  return torch::empty(shape, torch::TensorOptions().dtype(model.dtype()).device(model.device()));
}

int32_t BlockPool::allocate() {
  if (free_.empty()) evict_one();
  if (free_.empty()) return kNoBlock;
  const int32_t b = free_.back();
  free_.pop_back();
  refs_[static_cast<size_t>(b)] = 1;
  peak_ = std::max(peak_, used());
  return b;
}

bool BlockPool::can_allocate(int64_t n) const {
  int64_t avail = static_cast<int64_t>(free_.size());
  for (int32_t b : cached_)
    if (avail >= n) break;
    else if (refs_[static_cast<size_t>(b)] == 1) ++avail;
  return avail >= n;
}

void BlockPool::release(int32_t b) {
  auto& r = refs_[static_cast<size_t>(b)];
  TORCH_INTERNAL_ASSERT(r > 0, "paged KV: block ", b, " released twice");
  if (--r == 0) free_.push_back(b);
}

void BlockPool::release_all(std::vector<int32_t>& blocks) {
  for (int32_t b : blocks) release(b);
  blocks.clear();
}

int32_t BlockPool::copy_for_write(int32_t b) {
  const int32_t c = allocate();
  if (c == kNoBlock) return c;
  for (size_t l = 0; l < k.size(); ++l) {
    k[l][c].copy_(k[l][b]);
    v[l][c].copy_(v[l][b]);
  }
  release(b);
  return c;
}

void BlockPool::grow(int64_t blocks) {
  const int64_t old = size();
  if (blocks <= old) return;
  for (auto* layers : {&k, &v})
    for (auto& t : *layers) {
      auto grown = make_blocks(model_, blocks);
      if (peak_ > 0) grown.narrow(0, 0, peak_).copy_(t.narrow(0, 0, peak_));  // ids >= peak were never written
      t = grown;
    }
  refs_.resize(static_cast<size_t>(blocks), 0);
  hash_.resize(static_cast<size_t>(blocks), 0);
  // New ids go under the free ones, highest deepest: lower ids are still handed out first.
  std::vector<int32_t> fresh;
  for (int64_t b = blocks - 1; b >= old; --b) fresh.push_back(static_cast<int32_t>(b));
  free_.insert(free_.begin(), fresh.begin(), fresh.end());
}

uint64_t BlockPool::chain_hash(uint64_t parent, const int64_t* tokens, int64_t n) {
  return checksum::xxh64(tokens, static_cast<size_t>(n) * sizeof(int64_t), parent ^ 0x6b65656c70726678ull) | 1ull;
}

int32_t BlockPool::lookup(uint64_t h, uint64_t parent, const int64_t* tokens) {
  auto it = by_hash_.find(h);
  if (it == by_hash_.end()) return kNoBlock;
  const auto& e = entries_[it->second];
  if (e.parent != parent || !std::equal(e.tokens.begin(), e.tokens.end(), tokens)) return kNoBlock;
  retain(it->second);
  return it->second;
}

void BlockPool::insert(int32_t b, uint64_t h, uint64_t parent, const int64_t* tokens) {
  if (by_hash_.count(h) != 0 || hash_[static_cast<size_t>(b)] != 0) return;
  by_hash_[h] = b;
  hash_[static_cast<size_t>(b)] = h;
  entries_[b] = Entry{parent, std::vector<int64_t>(tokens, tokens + bs_)};
  retain(b);
  cached_.push_back(b);
}

void BlockPool::evict_one() {
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

// ---- PagedKV -----------------------------------------------------------------------------------

namespace {

/// pool[blocks[r], :, offs[r], :] = kv[r, :, 0, :] for each row r.
void write_slots(at::Tensor& pool, const at::Tensor& kv, const std::vector<int64_t>& blocks,
                 const std::vector<int64_t>& offs, at::Tensor& blk_t, at::Tensor& off_t) {
  const int64_t a = kv.size(0), hkv = kv.size(1), d = kv.size(3), bs = pool.size(2);
  if (fused_cpu_tensor(pool)) {
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

int64_t blocks_for(int64_t tokens, int64_t bs) { return (tokens + bs - 1) / bs; }

}  // namespace

PagedKV::PagedKV(Transformer& model, int64_t num_blocks, int64_t block_size, bool prefix_cache, EngineStats& stats)
    : model_(model), stats_(stats), pool_(model, num_blocks, block_size), prefix_cache_(prefix_cache) {
  stats_.pool_blocks = pool_.size();
  stats_.block_bytes = dense_kv_bytes(model, 1, block_size);
}

int64_t PagedKV::lookup_prefix(PagedSeq& s) {
  const auto n = static_cast<int64_t>(s.tokens.size());
  const int64_t bs = pool_.block_size();
  s.blocks.clear();
  s.parent = 0;
  if (prefix_cache_) {
    for (int64_t j = 0; (j + 1) * bs <= std::min(n - 1, s.prompt_len); ++j) {
      const uint64_t h = BlockPool::chain_hash(s.parent, s.tokens.data() + j * bs, bs);
      const int32_t b = pool_.lookup(h, s.parent, s.tokens.data() + j * bs);
      if (b == kNoBlock) break;
      s.blocks.push_back(b);
      s.parent = h;
    }
  }
  s.cached = static_cast<int64_t>(s.blocks.size()) * bs;
  return blocks_for(n, bs) - static_cast<int64_t>(s.blocks.size());
}

bool PagedKV::take_blocks(PagedSeq& s) {
  const int64_t bs = pool_.block_size();
  const auto n = static_cast<int64_t>(s.tokens.size());
  const size_t before = s.blocks.size();
  for (int64_t j = static_cast<int64_t>(before); j < blocks_for(n, bs); ++j) {
    const int32_t b = pool_.allocate();
    if (b == kNoBlock) {
      for (size_t i = before; i < s.blocks.size(); ++i) pool_.release(s.blocks[i]);
      s.blocks.resize(before);
      return false;
    }
    s.blocks.push_back(b);
  }
  if (s.cached % bs != 0) {  // the new tokens start inside a held block: make it private
    auto& last = s.blocks[static_cast<size_t>(s.cached / bs)];
    if (pool_.refs(last) > 1) {
      const int32_t c = pool_.copy_for_write(last);
      if (c == kNoBlock) {
        for (size_t i = before; i < s.blocks.size(); ++i) pool_.release(s.blocks[i]);
        s.blocks.resize(before);
        return false;
      }
      last = c;
    }
  }
  return true;
}

std::vector<PagedSeq*> PagedKV::prefill(std::vector<PagedSeq*> rows, int64_t pad_id) {
  std::vector<PagedSeq*> refused;
  if (rows.empty()) return refused;
  const auto t0 = std::chrono::steady_clock::now();
  const auto fresh = [](const PagedSeq* s) { return static_cast<int64_t>(s->tokens.size()) - s->cached; };
  std::stable_sort(rows.begin(), rows.end(), [&](const PagedSeq* x, const PagedSeq* y) { return fresh(x) < fresh(y); });
  size_t begin = 0;
  while (begin < rows.size()) {
    // Grow the sub-batch while padding stays under a quarter of the computed tokens and the dense
    // cache under kPrefillTokens slots.
    size_t end = begin + 1;
    int64_t real = fresh(rows[begin]), past = rows[begin]->cached;
    for (; end < rows.size(); ++end) {
      const int64_t t = fresh(rows[end]);
      const int64_t p = std::max(past, rows[end]->cached);
      const auto count = static_cast<int64_t>(end - begin + 1);
      if (count * t > (real + t) * 5 / 4 || count * (p + t) > kPrefillTokens) break;
      real += t;
      past = p;
    }
    std::vector<PagedSeq*> batch;
    for (size_t i = begin; i < end; ++i) {
      if (take_blocks(*rows[i])) batch.push_back(rows[i]);
      else refused.push_back(rows[i]);
    }
    if (!batch.empty()) prefill_batch(batch, pad_id);
    begin = end;
  }
  stats_.prefill_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return refused;
}

void PagedKV::prefill_batch(const std::vector<PagedSeq*>& rows, int64_t pad_id) {
  const int64_t bs = pool_.block_size();
  const auto b = static_cast<int64_t>(rows.size());
  int64_t pc = 0, tmax = 0;
  for (const auto* s : rows) {
    pc = std::max(pc, s->cached);
    tmax = std::max(tmax, static_cast<int64_t>(s->tokens.size()) - s->cached);
  }
  // Row r: its held tokens at slots [pc - past, pc), its new ones right after, at [pc, pc + t):
  // one contiguous run (so that a sliding window, which counts slots, counts positions), holes
  // (mask 0) before and after it. Its next-token logits are those of slot pc + t - 1.
  auto ids = torch::full({b, tmax}, pad_id, torch::kLong);
  auto mask = torch::zeros({b, pc + tmax}, torch::kLong);
  auto ia = ids.accessor<int64_t, 2>();
  auto ma = mask.accessor<int64_t, 2>();
  auto last = torch::empty({b}, torch::kLong);  // each row's last new token's column
  auto lasta = last.accessor<int64_t, 1>();
  auto cache = model_.make_cache(b, pc + tmax);
  stats_.peak_prefill_cache_bytes = std::max(stats_.peak_prefill_cache_bytes, dense_kv_bytes(model_, b, pc + tmax));
  for (int64_t r = 0; r < b; ++r) {
    const auto& s = *rows[static_cast<size_t>(r)];
    const auto n = static_cast<int64_t>(s.tokens.size());
    const int64_t past = s.cached, t = n - past;
    for (int64_t k = 0; k < t; ++k) ia[r][k] = s.tokens[static_cast<size_t>(past + k)];
    for (int64_t k = pc - past; k < pc + t; ++k) ma[r][k] = 1;
    lasta[r] = t - 1;
    for (size_t l = 0; l < cache.k.size(); ++l)
      for (int64_t j = 0; j < blocks_for(past, bs); ++j) {
        const int64_t cnt = std::min(bs, past - j * bs);
        const int32_t blk = s.blocks[static_cast<size_t>(j)];
        cache.k[l][r].narrow(1, pc - past + j * bs, cnt).copy_(pool_.k[l][blk].narrow(1, 0, cnt));
        cache.v[l][r].narrow(1, pc - past + j * bs, cnt).copy_(pool_.v[l][blk].narrow(1, 0, cnt));
      }
  }
  cache.length = pc;
  const auto dev = model_.device();
  auto hidden = model_.forward_hidden(ids.to(dev), mask.to(dev), {}, &cache);  // [b, tmax, H]
  hidden = hidden.gather(1, last.to(dev).view({b, 1, 1}).expand({b, 1, hidden.size(2)})).squeeze(1);  // [b, H]
  auto logits = model_.lm_logits(hidden).to(torch::kFloat);                                 // [b, V]
  for (int64_t r = 0; r < b; ++r) {
    auto& s = *rows[static_cast<size_t>(r)];
    const auto n = static_cast<int64_t>(s.tokens.size());
    const int64_t past = s.cached, t = n - past;
    for (size_t l = 0; l < cache.k.size(); ++l)
      for (int64_t j = past / bs; j < blocks_for(n, bs); ++j) {
        const int64_t from = std::max(past, j * bs), to = std::min(n, (j + 1) * bs);
        const int64_t slot = pc + (from - past);
        const int32_t blk = s.blocks[static_cast<size_t>(j)];
        pool_.k[l][blk].narrow(1, from - j * bs, to - from).copy_(cache.k[l][r].narrow(1, slot, to - from));
        pool_.v[l][blk].narrow(1, from - j * bs, to - from).copy_(cache.v[l][r].narrow(1, slot, to - from));
      }
    if (prefix_cache_ && past % bs == 0)  // (a row whose held blocks end mid-block is past its prompt)
      for (int64_t j = past / bs; (j + 1) * bs <= std::min(n, s.prompt_len); ++j) {
        const uint64_t h = BlockPool::chain_hash(s.parent, s.tokens.data() + j * bs, bs);
        pool_.insert(s.blocks[static_cast<size_t>(j)], h, s.parent, s.tokens.data() + j * bs);
        s.parent = h;
      }
    stats_.prefill_tokens += t;
    stats_.reused_tokens += past;
    s.logits = logits[r];
    s.cached = n;
  }
}

bool PagedKV::reserve_slot(PagedSeq& s) {
  const int64_t bs = pool_.block_size();
  const auto j = static_cast<size_t>(s.cached / bs);
  if (j == s.blocks.size()) {
    const int32_t b = pool_.allocate();
    if (b == kNoBlock) return false;
    s.blocks.push_back(b);
  } else if (pool_.refs(s.blocks[j]) > 1) {
    const int32_t b = pool_.copy_for_write(s.blocks[j]);
    if (b == kNoBlock) return false;
    s.blocks[j] = b;
  }
  return true;
}

at::Tensor PagedKV::decode(const std::vector<PagedSeq*>& rows) {
  const auto a = static_cast<int64_t>(rows.size());
  auto& m = *model_.impl();
  const auto& cfg = model_.config();
  const auto dev = model_.device();
  const int64_t bs = pool_.block_size();
  std::vector<int64_t> ids(static_cast<size_t>(a)), pos(static_cast<size_t>(a)), lengths(static_cast<size_t>(a));
  std::vector<const std::vector<int32_t>*> tables(static_cast<size_t>(a));
  std::vector<int64_t> slot_block(static_cast<size_t>(a)), slot_off(static_cast<size_t>(a));
  for (int64_t r = 0; r < a; ++r) {
    const auto& s = *rows[static_cast<size_t>(r)];
    const auto ur = static_cast<size_t>(r);
    ids[ur] = s.tokens[static_cast<size_t>(s.cached)];
    pos[ur] = s.cached;
    lengths[ur] = s.cached + 1;
    tables[ur] = &s.blocks;
    slot_block[ur] = s.blocks[static_cast<size_t>(s.cached / bs)];
    slot_off[ur] = s.cached % bs;
  }
  const compat::SingleThreaded serial(dev.is_cpu() && a <= kSmallForwardTokens);
  const compat::CudaAutocast ac(dev, model_.autocast().value_or(at::kBFloat16), model_.autocast().has_value());
  const auto long_opts = torch::TensorOptions().dtype(torch::kLong);
  auto [cos, sin] = rope_cos_sin(m.inv_freq, torch::tensor(pos, long_opts).to(dev).unsqueeze(1));  // [A, 1, D]
  auto x = m.model->embed_tokens(torch::tensor(ids, long_opts).to(dev).unsqueeze(1));              // [A, 1, H]
  cos = cos.to(x.scalar_type());
  sin = sin.to(x.scalar_type());
  at::Tensor blk_t, off_t;
  for (int64_t l = 0; l < cfg.num_hidden_layers; ++l) {
    auto& layer = m.model->layer_list[static_cast<size_t>(l)];
    auto& attn = *layer->self_attn;
    auto [q, k, v] = attn.project(layer->input_layernorm(x), cos, sin);  // [A, H*, 1, D]
    auto& kp = pool_.k[static_cast<size_t>(l)];
    auto& vp = pool_.v[static_cast<size_t>(l)];
    write_slots(kp, k, slot_block, slot_off, blk_t, off_t);
    write_slots(vp, v, slot_block, slot_off, blk_t, off_t);
    const int64_t window = cfg.layer_uses_sliding_window(l) ? cfg.sliding_window : 0;
    auto o = paged_attention(q.squeeze(2), kp, vp, tables, lengths, window);  // [A, Hq, D]
    auto h = x + attn.output(o.reshape({a, 1, attn.num_heads * attn.head_dim}));
    x = h + layer->mlp(layer->post_attention_layernorm(h));
  }
  auto logits = model_.lm_logits(m.model->norm(x)).select(1, 0).to(torch::kFloat);  // [A, V]
  for (auto* s : rows) ++s->cached;
  stats_.decode_tokens += a;
  ++stats_.decode_steps;
  return logits;
}

void PagedKV::release(PagedSeq& s) {
  pool_.release_all(s.blocks);
  s.cached = 0;
}

}  // namespace keel::models
