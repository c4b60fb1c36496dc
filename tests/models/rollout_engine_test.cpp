// Tests for models/rollout_engine: the paged attention kernel against its gather-and-SDPA reference
// over random block tables; the LOG-PROB CONTRACT through the engine (log-probs equal the
// learner's teacher-forced ones within 1e-5, fp32); the same tokens as generate() for the same
// seeds (greedy and sampled) over the fixture families; continuous batching, shared prefixes,
// copy-on-write, preemption and the pool's accounting on hand-counted workloads.
#include "models/rollout_engine.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <numeric>
#include <random>

#include "models/compat.h"
#include "models/logprobs.h"
#include "tests/models/test_util.h"

namespace keel::models {
namespace {

using testing::random_prompts;
using testing::tiny_model;

/// Each prompt `samples` times, adjacent (as the rollout lays out a group).
std::vector<std::vector<int64_t>> repeat_rows(const std::vector<std::vector<int64_t>>& prompts, int samples) {
  std::vector<std::vector<int64_t>> rows;
  for (const auto& p : prompts)
    for (int s = 0; s < samples; ++s) rows.push_back(p);
  return rows;
}

int64_t generated(const GenerateOutput& g) { return g.response_mask.sum().item<int64_t>(); }

TEST(PagedAttention, KernelMatchesGatherReferenceOverRandomTables) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 24; ++trial) {
    SCOPED_TRACE("trial " + std::to_string(trial));
    const int64_t hkv = 1 + trial % 3, rep = 1 + (trial / 3) % 3, d = trial % 2 ? 16 : 8, bs = 1 + trial % 5;
    const int64_t a = 1 + trial % 4, blocks = 40;
    const int64_t window = trial % 4 == 3 ? 1 + trial % 7 : 0;
    auto kp = torch::randn({blocks, hkv, bs, d}), vp = torch::randn({blocks, hkv, bs, d});
    auto q = torch::randn({a, hkv * rep, d});
    std::vector<int32_t> ids(blocks);
    std::iota(ids.begin(), ids.end(), 0);
    std::shuffle(ids.begin(), ids.end(), rng);  // rows' blocks scattered over the pool
    std::vector<std::vector<int32_t>> tables(static_cast<size_t>(a));
    std::vector<int64_t> lengths;
    size_t next = 0;
    for (auto& t : tables) {
      const int64_t len = 1 + static_cast<int64_t>(rng() % 23);
      lengths.push_back(len);
      for (int64_t j = 0; j < (len + bs - 1) / bs; ++j) t.push_back(ids[next++ % ids.size()]);
    }
    std::vector<const std::vector<int32_t>*> tp;
    for (auto& t : tables) tp.push_back(&t);
    const auto fast = paged_attention(q, kp, vp, tp, lengths, window);
    const auto ref = paged_attention_reference(q, kp, vp, tp, lengths, window);
    EXPECT_TRUE(torch::allclose(fast, ref, 1e-5, 1e-5)) << (fast - ref).abs().max().item<double>();
  }
}

// The hand-checkable case: one key = that key's value; two equal-score keys = their mean.
TEST(PagedAttention, HandCheckedValues) {
  auto kp = torch::zeros({3, 1, 1, 2}), vp = torch::zeros({3, 1, 1, 2});  // blocks of one token
  vp[2][0][0] = torch::tensor({1.0f, 2.0f});  // key 0 lives in block 2
  vp[0][0][0] = torch::tensor({3.0f, 6.0f});  // key 1 in block 0
  std::vector<int32_t> table = {2, 0};
  auto q = torch::zeros({1, 1, 2});
  auto one = paged_attention(q, kp, vp, {&table}, {1});
  EXPECT_TRUE(torch::allclose(one, torch::tensor({1.0f, 2.0f}).view({1, 1, 2})));
  auto two = paged_attention(q, kp, vp, {&table}, {2});
  EXPECT_TRUE(torch::allclose(two, torch::tensor({2.0f, 4.0f}).view({1, 1, 2})));
  auto last = paged_attention(q, kp, vp, {&table}, {2}, /*window=*/1);
  EXPECT_TRUE(torch::allclose(last, torch::tensor({3.0f, 6.0f}).view({1, 1, 2})));
}

