// Tests for models/generate and models/logprobs: the LOG-PROB CONTRACT (sampler log-probs equal
// teacher-forced ones within 1e-5 in fp32), sampling against a slow reference, seeds, stop
// conditions, greedy decoding against full recomputation, padding invariance.
#include "models/generate.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "models/compat.h"
#include "models/logprobs.h"
#include "tests/models/test_util.h"

namespace keel::models {
namespace {

using testing::random_prompts;
using testing::tiny_model;

// Slow teacher forcing: each response token scored by a fresh full forward over its unpadded prefix.
at::Tensor slow_logprobs(Transformer& m, const GenerateOutput& g, double temperature) {
  torch::NoGradGuard ng;
  const int64_t n = g.response_ids.size(0), r = g.response_ids.size(1);
  auto out = torch::zeros({n, r});
  for (int64_t i = 0; i < n; ++i) {
    std::vector<int64_t> seq;
    for (int64_t j = 0; j < g.prompt_ids.size(1); ++j)
      if (g.prompt_mask[i][j].item<int64_t>()) seq.push_back(g.prompt_ids[i][j].item<int64_t>());
    for (int64_t t = 0; t < r && g.response_mask[i][t].item<int64_t>(); ++t) {
      auto ids = torch::tensor(seq, torch::kLong).unsqueeze(0);
      auto logits = m.forward(ids)[0][-1] / temperature;
      const int64_t tok = g.response_ids[i][t].item<int64_t>();
      out[i][t] = torch::log_softmax(logits, -1)[tok];
      seq.push_back(tok);
    }
  }
  return out;
}

// THE LOG-PROB CONTRACT: at temperature 1 without truncation, generate()'s log-probs equal
// sequence_logprobs() of the same sequences within 1e-5 (fp32), over families, ties, windows, seeds.
TEST(Generate, LogprobContract) {
  const std::vector<std::string> types = {"llama", "qwen2", "mistral"};
  for (uint64_t seed = 0; seed < 12; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    auto m = tiny_model(types[seed % 3], seed, /*tie=*/seed % 2, /*window=*/seed % 3 == 2 ? 3 : 0);
    SamplingOptions o;
    o.max_new_tokens = 7;
    o.seed = seed;
    const auto g = generate(m, random_prompts(50, seed, {3, 6, 1, 4}), o);
    torch::NoGradGuard ng;
    const auto tf = sequence_logprobs(m, g.prompt_ids, g.prompt_mask, g.response_ids, g.response_mask);
    EXPECT_TRUE(torch::allclose(g.logprobs, tf.logprobs, 0, 1e-5)) << (g.logprobs - tf.logprobs).abs().max().item<double>();
    EXPECT_TRUE(((g.logprobs * (1 - g.response_mask)).abs().sum() == 0).item<bool>());  // zero at padding
    if (seed < 3) {  // and both against the slow prefix-by-prefix recomputation
      EXPECT_TRUE(torch::allclose(tf.logprobs, slow_logprobs(m, g, 1.0), 0, 1e-5));
    }
  }
}

// At another temperature the sampler reports log_softmax(logits / T) — what sequence_logprobs(T) gives —
// also with top-k / top-p truncation (the [interp] in generate.h).
TEST(Generate, LogprobContractAtTemperatureWithTruncation) {
  auto m = tiny_model("qwen2", 5);
  SamplingOptions o;
  o.max_new_tokens = 6;
  o.temperature = 0.7;
  o.top_k = 10;
  o.top_p = 0.9;
  o.seed = 3;
  const auto g = generate(m, random_prompts(50, 5, {2, 5, 3}), o);
  torch::NoGradGuard ng;
  const auto tf = sequence_logprobs(m, g.prompt_ids, g.prompt_mask, g.response_ids, g.response_mask,
                                    {.temperature = 0.7, .entropy = true});
  EXPECT_TRUE(torch::allclose(g.logprobs, tf.logprobs, 0, 1e-5));
  EXPECT_TRUE(torch::allclose(tf.logprobs, slow_logprobs(m, g, 0.7), 0, 1e-5));
  // Entropy: -sum p log p of the temperature-scaled distribution, checked on one position.
  auto full = sequence_logprobs(m, g.prompt_ids, g.prompt_mask, g.response_ids, g.response_mask, {.temperature = 0.7, .entropy = true});
  ASSERT_TRUE(full.entropy.defined());
  EXPECT_TRUE((full.entropy >= 0).all().item<bool>());
  auto ids = torch::cat({g.prompt_ids.narrow(0, 0, 1), g.response_ids.narrow(0, 0, 1).narrow(1, 0, 1)}, 1);
  auto mask = torch::cat({g.prompt_mask.narrow(0, 0, 1), torch::ones({1, 1}, torch::kLong)}, 1);
  auto logp = torch::log_softmax(m.forward(ids, mask)[0][g.prompt_ids.size(1) - 1] / 0.7, -1);
  EXPECT_NEAR(full.entropy[0][0].item<double>(), -(logp.exp() * logp).sum().item<double>(), 1e-5);
}

TEST(Generate, SequenceLogprobsIsDifferentiable) {
  auto m = tiny_model("llama", 2);
  auto [ids, mask] = left_pad(random_prompts(50, 2, {2, 4}), 0);
  auto resp = torch::randint(0, 50, {2, 3}, torch::kLong);
  auto lp = sequence_logprobs(m, ids, mask, resp, torch::ones({2, 3}, torch::kLong)).logprobs;
  lp.sum().backward();
  EXPECT_TRUE(m.named_parameters().at("model.embed_tokens.weight").grad().defined());
}

// Padding-free sequence_logprobs equals the padded pass: log-probs, entropy, values, the hidden
// summary at every real position, and the gradients, with multi-turn response_attention (seen
// observation tokens that are not the policy's) and a row whose response is empty.
TEST(Generate, PaddingFreeLogprobsMatchThePaddedPass) {
  const std::vector<std::string> types = {"llama", "qwen2", "mistral", "qwen3"};
  for (uint64_t seed = 0; seed < 8; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    auto m = tiny_model(types[seed % 4], seed, /*tie=*/seed % 2, /*window=*/seed % 3 == 2 ? 3 : 0);
    m.add_value_head();
    m.train(true);
    auto [pids, pmask] = left_pad(random_prompts(50, seed, {3, 6, 1, 4}), 0);
    auto gen = at::detail::createCPUGenerator(seed);
    const auto rids = at::randint(1, 50, {4, 6}, gen, torch::kLong);
    // Seen lengths 6, 4, 0, 5; the policy's tokens are a subset (row 1: an observation at 1..2).
    const auto seen = torch::tensor({1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 0}, torch::kLong)
                          .view({4, 6});
    const auto rmask = torch::tensor({1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 0, 0}, torch::kLong)
                           .view({4, 6});
    LogprobOptions o;
    o.temperature = 0.8;
    o.entropy = true;
    o.values = true;
    o.response_attention = seen;
    o.hidden_reduce = [](const at::Tensor& hidden, const at::Tensor&) { return hidden.flatten(1); };
    const auto run = [&](bool packed) {
      for (auto& p : m.parameters()) p.mutable_grad() = at::Tensor();
      o.padding_free = packed;
      auto out = sequence_logprobs(m, pids, pmask, rids, rmask, o);
      (out.logprobs.sum() + 0.3 * out.entropy.sum() + 0.1 * out.values.pow(2).sum()).backward();
      std::map<std::string, at::Tensor> g;
      for (auto& [n, p] : m.named_parameters()) g[n] = p.grad().clone();
      return std::make_pair(out, g);
    };
    const auto [padded, g_padded] = run(false);
    const auto [packed, g_packed] = run(true);
    EXPECT_TRUE(torch::allclose(packed.logprobs, padded.logprobs, 0, 1e-5));
    EXPECT_TRUE(torch::allclose(packed.entropy, padded.entropy, 0, 1e-5));
    EXPECT_TRUE(torch::allclose(packed.values, padded.values, 0, 1e-5));
    EXPECT_TRUE((packed.logprobs.narrow(0, 2, 1) == 0).all().item<bool>());  // the empty response
    // The summary: equal wherever the padded pass reads a real token (prompt end and seen prefix).
    const auto real = torch::cat({torch::ones({4, 1}, torch::kLong), seen.narrow(1, 0, 5)}, 1).to(torch::kFloat);
    const auto hp = padded.hidden_reduced.view({4, 6, -1}) * real.unsqueeze(-1);
    EXPECT_TRUE(torch::allclose(packed.hidden_reduced.view({4, 6, -1}), hp, 0, 1e-5));
    for (const auto& [n, g] : g_padded)  // fp32 sums in another order: relative to the largest entry
      EXPECT_LE((g_packed.at(n) - g).abs().max().item<double>(), 2e-5 * (1 + g.abs().max().item<double>())) << n;
  }
}

TEST(Generate, SeededAndReproducible) {
  auto m = tiny_model("qwen2", 1);
  const auto prompts = random_prompts(50, 1, {4, 2, 5});
  SamplingOptions o;
  o.max_new_tokens = 8;
  o.eos_token_ids = {999};  // never sampled: all rows run to max_new_tokens
  o.seed = 17;
  const auto a = generate(m, prompts, o);
  const auto b = generate(m, prompts, o);
  EXPECT_TRUE(torch::equal(a.response_ids, b.response_ids));
  EXPECT_TRUE(torch::equal(a.logprobs, b.logprobs));
  o.seed = 18;
  const auto c = generate(m, prompts, o);
  EXPECT_FALSE(torch::equal(a.response_ids, c.response_ids));
  // A row's sample depends on its prompt, row index and seed only: change the other rows (and the
  // padding width) and row 0 is unchanged.
  o.seed = 17;
  auto other = prompts;
  other[1] = {7, 8, 9, 10, 11, 12, 13};
  other[2] = {5};
  const auto d = generate(m, other, o);
  EXPECT_TRUE(torch::equal(d.response_ids[0], a.response_ids[0]));
  EXPECT_TRUE(torch::allclose(d.logprobs[0], a.logprobs[0], 0, 1e-5));
}

// first_row: rows 1..2 generated alone with first_row = 1 sample exactly what they sample in the
// whole batch (how chunked rollouts and data-parallel ranks stay equal to one call).
TEST(Generate, FirstRowOffsetsTheRowSeeds) {
  auto m = tiny_model("llama", 3);
  const auto prompts = random_prompts(50, 3, {4, 2, 5});
  SamplingOptions o;
  o.max_new_tokens = 6;
  o.eos_token_ids = {999};
  o.seed = 5;
  const auto all = generate(m, prompts, o);
  o.first_row = 1;
  const auto tail = generate(m, std::vector<std::vector<int64_t>>(prompts.begin() + 1, prompts.end()), o);
  EXPECT_TRUE(torch::equal(tail.response_ids, all.response_ids.slice(0, 1)));
  EXPECT_TRUE(torch::allclose(tail.logprobs, all.logprobs.slice(0, 1), 0, 1e-5));
  o.first_row = 0;
  const auto shifted = generate(m, std::vector<std::vector<int64_t>>(prompts.begin() + 1, prompts.end()), o);
  EXPECT_FALSE(torch::equal(shifted.response_ids, all.response_ids.slice(0, 1)));
}

// Greedy decoding picks the argmax of full recomputation at every step, and a batched, padded row
// decodes exactly like the same prompt alone.
TEST(Generate, GreedyMatchesFullRecomputeAndPaddingInvariant) {
  auto m = tiny_model("mistral", 8, false, /*window=*/4);
  const auto prompts = random_prompts(50, 8, {5, 1, 3});
  SamplingOptions o;
  o.greedy = true;
  o.max_new_tokens = 6;
  o.eos_token_ids = {999};
  const auto g = generate(m, prompts, o);
  torch::NoGradGuard ng;
  for (size_t i = 0; i < prompts.size(); ++i) {
    std::vector<int64_t> seq = prompts[i];
    for (int64_t t = 0; t < 6; ++t) {
      auto logits = m.forward(torch::tensor(seq, torch::kLong).unsqueeze(0))[0][-1];
      const int64_t tok = g.response_ids[static_cast<int64_t>(i)][t].item<int64_t>();
      EXPECT_EQ(tok, logits.argmax().item<int64_t>()) << "row " << i << " step " << t;
      seq.push_back(tok);
    }
    const auto alone = generate(m, std::vector<std::vector<int64_t>>{prompts[i]}, o);
    EXPECT_TRUE(torch::equal(alone.response_ids[0], g.response_ids[static_cast<int64_t>(i)])) << "row " << i;
  }
}

// EOS / stop tokens end each row at the first occurrence (token kept, padding after), rows that
// never hit one end with kLength; the batch stops when all rows are done.
TEST(Generate, StopConditions) {
  auto m = tiny_model("llama", 4);
  const auto prompts = random_prompts(50, 4, {3, 6, 2, 4});
  SamplingOptions o;
  o.greedy = true;
  o.max_new_tokens = 10;
  o.eos_token_ids = {999};
  o.pad_token_id = 0;
  const auto free_run = generate(m, prompts, o);  // reference: no stops
  ASSERT_EQ(free_run.response_ids.size(1), 10);
  for (auto r : free_run.finish_reasons) EXPECT_EQ(r, FinishReason::kLength);
  EXPECT_TRUE(torch::equal(free_run.response_mask, torch::ones({4, 10}, torch::kLong)));

  const int64_t eos_tok = free_run.response_ids[0][2].item<int64_t>();
  const int64_t stop_tok = free_run.response_ids[1][4].item<int64_t>();
  for (int variant = 0; variant < 3; ++variant) {
    SCOPED_TRACE("variant " + std::to_string(variant));
    auto s = o;
    if (variant == 0) s.eos_token_ids = {eos_tok};
    if (variant == 1) s.stop_token_ids = {stop_tok};
    if (variant == 2) s.eos_token_ids = {eos_tok}, s.stop_token_ids = {stop_tok, eos_tok};  // eos wins ties
    const auto g = generate(m, prompts, s);
    int64_t longest = 0;
    for (int64_t i = 0; i < 4; ++i) {
      int64_t len = 10;
      FinishReason why = FinishReason::kLength;
      for (int64_t t = 0; t < 10; ++t) {
        const int64_t tok = free_run.response_ids[i][t].item<int64_t>();
        const bool is_eos = std::count(s.eos_token_ids.begin(), s.eos_token_ids.end(), tok) > 0;
        const bool is_stop = std::count(s.stop_token_ids.begin(), s.stop_token_ids.end(), tok) > 0;
        if (is_eos || is_stop) {
          len = t + 1;
          why = is_eos ? FinishReason::kEos : FinishReason::kStopToken;
          break;
        }
      }
      longest = std::max(longest, len);
      EXPECT_EQ(g.finish_reasons[static_cast<size_t>(i)], why) << "row " << i;
      EXPECT_EQ(g.response_mask[i].sum().item<int64_t>(), len) << "row " << i;
      EXPECT_TRUE(torch::equal(g.response_ids[i].narrow(0, 0, len), free_run.response_ids[i].narrow(0, 0, len)));
      const int64_t r = g.response_ids.size(1);
      if (len < r) {
        EXPECT_TRUE((g.response_ids[i].narrow(0, len, r - len) == 0).all().item<bool>());
        EXPECT_TRUE((g.logprobs[i].narrow(0, len, r - len) == 0).all().item<bool>());
      }
    }
    EXPECT_EQ(g.response_ids.size(1), longest);
  }
  // Default EOS comes from the model config.
  EXPECT_EQ(m.config().eos_token_ids, (std::vector<int64_t>{2}));
  auto none = o;
  none.max_new_tokens = 0;
  const auto empty = generate(m, prompts, none);
  EXPECT_EQ(empty.response_ids.sizes(), (at::IntArrayRef{4, 0}));
  EXPECT_EQ(empty.finish_reasons[0], FinishReason::kLength);
  EXPECT_STREQ(finish_reason_name(FinishReason::kStopToken), "stop_token");
}

// Slow reference for one row of sample_tokens: temperature, top-k (ties kept), top-p, inverse CDF.
int64_t slow_sample(const std::vector<double>& logits, double u, const SamplingOptions& o) {
  const size_t v = logits.size();
  std::vector<double> s(v);
  for (size_t i = 0; i < v; ++i) s[i] = logits[i] / o.temperature;
  std::vector<bool> keep(v, true);
  if (o.top_k > 0 && static_cast<size_t>(o.top_k) < v) {
    auto sorted = s;
    std::sort(sorted.begin(), sorted.end(), std::greater<>());
    const double kth = sorted[static_cast<size_t>(o.top_k - 1)];
    for (size_t i = 0; i < v; ++i) keep[i] = s[i] >= kth;
  }
  if (o.top_p < 1.0) {
    std::vector<size_t> order;
    for (size_t i = 0; i < v; ++i)
      if (keep[i]) order.push_back(i);
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return s[a] > s[b]; });
    double z = 0;
    for (size_t i : order) z += std::exp(s[i]);
    double before = 0;
    for (size_t i : order) {
      if (before > o.top_p) keep[i] = false;
      before += std::exp(s[i]) / z;
    }
  }
  double z = 0;
  for (size_t i = 0; i < v; ++i)
    if (keep[i]) z += std::exp(s[i]);
  double cum = 0;
  for (size_t i = 0; i < v; ++i) {
    if (!keep[i]) continue;
    cum += std::exp(s[i]) / z;
    if (cum > u) return static_cast<int64_t>(i);
  }
  for (size_t i = v; i-- > 0;)
    if (keep[i]) return static_cast<int64_t>(i);
  return -1;
}

