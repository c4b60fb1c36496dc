// The rollout engine for RL workloads: the same sampling as generate() (generate.h: per-row
// generators, log-prob convention, stops), with three structural changes that the GRPO workload
// (G samples of each prompt, lengths that vary a lot) pays for:
//  - a paged KV cache: fixed-size blocks from one pool of a configured
//    size, a block table per sequence, reference counts, copy-on-write for shared blocks;
//  - shared prefixes: identical prompts (the G samples of one prompt) prefill once and share
//    their blocks; with prefix_cache, full prompt blocks are also found by content (a chain hash of
//    the tokens, vLLM's automatic prefix caching), so prompts that open with the same system
//    prompt or few-shot header compute it once;
//  - continuous batching: at most max_batch sequences decode together; a finished one frees its
//    blocks and its slot is refilled from the queue (prompts x samples, in row order) at once.
// When the pool runs out, the most recently admitted sequence is preempted: its blocks are freed and
// it is re-queued at the front; on re-admission its prompt and the tokens it already sampled are
// prefilled again (recompute preemption, as vLLM does), and it goes on with its own generator, so
// what it samples does not change. A single sequence that needs more blocks than the whole pool is
// an error that names the numbers.
// Rows sample exactly what generate() samples for them with the same options and seed, up to the
// fp32 rounding of a different batch composition (greedy: the same tokens on the fixture models,
// tests/models/rollout_engine_test.cpp), and the log-probs are the learner's teacher-forced ones.
// Deliberately not here: tokenization, multi-turn sessions (decode_session.h), CUDA graphs.
#pragma once

#include <cstdint>
#include <vector>

#include "models/generate.h"

namespace keel::models {

struct EngineOptions {
  int64_t max_batch = 64;   ///< sequences decoded together (the batch's slots)
  int64_t block_size = 16;  ///< tokens per KV block
  /// Blocks in the pool; 0 = enough for max_batch rows of the longest prompt + max_new_tokens
  /// (what the static engine allocates for one chunk), so the default never holds more.
  int64_t num_blocks = 0;
  bool prefix_cache = true;  ///< find full prompt blocks by content across prompts
};

struct EngineStats {
  int64_t prefill_tokens = 0;     ///< tokens run through prefills (recomputation after preemption included)
  int64_t reused_tokens = 0;      ///< prompt tokens whose keys/values came from shared blocks instead
  int64_t decode_tokens = 0;      ///< tokens run through decode steps (one per active row per step)
  int64_t decode_steps = 0;       ///< decode steps (batched forwards)
  int64_t preemptions = 0;
  int64_t pool_blocks = 0;        ///< the pool's size
  int64_t peak_blocks = 0;        ///< most blocks held at once (prefix cache included)
  int64_t block_bytes = 0;        ///< keys + values of one block over all layers
  double prefill_seconds = 0;     ///< wall time in prefills
  double decode_seconds = 0;      ///< wall time in decode steps (slot reservation included)
  double sample_seconds = 0;      ///< wall time sampling the next tokens
  /// The largest dense cache a prefill forward used (rows x padded length slots, freed after
  /// its keys and values are copied into blocks; kept under 2048 slots unless one row is longer).
  int64_t peak_prefill_cache_bytes = 0;
  /// Peak KV memory: the blocks held at their peak plus the largest transient prefill cache (an
  /// upper bound: the two peaks need not coincide).
  int64_t peak_kv_bytes() const { return peak_blocks * block_bytes + peak_prefill_cache_bytes; }
  /// Folds in another call's figures: counts and times add up, peaks take the larger.
  void add(const EngineStats& o);
};

/// Samples responses for `prompts` (non-empty token lists) like generate(model, prompts, opts) and
/// returns the same layout (prompts left-padded, responses right-padded, rows in input order).
/// Under no-grad on the model's device. Throws for an option generate() rejects and for a pool
/// too small for one sequence.
GenerateOutput generate_paged(Transformer& model, const std::vector<std::vector<int64_t>>& prompts,
                              const SamplingOptions& opts, const EngineOptions& engine, EngineStats* stats = nullptr);

/// Attention of one query per row over its keys in a paged cache (the decode step's):
/// q [A, Hq, D]; k_pool, v_pool [blocks, Hkv, block_size, D]; row r's keys are positions
/// 0 .. lengths[r] - 1, key j in block (*tables[r])[j / block_size] at row j % block_size; with
/// window > 0 only the last `window` of them. Query head h reads key/value head h / (Hq / Hkv).
/// Returns [A, Hq, D]. fp32 CPU pools run kernels::paged_attention_rows over the blocks in place;
/// anything else runs paged_attention_reference.
at::Tensor paged_attention(const at::Tensor& q, const at::Tensor& k_pool, const at::Tensor& v_pool,
                           const std::vector<const std::vector<int32_t>*>& tables, const std::vector<int64_t>& lengths,
                           int64_t window = 0);
/// The same by gathering each row's blocks into a dense [A, Hq, S, D] and masked
/// scaled_dot_product_attention: the reference the kernel is tested against.
at::Tensor paged_attention_reference(const at::Tensor& q, const at::Tensor& k_pool, const at::Tensor& v_pool,
                                     const std::vector<const std::vector<int32_t>*>& tables,
                                     const std::vector<int64_t>& lengths, int64_t window = 0);

/// Bytes of the static engine's dense cache for n rows of `capacity` slots (keys + values, every
/// layer): what generate() allocates, for comparisons with EngineStats::peak_kv_bytes.
int64_t dense_kv_bytes(const Transformer& model, int64_t n, int64_t capacity);

}  // namespace keel::models