// THE LOG-PROB CONTRACT through the engine: small blocks and few slots, so that rows finish, are
// refilled, share prompt blocks and copy them on write; families, tied embeddings, sliding windows.
TEST(RolloutEngine, LogprobContract) {
  const std::vector<std::string> types = {"llama", "qwen2", "mistral", "qwen3"};
  for (uint64_t seed = 0; seed < 9; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    auto m = tiny_model(types[seed % 4], seed, /*tie=*/seed % 2, /*window=*/seed % 4 == 2 ? 3 : 0);
    SamplingOptions o;
    o.max_new_tokens = 9;
    o.seed = seed;
    EngineOptions e{.max_batch = 3, .block_size = 1 + static_cast<int64_t>(seed % 4), .num_blocks = 0};
    const auto g = generate_paged(m, repeat_rows(random_prompts(50, seed, {3, 6, 1, 5}), 2), o, e);
    torch::NoGradGuard ng;
    const auto tf = sequence_logprobs(m, g.prompt_ids, g.prompt_mask, g.response_ids, g.response_mask);
    EXPECT_TRUE(torch::allclose(g.logprobs, tf.logprobs, 0, 1e-5)) << (g.logprobs - tf.logprobs).abs().max().item<double>();
    EXPECT_TRUE(((g.logprobs * (1 - g.response_mask)).abs().sum() == 0).item<bool>());
  }
}

// With the same options and seed, every row samples what generate() samples for it: greedy and at
// temperature with truncation, with EOS stops, over the fixture families.
TEST(RolloutEngine, SameTokensAsTheStaticEngine) {
  const std::vector<std::string> types = {"llama", "qwen2", "mistral"};
  for (uint64_t seed = 0; seed < 9; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    auto m = tiny_model(types[seed % 3], 100 + seed, /*tie=*/seed % 2 == 0);
    SamplingOptions o;
    o.max_new_tokens = 12;
    o.seed = 1000 + seed;
    o.first_row = static_cast<int64_t>(seed);
    if (seed % 3 == 0) o.greedy = true;
    if (seed % 3 == 1) o.temperature = 0.8, o.top_k = 20, o.top_p = 0.95;
    const auto rows = repeat_rows(random_prompts(50, seed, {4, 9, 2}), 3);
    const auto want = generate(m, rows, o);
    const auto got = generate_paged(m, rows, o, EngineOptions{.max_batch = 4, .block_size = 4});
    EXPECT_TRUE(torch::equal(got.response_ids, want.response_ids));
    EXPECT_TRUE(torch::equal(got.response_mask, want.response_mask));
    EXPECT_TRUE(torch::equal(got.prompt_ids, want.prompt_ids));
    EXPECT_TRUE(torch::allclose(got.logprobs, want.logprobs, 0, 1e-5));
    EXPECT_EQ(got.finish_reasons, want.finish_reasons);
  }
}

// Per-row lengths (both engines), EOS and stop tokens end rows with their reason.
TEST(RolloutEngine, RowLimitsAndStops) {
  auto m = tiny_model("llama", 3);
  SamplingOptions o;
  o.max_new_tokens = 100;  // not used: every row has its own limit
  o.row_max_new_tokens = {0, 1, 4, 7, 2};
  o.eos_token_ids = {1000};  // never sampled
  o.seed = 5;
  const auto rows = random_prompts(50, 3, {3, 5, 2, 6, 4});
  for (bool paged : {false, true}) {
    const auto g = paged ? generate_paged(m, rows, o, EngineOptions{.max_batch = 2, .block_size = 2}) : generate(m, rows, o);
    const auto lens = g.response_mask.sum(1);
    for (size_t i = 0; i < rows.size(); ++i) {
      EXPECT_EQ(lens[static_cast<int64_t>(i)].item<int64_t>(), o.row_max_new_tokens[i]) << "row " << i;
      EXPECT_EQ(g.finish_reasons[i], FinishReason::kLength);
    }
    EXPECT_EQ(g.response_ids.size(1), 7);
  }
  // A stop token ends a row with kStopToken and is kept; with greedy decoding the first greedy
  // token of row 0 is made a stop token.
  SamplingOptions s;
  s.greedy = true;
  s.max_new_tokens = 5;
  const auto first = generate(m, rows, s);
  s.stop_token_ids = {first.response_ids[0][0].item<int64_t>()};
  const auto want = generate(m, rows, s);
  const auto got = generate_paged(m, rows, s, EngineOptions{.max_batch = 2, .block_size = 3});
  EXPECT_EQ(got.finish_reasons[0], FinishReason::kStopToken);
  EXPECT_EQ(got.finish_reasons, want.finish_reasons);
  EXPECT_TRUE(torch::equal(got.response_ids, want.response_ids));
}