TEST(Generate, SampleTokensMatchesSlowReference) {
  int checked = 0, skipped = 0;
  for (uint64_t seed = 0; seed < 60; ++seed) {
    std::mt19937 rng(static_cast<uint32_t>(seed));
    SamplingOptions o;
    o.temperature = 0.3 + 0.2 * (rng() % 8);
    o.top_k = static_cast<int64_t>(rng() % 6);  // 0 = off
    o.top_p = (rng() % 2) ? 1.0 : 0.2 + 0.1 * (rng() % 8);
    const int64_t n = 6, v = 3 + static_cast<int64_t>(rng() % 12);
    torch::manual_seed(seed);
    auto logits = torch::randn({n, v}) * 2;
    auto u = torch::rand({n}, torch::kDouble);
    const auto got = sample_tokens(logits, u, o);
    for (int64_t i = 0; i < n; ++i) {
      std::vector<double> row(logits[i].data_ptr<float>(), logits[i].data_ptr<float>() + v);
      const double ui = u[i].item<double>();
      // Skip draws within float rounding of a CDF boundary (the two implementations sum differently).
      bool near_boundary = false;
      for (double eps : {-1e-5, 1e-5}) near_boundary |= slow_sample(row, ui + eps, o) != slow_sample(row, ui, o);
      if (near_boundary) {
        ++skipped;
        continue;
      }
      EXPECT_EQ(got[i].item<int64_t>(), slow_sample(row, ui, o)) << "seed " << seed << " row " << i;
      ++checked;
    }
  }
  EXPECT_GT(checked, 300);
  EXPECT_LT(skipped, 5);
}

