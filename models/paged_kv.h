// The paged KV cache behind the rollout engine (rollout_engine.h) and multi-turn sessions
// (decode_session.h): one pool of fixed-size blocks per layer, block tables, reference counts,
// copy-on-write, a prefix cache of full prompt blocks, batched prefills over a dense scratch cache,
// and the decode step whose attention reads the blocks in place (paged_attention).
// Include only from models/*.cpp: the schedulers around it (admission, preemption, turns) are the
// including file's.
#pragma once

#include <cstdint>
#include <deque>
#include <unordered_map>
#include <vector>

#include "models/rollout_engine.h"

namespace keel::models {

inline constexpr int32_t kNoBlock = -1;

/// The KV blocks of every layer: k[l], v[l] [num_blocks, Hkv, block_size, D], reference counts, a
/// free list, and the prefix cache (full blocks found by the chain hash of their tokens).
/// Free blocks are handed out lowest id first and freed ones reused first, so the blocks ever
/// written are ids 0 .. peak - 1: the pool is allocated uninitialised (on CPU the pages of blocks
/// never used are never touched) and its real footprint is the peak, which stats report.
class BlockPool {
 public:
  BlockPool(const Transformer& model, int64_t num_blocks, int64_t block_size);

  int64_t block_size() const { return bs_; }
  int64_t size() const { return static_cast<int64_t>(refs_.size()); }
  int64_t used() const { return size() - static_cast<int64_t>(free_.size()); }
  int64_t peak() const { return peak_; }

  /// A block with one reference, or kNoBlock when none is free and no cached block can be evicted.
  int32_t allocate();
  /// Whether `n` blocks could be allocated now (free ones plus evictable cached ones).
  bool can_allocate(int64_t n) const;
  void retain(int32_t b) { ++refs_[static_cast<size_t>(b)]; }
  void release(int32_t b);
  void release_all(std::vector<int32_t>& blocks);
  int32_t refs(int32_t b) const { return refs_[static_cast<size_t>(b)]; }
  /// Copy-on-write: a private copy of `b` (keys and values of every layer), one reference moved to
  /// it; kNoBlock when the pool is full.
  int32_t copy_for_write(int32_t b);
  /// Grows the pool to `blocks` blocks (the blocks written so far copied over).
  void grow(int64_t blocks);

  /// Chain hash of a full block: its tokens, seeded with the hash of the blocks before it.
  static uint64_t chain_hash(uint64_t parent, const int64_t* tokens, int64_t n);
  /// The cached block holding `tokens` after the chain `parent`, retained; kNoBlock if none.
  int32_t lookup(uint64_t h, uint64_t parent, const int64_t* tokens);
  /// Registers full block `b` (the cache takes a reference, released on eviction).
  void insert(int32_t b, uint64_t h, uint64_t parent, const int64_t* tokens);

  std::vector<at::Tensor> k, v;  ///< per layer [num_blocks, Hkv, block_size, D]

 private:
  struct Entry {
    uint64_t parent;
    std::vector<int64_t> tokens;
  };
  void evict_one();  // drops the oldest cached block that only the cache holds
  at::Tensor make_blocks(const Transformer& model, int64_t blocks) const;

  const Transformer& model_;
  int64_t bs_;
  int64_t peak_ = 0;
  std::vector<int32_t> refs_;
  std::vector<uint64_t> hash_;  // 0 = not in the prefix cache
  std::vector<int32_t> free_;   // a stack: back() is handed out next
  std::deque<int32_t> cached_;  // prefix-cache blocks, oldest first
  std::unordered_map<uint64_t, int32_t> by_hash_;
  std::unordered_map<int32_t, Entry> entries_;
};

/// One sequence's cache: its tokens, the blocks holding the first `cached` of them, and the
/// logits after the last cached token when a prefill left them.
struct PagedSeq {
  std::vector<int64_t> tokens;
  int64_t prompt_len = 0;      // the first prompt_len tokens may enter the prefix cache
  std::vector<int32_t> blocks;  // block table
  int64_t cached = 0;           // tokens whose keys/values are in the blocks
  uint64_t parent = 0;          // prefix-cache chain hash of its held full prompt blocks
  at::Tensor logits;            // [V] fp32 after a prefill; undefined otherwise
};

class PagedKV {
 public:
  PagedKV(Transformer& model, int64_t num_blocks, int64_t block_size, bool prefix_cache, EngineStats& stats);

  BlockPool& pool() { return pool_; }
  bool prefix_cache() const { return prefix_cache_; }

  /// For a sequence holding nothing: the full blocks of its tokens the prefix cache holds,
  /// retained into s.blocks (s.cached = their tokens; at least the last token is left to compute:
  /// it gives the next token's logits). Returns the blocks still to allocate.
  int64_t lookup_prefix(PagedSeq& s);

  /// Computes tokens [cached, size) of each row (cached may end inside a block; a shared last
  /// block is copied on write) in left-padded sub-batches of similar length, each one forward over
  /// a dense scratch cache (at most kPrefillTokens slots unless one row is longer), and leaves each
  /// row's next-token logits in s.logits. Rows the pool cannot take are returned, holding what
  /// they held before (their blocks before the call).
  std::vector<PagedSeq*> prefill(std::vector<PagedSeq*> rows, int64_t pad_id);

  /// Makes room for s's next key/value (slot s.cached): a new block at a block boundary, a private
  /// copy of a shared block. False when the pool is full.
  bool reserve_slot(PagedSeq& s);

  /// One forward of each row's last token (at position s.cached, its slot reserved) over the paged
  /// cache; returns their next-token logits [A, V] fp32 and advances s.cached.
  at::Tensor decode(const std::vector<PagedSeq*>& rows);

  /// Releases s's blocks (s.cached = 0).
  void release(PagedSeq& s);

  static constexpr int64_t kPrefillTokens = 2048;

 private:
  bool take_blocks(PagedSeq& s);  // allocation / copy-on-write for a prefill of s
  void prefill_batch(const std::vector<PagedSeq*>& rows, int64_t pad_id);

  Transformer& model_;
  EngineStats& stats_;
  BlockPool pool_;
  bool prefix_cache_;
};

}  // namespace keel::models