// Continuous batching, counted by hand: limits {1, 5, 2, 3, 1}, two slots, distinct prompts, no
// EOS. Admission fills free slots in row order; a row's first token comes from its prefill, each
// later one from a decode step:
//   step 1: r1        (r0 done after its first token; r2 admitted after)
//   step 2: r1 r2     step 3: r1 (r2 done; r3 admitted after)
//   step 4: r1 r3     step 5: r3 (r1 done; r4 admitted and done after its first token)
// 5 steps, 7 decode tokens (= sum of limit - 1), 5 prefills of the prompts' tokens.
TEST(RolloutEngine, ContinuousBatchingRefillsFreedSlots) {
  auto m = tiny_model("qwen2", 4);
  SamplingOptions o;
  o.row_max_new_tokens = {1, 5, 2, 3, 1};
  o.eos_token_ids = {1000};
  const auto rows = random_prompts(50, 4, {3, 4, 5, 6, 7});
  EngineStats st;
  const auto g = generate_paged(m, rows, o, EngineOptions{.max_batch = 2, .block_size = 4}, &st);
  EXPECT_EQ(st.decode_steps, 5);
  EXPECT_EQ(st.decode_tokens, 7);
  EXPECT_EQ(st.prefill_tokens, 3 + 4 + 5 + 6 + 7);
  EXPECT_EQ(st.reused_tokens, 0);
  EXPECT_EQ(st.preemptions, 0);
  EXPECT_EQ(generated(g), 12);
}

// Shared prefixes, counted by hand (block size 4):
//  - one prompt of 8 tokens, 3 samples, 2 new tokens each: the prompt prefills once (8 tokens, 2
//    full blocks); the other two samples reuse its 8 (16 reused); each sample's second token needs
//    a block of its own at position 8: peak 2 + 3 = 5 blocks; one decode step of 3 rows.
//  - prompts sharing an 8-token header (2 full blocks): the first computes 10 tokens, the next ones
//    only their tails (12 - 8 and 11 - 8), the header's 8 tokens reused by each.
TEST(RolloutEngine, SharedPrefixesPrefillOnce) {
  auto m = tiny_model("llama", 6);
  SamplingOptions o;
  o.max_new_tokens = 2;
  o.eos_token_ids = {1000};
  EngineStats st;
  const auto rows = repeat_rows(random_prompts(50, 6, {8}), 3);
  auto g = generate_paged(m, rows, o, EngineOptions{.max_batch = 8, .block_size = 4}, &st);
  EXPECT_EQ(st.prefill_tokens, 8);
  EXPECT_EQ(st.reused_tokens, 16);
  EXPECT_EQ(st.peak_blocks, 5);
  EXPECT_EQ(st.decode_steps, 1);
  EXPECT_EQ(st.decode_tokens, 3);
  EXPECT_EQ(st.block_bytes, 2 * 2 * 2 * 4 * 8 * 4);  // K and V, 2 layers, 2 kv heads, 4 slots, head_dim 8, fp32
  EXPECT_EQ(st.peak_prefill_cache_bytes, dense_kv_bytes(m, 1, 8));  // the prompt's transient dense cache
  EXPECT_EQ(st.peak_kv_bytes(), 5 * st.block_bytes + st.peak_prefill_cache_bytes);

  const std::vector<int64_t> header = {5, 6, 7, 8, 9, 10, 11, 12};
  const auto prompts = random_prompts(50, 8, {10, 12, 11}, header);
  const auto want = generate(m, prompts, o);
  g = generate_paged(m, prompts, o, EngineOptions{.max_batch = 8, .block_size = 4}, &st);
  EXPECT_EQ(st.prefill_tokens, 10 + 4 + 3);
  EXPECT_EQ(st.reused_tokens, 8 + 8);
  EXPECT_TRUE(torch::equal(g.response_ids, want.response_ids));
  EXPECT_TRUE(torch::allclose(g.logprobs, want.logprobs, 0, 1e-5));
  // Without the prefix cache each prompt computes all of its tokens.
  g = generate_paged(m, prompts, o, EngineOptions{.max_batch = 8, .block_size = 4, .prefix_cache = false}, &st);
  EXPECT_EQ(st.prefill_tokens, 10 + 12 + 11);
  EXPECT_EQ(st.reused_tokens, 0);
  EXPECT_TRUE(torch::equal(g.response_ids, want.response_ids));
}