TEST(Generate, SampleTokensFrequenciesAndEdgeCases) {
  // Empirical frequencies with evenly spaced uniforms equal the softmax probabilities.
  auto logits = torch::tensor({{0.0f, 1.0f, -1.0f, 2.0f}});
  SamplingOptions o;
  const int draws = 4000;
  std::vector<int> counts(4, 0);
  for (int d = 0; d < draws; ++d) {
    auto u = torch::tensor({(d + 0.5) / draws}, torch::kDouble);
    ++counts[static_cast<size_t>(sample_tokens(logits, u, o)[0].item<int64_t>())];
  }
  const auto probs = torch::softmax(logits[0], 0);
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(counts[static_cast<size_t>(i)] / double(draws), probs[i].item<double>(), 1e-3);
  // top_k = 1 and a tiny top_p are argmax; u at the edges stays in range; greedy ignores u.
  auto many = torch::randn({5, 9});
  for (double uu : {0.0, 0.999999999}) {
    auto u = torch::full({5}, uu, torch::kDouble);
    EXPECT_TRUE(torch::equal(sample_tokens(many, u, {.top_k = 1}), many.argmax(-1)));
    EXPECT_TRUE(torch::equal(sample_tokens(many, u, {.top_p = 1e-6}), many.argmax(-1)));
    EXPECT_TRUE(torch::equal(sample_tokens(many, u, {.greedy = true}), many.argmax(-1)));
    auto t = sample_tokens(many, u, {});
    EXPECT_TRUE(((t >= 0) & (t < 9)).all().item<bool>());
  }
  // Masked-out tokens are never drawn.
  auto masked = torch::tensor({{-INFINITY, 0.0f, -INFINITY}});
  for (double uu : {0.0, 0.5, 0.9999}) EXPECT_EQ(sample_tokens(masked, torch::full({1}, uu, torch::kDouble), {})[0].item<int64_t>(), 1);
}