// A sliding-window model through batched prefills whose rows hold different numbers of tokens
// (prefix-cache hits of a shared header, tails of several lengths, preempted rows recomputed):
// each row's tokens stay one contiguous run in the prefill's scratch cache, so the window counts
// positions and the log-probs are still the learner's.
TEST(RolloutEngine, SlidingWindowThroughPrefixHitsAndPreemption) {
  auto m = tiny_model("mistral", 21, /*tie=*/false, /*window=*/3);
  SamplingOptions o;
  o.max_new_tokens = 8;
  o.temperature = 0.9;
  o.seed = 4;
  o.eos_token_ids = {1000};
  const std::vector<int64_t> header = {5, 6, 7, 8, 9, 10, 11, 12};
  const auto rows = repeat_rows(random_prompts(50, 21, {9, 14, 11, 10, 13}, header), 2);
  const auto want = generate(m, rows, o);
  for (int64_t blocks : {int64_t{0}, int64_t{12}}) {
    SCOPED_TRACE("blocks " + std::to_string(blocks));
    EngineStats st;
    const auto got = generate_paged(m, rows, o, EngineOptions{.max_batch = 4, .block_size = 4, .num_blocks = blocks}, &st);
    EXPECT_GT(st.reused_tokens, 0);
    if (blocks > 0) {
      EXPECT_GT(st.preemptions, 0);
    }
    torch::NoGradGuard ng;
    const auto tf = sequence_logprobs(m, got.prompt_ids, got.prompt_mask, got.response_ids, got.response_mask,
                                      {.temperature = 0.9});
    EXPECT_TRUE(torch::allclose(got.logprobs, tf.logprobs, 0, 1e-5)) << (got.logprobs - tf.logprobs).abs().max().item<double>();
    EXPECT_TRUE(torch::equal(got.response_ids, want.response_ids));
  }
}

// A pool too small for every admitted row preempts the newest and recomputes it later: the rows
// sample the same tokens as with a pool that never runs out. One too small for a single sequence
// is an error that names the numbers.
TEST(RolloutEngine, PreemptionRecomputesAndKeepsTheTokens) {
  auto m = tiny_model("mistral", 9);
  SamplingOptions o;
  o.max_new_tokens = 14;
  o.temperature = 0.9;
  o.seed = 77;
  o.eos_token_ids = {1000};
  const auto rows = repeat_rows(random_prompts(50, 9, {5, 7, 3}), 2);
  const auto want = generate(m, rows, o);
  EngineStats st;
  // 4 slots, blocks of 2 tokens: a row grows to 21 tokens (11 blocks); 16 blocks hold one row and a bit.
  const auto got = generate_paged(m, rows, o, EngineOptions{.max_batch = 4, .block_size = 2, .num_blocks = 16}, &st);
  EXPECT_GT(st.preemptions, 0);
  EXPECT_LE(st.peak_blocks, 16);
  EXPECT_TRUE(torch::equal(got.response_ids, want.response_ids));
  EXPECT_TRUE(torch::allclose(got.logprobs, want.logprobs, 0, 1e-5));

  try {
    generate_paged(m, rows, o, EngineOptions{.max_batch = 4, .block_size = 2, .num_blocks = 5});
    ADD_FAILURE() << "no error for a pool smaller than one sequence";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot hold one sequence"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("5 blocks of 2 tokens"), std::string::npos) << e.what();
  }
}

// The default pool is what the static engine would allocate for max_batch rows; a GRPO-shaped
// batch (shared prompts, lengths that vary) peaks far below it.
TEST(RolloutEngine, DefaultPoolAndPeakAgainstTheDenseCache) {
  auto m = tiny_model("llama", 11);
  SamplingOptions o;
  o.max_new_tokens = 24;
  o.eos_token_ids = {1000};
  o.row_max_new_tokens.clear();
  const auto rows = repeat_rows(random_prompts(50, 11, {12, 20}), 4);  // 8 rows, longest prompt 20
  std::mt19937 rng(3);
  for (size_t i = 0; i < rows.size(); ++i) o.row_max_new_tokens.push_back(1 + static_cast<int64_t>(rng() % 24));
  EngineStats st;
  generate_paged(m, rows, o, EngineOptions{.max_batch = 8, .block_size = 4}, &st);
  const int64_t max_new = *std::max_element(o.row_max_new_tokens.begin(), o.row_max_new_tokens.end());
  EXPECT_EQ(st.pool_blocks, 8 * ((20 + max_new + 3) / 4));
  EXPECT_LT(st.peak_kv_bytes(), dense_kv_bytes(m, 8, 20 + max_new));
  EXPECT_EQ(dense_kv_bytes(m, 8, 20 + max_new), 2 * 2 * 8 * 2 * (20 + max_new) * 8 * 4);
}

TEST(RolloutEngine, InputErrors) {
  auto m = tiny_model("llama", 1);
  SamplingOptions o;
  EXPECT_THROW(generate_paged(m, {}, o, {}), c10::Error);
  EXPECT_THROW(generate_paged(m, {{}}, o, {}), c10::Error);
  EXPECT_THROW(generate_paged(m, {{3}}, o, EngineOptions{.max_batch = 0}), c10::Error);
  EXPECT_THROW(generate_paged(m, {{3}}, o, EngineOptions{.block_size = 0}), c10::Error);
  o.row_max_new_tokens = {1, 2};
  EXPECT_THROW(generate_paged(m, {{3}}, o, {}), c10::Error);
}

// On CUDA (skipped without a device): the pool lives on the GPU, slots are written with index_put_
// and attention gathers each row's blocks (paged_attention_reference); greedy rows match the CPU
// engine's and the log-probs stay the learner's.
TEST(RolloutEngineGpu, MatchesCpuAndKeepsLogprobContract) {
  if (!compat::cuda_available()) GTEST_SKIP() << "no CUDA device";
  auto cpu = tiny_model("mistral", 23, /*tie=*/false, /*window=*/3);
  auto gpu = cpu.clone();
  const auto dev = at::Device(at::kCUDA, 0);
  gpu.to(dev);
  const auto rows = repeat_rows(random_prompts(50, 23, {4, 9, 6}), 3);
  SamplingOptions greedy;
  greedy.greedy = true;
  greedy.max_new_tokens = 8;
  const EngineOptions eo{.max_batch = 4, .block_size = 4, .num_blocks = 14};
  EXPECT_TRUE(torch::equal(generate_paged(cpu, rows, greedy, eo).response_ids,
                           generate_paged(gpu, rows, greedy, eo).response_ids));
  SamplingOptions o;
  o.max_new_tokens = 8;
  o.seed = 5;
  const auto g = generate_paged(gpu, rows, o, eo);
  torch::NoGradGuard ng;
  const auto tf = sequence_logprobs(gpu, g.prompt_ids.to(dev), g.prompt_mask.to(dev), g.response_ids.to(dev),
                                    g.response_mask.to(dev));
  EXPECT_TRUE(torch::allclose(g.logprobs, tf.logprobs.cpu(), 0, 1e-4));
}

}  // namespace
}  // namespace keel::models