TEST(Generate, InputErrors) {
  auto m = tiny_model("llama", 0);
  EXPECT_THROW(left_pad({{1, 2}, {}}, 0), c10::Error);
  auto ids = torch::ones({1, 3}, torch::kLong);
  auto right_padded = torch::tensor({{1, 1, 0}});
  EXPECT_THROW(generate(m, ids, right_padded, {}), c10::Error);
  EXPECT_THROW(generate(m, ids, torch::ones({1, 3}, torch::kLong), {.top_p = 0.0}), c10::Error);
}

}  // namespace
}  // namespace keel::models

namespace keel::models {
namespace {

// On a CUDA machine: the same seed gives the same greedy tokens as on CPU, and the log-prob
// contract holds on the device. Skipped without CUDA.
TEST(GenerateGpu, MatchesCpuAndKeepsLogprobContract) {
  if (!compat::cuda_available()) GTEST_SKIP() << "no CUDA device";
  auto cpu = tiny_model("qwen2", 21);
  auto gpu = cpu.clone();
  gpu.to(at::Device(at::kCUDA, 0));
  const auto prompts = random_prompts(50, 21, {4, 1, 6});
  SamplingOptions greedy;
  greedy.greedy = true;
  greedy.max_new_tokens = 6;
  EXPECT_TRUE(torch::equal(generate(cpu, prompts, greedy).response_ids, generate(gpu, prompts, greedy).response_ids));
  SamplingOptions o;
  o.max_new_tokens = 6;
  o.seed = 5;
  const auto g = generate(gpu, prompts, o);
  torch::NoGradGuard ng;
  auto dev = at::Device(at::kCUDA, 0);
  const auto tf = sequence_logprobs(gpu, g.prompt_ids.to(dev), g.prompt_mask.to(dev), g.response_ids.to(dev),
                                    g.response_mask.to(dev));
  EXPECT_TRUE(torch::allclose(g.logprobs, tf.logprobs.cpu(), 0, 1e-4));
}

}  // namespace
}  // namespace keel::models
