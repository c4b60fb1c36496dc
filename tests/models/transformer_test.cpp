// Tests for models/transformer: HF parameter names, the forward pass against a slow loop reference
// (RoPE with scaling, GQA, bias, sliding window, left padding) over 60 random configs, KV-cache
// decoding against full recomputation, heads, activation checkpointing.
#include "models/transformer.h"

#include <cmath>
#include <numbers>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "models/transformer_impl.h"
#include "tests/models/test_util.h"

namespace keel::models {
namespace {

using testing::randomize;
using testing::tiny_config;

// ---- slow reference ------------------------------------------------------------------------------

// RoPE inverse frequencies, scalar code written from HF's _compute_*_parameters.
std::vector<double> ref_inv_freq(const ModelConfig& c) {
  std::vector<double> out;
  const auto& rs = c.rope_scaling;
  for (int64_t i = 0; i < c.head_dim / 2; ++i) {
    double f = 1.0 / std::pow(c.rope_theta, 2.0 * static_cast<double>(i) / static_cast<double>(c.head_dim));
    if (rs.type == RopeScalingType::kLinear) {
      f /= rs.factor;
    } else if (rs.type == RopeScalingType::kLlama3) {
      const double wavelen = 2 * std::numbers::pi / f;
      const double old = static_cast<double>(rs.original_max_position_embeddings);
      if (wavelen < old / rs.high_freq_factor) {
        // high frequency: unchanged
      } else if (wavelen > old / rs.low_freq_factor) {
        f /= rs.factor;  // low frequency: interpolated
      } else {
        const double smooth = (old / wavelen - rs.low_freq_factor) / (rs.high_freq_factor - rs.low_freq_factor);
        f = (1 - smooth) * f / rs.factor + smooth * f;
      }
    }
    out.push_back(f);
  }
  return out;
}

// Double-precision loop implementation of the whole model; logits [B, T, V], zero rows at padding.
at::Tensor reference_logits(const Transformer& m, const at::Tensor& ids, const at::Tensor& mask,
                            const at::Tensor& position_ids) {
  const auto& c = m.config();
  std::map<std::string, at::Tensor> p;
  for (auto& [n, t] : m.named_parameters()) p[n] = t.detach().to(torch::kDouble);
  const auto W = [&](const std::string& n) { return p.at(n); };
  const auto linear = [&](const std::string& pre, const at::Tensor& x) {
    auto y = torch::mv(W(pre + ".weight"), x);
    if (p.count(pre + ".bias")) y = y + W(pre + ".bias");
    return y;
  };
  const auto rmsnorm = [&](const std::string& n, const at::Tensor& x) {
    return W(n) * (x / std::sqrt((x * x).mean().item<double>() + c.rms_norm_eps));
  };
  const auto inv = ref_inv_freq(c);
  const int64_t B = ids.size(0), T = ids.size(1), D = c.head_dim, Hq = c.num_attention_heads;
  const int64_t rep = Hq / c.num_key_value_heads;
  auto out = torch::zeros({B, T, c.vocab_size}, torch::kDouble);
  const auto rope = [&](const at::Tensor& v, int64_t pos) {  // v [D]: pairs (i, i + D/2)
    auto r = v.clone();
    for (int64_t i = 0; i < D / 2; ++i) {
      const double a = v[i].item<double>(), b = v[i + D / 2].item<double>();
      const double th = static_cast<double>(pos) * static_cast<double>(static_cast<float>(inv[i]));
      r[i] = a * std::cos(th) - b * std::sin(th);
      r[i + D / 2] = b * std::cos(th) + a * std::sin(th);
    }
    return r;
  };
  for (int64_t b = 0; b < B; ++b) {
    std::vector<at::Tensor> x(T);
    for (int64_t t = 0; t < T; ++t) x[t] = W("model.embed_tokens.weight")[ids[b][t].item<int64_t>()];
    for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
      const std::string pre = "model.layers." + std::to_string(l);
      std::vector<at::Tensor> q(T), k(T), v(T);
      for (int64_t t = 0; t < T; ++t) {
        auto h = rmsnorm(pre + ".input_layernorm.weight", x[t]);
        q[t] = linear(pre + ".self_attn.q_proj", h).view({Hq, D});
        k[t] = linear(pre + ".self_attn.k_proj", h).view({c.num_key_value_heads, D});
        v[t] = linear(pre + ".self_attn.v_proj", h).view({c.num_key_value_heads, D});
        const int64_t pos = position_ids[b][t].item<int64_t>();
        if (c.qk_norm) {  // Qwen3: RMSNorm over each head before RoPE
          for (int64_t hh = 0; hh < Hq; ++hh) q[t][hh] = rmsnorm(pre + ".self_attn.q_norm.weight", q[t][hh].clone());
          for (int64_t hh = 0; hh < c.num_key_value_heads; ++hh)
            k[t][hh] = rmsnorm(pre + ".self_attn.k_norm.weight", k[t][hh].clone());
        }
        for (int64_t hh = 0; hh < Hq; ++hh) q[t][hh] = rope(q[t][hh].clone(), pos);
        for (int64_t hh = 0; hh < c.num_key_value_heads; ++hh) k[t][hh] = rope(k[t][hh].clone(), pos);
      }
      const int64_t window = c.layer_uses_sliding_window(l) ? c.sliding_window : 0;
      std::vector<at::Tensor> nx(T);
      for (int64_t t = 0; t < T; ++t) {
        if (mask[b][t].item<int64_t>() == 0) {
          nx[t] = x[t];
          continue;
        }
        auto attn = torch::zeros({Hq * D}, torch::kDouble);
        for (int64_t hh = 0; hh < Hq; ++hh) {
          std::vector<double> scores;
          std::vector<int64_t> keys;
          for (int64_t s = 0; s <= t; ++s) {
            if (mask[b][s].item<int64_t>() == 0) continue;
            if (window > 0 && t - s >= window) continue;
            scores.push_back(torch::dot(q[t][hh], k[s][hh / rep]).item<double>() / std::sqrt(static_cast<double>(D)));
            keys.push_back(s);
          }
          const double mx = *std::max_element(scores.begin(), scores.end());
          double z = 0;
          for (double& s : scores) z += (s = std::exp(s - mx));
          auto o = torch::zeros({D}, torch::kDouble);
          for (size_t i = 0; i < keys.size(); ++i) o += scores[i] / z * v[keys[i]][hh / rep];
          attn.narrow(0, hh * D, D).copy_(o);
        }
        auto h = x[t] + linear(pre + ".self_attn.o_proj", attn);
        auto n = rmsnorm(pre + ".post_attention_layernorm.weight", h);
        auto g = linear(pre + ".mlp.gate_proj", n);
        auto mlp = linear(pre + ".mlp.down_proj", g * torch::sigmoid(g) * linear(pre + ".mlp.up_proj", n));
        nx[t] = h + mlp;
      }
      x = nx;
    }
    for (int64_t t = 0; t < T; ++t) {
      if (mask[b][t].item<int64_t>() == 0) continue;
      auto h = rmsnorm("model.norm.weight", x[t]);
      const auto& head = c.tie_word_embeddings ? W("model.embed_tokens.weight") : W("lm_head.weight");
      out[b][t] = torch::mv(head, h);
    }
  }
  return out;
}

// Left-padded random batch: ids [B, T], mask [B, T] with row b having lens[b] real tokens.
std::pair<at::Tensor, at::Tensor> padded_batch(const std::vector<int64_t>& lens, int64_t T, int64_t vocab,
                                               at::Generator& gen) {
  const int64_t B = static_cast<int64_t>(lens.size());
  auto ids = at::randint(1, vocab, {B, T}, gen, torch::kLong);
  auto mask = torch::zeros({B, T}, torch::kLong);
  for (int64_t b = 0; b < B; ++b) {
    mask[b].narrow(0, T - lens[b], lens[b]).fill_(1);
    ids[b].narrow(0, 0, T - lens[b]).fill_(0);  // pad id 0
  }
  return {ids, mask};
}

// A random tiny config from `seed`: families, head layouts, bias, ties, rope scalings, windows.
ModelConfig random_config(uint64_t seed) {
  std::mt19937 rng(static_cast<uint32_t>(seed));
  const std::vector<std::string> families = {"llama", "qwen2", "mistral", "qwen3"};
  auto c = tiny_config(families[rng() % 4]);
  const int64_t heads[] = {2, 4};
  c.num_attention_heads = heads[rng() % 2];
  c.num_key_value_heads = (rng() % 2) ? c.num_attention_heads : 1 + (c.num_attention_heads == 4);  // MHA or GQA
  if (c.num_attention_heads % c.num_key_value_heads != 0) c.num_key_value_heads = 1;
  c.head_dim = (rng() % 2) ? 8 : 4;
  c.hidden_size = (rng() % 2) ? 32 : 16;
  c.tie_word_embeddings = rng() % 2;
  c.attention_bias = c.model_type == "qwen2" || ((c.model_type == "llama" || c.model_type == "qwen3") && rng() % 2);
  c.o_proj_bias = (c.model_type == "llama" || c.model_type == "qwen3") && c.attention_bias;
  c.mlp_bias = c.model_type == "llama" && rng() % 2;
  c.rope_theta = (rng() % 2) ? 10000.0 : 100.0;
  switch (rng() % 3) {
    case 0: c.rope_scaling.type = RopeScalingType::kNone; break;
    case 1: c.rope_scaling = {RopeScalingType::kLinear, 2.0}; break;
    case 2: c.rope_scaling = {RopeScalingType::kLlama3, 8.0, 1.0, 4.0, 64}; break;
  }
  if (c.model_type != "llama" && rng() % 2) {
    c.sliding_window = 2 + rng() % 3;
    c.sliding_window_first_layer = c.model_type == "qwen2" || c.model_type == "qwen3" ? 1 : 0;
  }
  return c;
}

// ---- tests ---------------------------------------------------------------------------------------

TEST(Transformer, HfParameterNames) {
  auto c = tiny_config("qwen2");
  Transformer m(c);
  std::set<std::string> names;
  for (auto& [n, t] : m.named_parameters()) names.insert(n);
  std::set<std::string> expected = {"model.embed_tokens.weight", "model.norm.weight", "lm_head.weight"};
  for (int l = 0; l < 2; ++l) {
    const std::string pre = "model.layers." + std::to_string(l) + ".";
    for (const char* s : {"self_attn.q_proj.weight", "self_attn.q_proj.bias", "self_attn.k_proj.weight",
                          "self_attn.k_proj.bias", "self_attn.v_proj.weight", "self_attn.v_proj.bias",
                          "self_attn.o_proj.weight", "mlp.gate_proj.weight", "mlp.up_proj.weight",
                          "mlp.down_proj.weight", "input_layernorm.weight", "post_attention_layernorm.weight"})
      expected.insert(pre + s);
  }
  EXPECT_EQ(names, expected);
  EXPECT_EQ(m.named_parameters().at("model.layers.0.self_attn.k_proj.weight").sizes(), (at::IntArrayRef{16, 32}));
  // Tied: no lm_head; heads add score / value_head.
  c.tie_word_embeddings = true;
  Transformer t(c, {.lm_head = true, .value_head = true, .reward_head = true});
  EXPECT_FALSE(t.named_parameters().count("lm_head.weight"));
  EXPECT_EQ(t.named_parameters().at("score.weight").sizes(), (at::IntArrayRef{1, 32}));
  EXPECT_EQ(t.named_parameters().at("value_head.weight").sizes(), (at::IntArrayRef{1, 32}));
  // Qwen3: a q_norm and a k_norm of head_dim per layer, no q/k/v bias by default.
  Transformer q3(tiny_config("qwen3"));
  const auto named = q3.named_parameters();
  EXPECT_EQ(named.at("model.layers.1.self_attn.q_norm.weight").sizes(), (at::IntArrayRef{8}));
  EXPECT_EQ(named.at("model.layers.1.self_attn.k_norm.weight").sizes(), (at::IntArrayRef{8}));
  EXPECT_FALSE(named.count("model.layers.0.self_attn.q_proj.bias"));
  EXPECT_EQ(named.size(), names.size() - 6 + 4);  // qwen2's 6 q/k/v biases out, 4 norms in
}

TEST(Transformer, RopeInvFreqMatchesScalarFormulas) {
  for (auto type : {RopeScalingType::kNone, RopeScalingType::kLinear, RopeScalingType::kLlama3}) {
    auto c = tiny_config();
    c.head_dim = 16;
    c.rope_scaling = {type, 8.0, 1.0, 4.0, 64};
    const auto ref = ref_inv_freq(c);
    const auto got = rope_inv_freq(c);
    ASSERT_EQ(got.numel(), 8);
    for (int i = 0; i < 8; ++i) EXPECT_NEAR(got[i].item<double>(), ref[static_cast<size_t>(i)], 1e-6 * ref[static_cast<size_t>(i)]);
  }
}

// The vectorized forward against the loop reference: 60 random configs, padded batches, position offsets.
TEST(Transformer, ForwardMatchesSlowReference) {
  for (uint64_t seed = 0; seed < 60; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    const auto c = random_config(seed);
    Transformer m(c);
    randomize(m, seed);
    auto gen = at::detail::createCPUGenerator(seed);
    const int64_t T = 5;
    auto [ids, mask] = padded_batch({5, 3}, T, c.vocab_size, gen);
    auto pos = position_ids_from_mask(mask);
    if (seed % 3 == 0) pos = pos + 37;  // RoPE away from position 0
    torch::NoGradGuard g;
    const auto got = m.forward(ids, mask, pos).to(torch::kDouble);
    const auto ref = reference_logits(m, ids, mask, pos);
    const auto real = mask.to(torch::kBool).unsqueeze(-1);
    EXPECT_TRUE(torch::allclose(got * real, ref, 1e-4, 1e-4)) << (got * real - ref).abs().max().item<double>();
  }
}

// A left-padded row gives the same logits as the same tokens alone without padding or mask.
TEST(Transformer, LeftPaddingIsTransparent) {
  auto c = tiny_config("qwen2");
  Transformer m(c);
  randomize(m, 7);
  auto gen = at::detail::createCPUGenerator(7);
  auto [ids, mask] = padded_batch({6, 2, 4}, 6, c.vocab_size, gen);
  torch::NoGradGuard g;
  const auto batched = m.forward(ids, mask);
  for (int64_t b = 0; b < 3; ++b) {
    const int64_t n = mask[b].sum().item<int64_t>();
    const auto alone = m.forward(ids[b].narrow(0, 6 - n, n).unsqueeze(0));
    EXPECT_TRUE(torch::allclose(batched[b].narrow(0, 6 - n, n), alone[0], 1e-5, 1e-5)) << "row " << b;
  }
}

// KV-cache decoding (prefill, a chunk, then one token at a time) equals full recomputation.
TEST(Transformer, KvCacheMatchesFullRecompute) {
  for (uint64_t seed = 100; seed < 130; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    const auto c = random_config(seed);
    Transformer m(c);
    randomize(m, seed);
    auto gen = at::detail::createCPUGenerator(seed);
    const int64_t T = 9;
    // Rows of different prompt length, left-padded within the first 4 columns.
    auto [ids, mask] = padded_batch({9, 7, 6}, T, c.vocab_size, gen);
    torch::NoGradGuard g;
    const auto full = m.forward(ids, mask);
    auto cache = m.make_cache(3, T + 2);
    std::vector<at::Tensor> steps;
    const std::vector<std::pair<int64_t, int64_t>> chunks = {{0, 4}, {4, 2}, {6, 1}, {7, 1}, {8, 1}};
    for (auto [start, len] : chunks) {
      steps.push_back(m.forward(ids.narrow(1, start, len), mask.narrow(1, 0, start + len), {}, &cache));
      EXPECT_EQ(cache.length, start + len);
    }
    const auto cached = torch::cat(steps, 1);
    const auto real = mask.to(torch::kBool).unsqueeze(-1);
    EXPECT_TRUE(torch::allclose(cached * real, full * real, 1e-5, 1e-5))
        << (cached * real - full * real).abs().max().item<double>();
  }
}

TEST(Transformer, KvCacheWithoutMask) {
  auto c = tiny_config();
  Transformer m(c);
  randomize(m, 3);
  auto ids = torch::randint(0, c.vocab_size, {2, 6}, torch::kLong);
  torch::NoGradGuard g;
  const auto full = m.forward(ids);
  auto cache = m.make_cache(2, 6);
  auto a = m.forward(ids.narrow(1, 0, 3), {}, {}, &cache);
  auto b = m.forward(ids.narrow(1, 3, 3), {}, {}, &cache);
  EXPECT_TRUE(torch::allclose(torch::cat({a, b}, 1), full, 1e-5, 1e-5));
  EXPECT_THROW(m.forward(ids.narrow(1, 0, 1), {}, {}, &cache), c10::Error);  // capacity exceeded
}

TEST(Transformer, ValueAndRewardHeads) {
  auto c = tiny_config();
  Transformer m(c, {.lm_head = true, .value_head = true, .reward_head = true});
  randomize(m, 5);
  auto ids = torch::randint(0, c.vocab_size, {2, 4}, torch::kLong);
  torch::NoGradGuard g;
  const auto h = m.forward_hidden(ids);
  const auto v = m.values(h);
  const auto r = m.rewards(h);
  ASSERT_EQ(v.sizes(), (at::IntArrayRef{2, 4}));
  // linear (gemm) vs matmul with a vector (gemv) sum in different orders: values near 0 need an
  // absolute tolerance (the default atol 1e-8 failed on ULP-level differences).
  const auto v_ref = torch::matmul(h, m.named_parameters().at("value_head.weight")[0]);
  const auto r_ref = torch::matmul(h, m.named_parameters().at("score.weight")[0]);
  EXPECT_TRUE(torch::allclose(v, v_ref, 1e-5, 1e-6)) << (v - v_ref).abs().max().item<double>();
  EXPECT_TRUE(torch::allclose(r, r_ref, 1e-5, 1e-6)) << (r - r_ref).abs().max().item<double>();
  Transformer bare(c);
  EXPECT_THROW(bare.values(h), c10::Error);
  EXPECT_THROW(bare.rewards(h), c10::Error);
}

// A CPU model of 8 MB or more keeps its parameters in one arena of 2 MiB pages (fused_cpu.h
// pack_on_huge_pages: decode streams every weight), consecutive in registration order; a smaller
// one keeps ATen's allocations. Loading weights copies into the arena.
TEST(Transformer, LargeCpuModelsKeepTheirParametersInOneArena) {
  ModelConfig big = tiny_config();
  big.hidden_size = 256, big.intermediate_size = 688, big.num_hidden_layers = 4, big.vocab_size = 2048;
  Transformer model(big);
  auto params = model.parameters();
  int64_t bytes = 0;
  for (const auto& p : params) bytes += p.numel() * 4;
  ASSERT_GE(bytes, int64_t{8} << 20);
  const auto base = reinterpret_cast<uintptr_t>(params.front().data_ptr());
  EXPECT_EQ(base % (uintptr_t{2} << 20), 0u);
  for (size_t i = 1; i < params.size(); ++i)
    EXPECT_GT(reinterpret_cast<uintptr_t>(params[i].data_ptr()), reinterpret_cast<uintptr_t>(params[i - 1].data_ptr()));
  const auto last = reinterpret_cast<uintptr_t>(params.back().data_ptr()) + params.back().numel() * 4;
  EXPECT_LE(last - base, static_cast<uintptr_t>(bytes + 64 * static_cast<int64_t>(params.size())));
  Transformer copy = model.clone();  // load_state_dict copies into the clone's own arena
  EXPECT_NE(copy.parameters().front().data_ptr(), params.front().data_ptr());
  EXPECT_EQ(reinterpret_cast<uintptr_t>(copy.parameters().front().data_ptr()) % (uintptr_t{2} << 20), 0u);
  for (size_t i = 0; i < params.size(); ++i) EXPECT_TRUE(torch::equal(copy.parameters()[i], params[i])) << i;
}

TEST(Transformer, CloneIsDeepAndFreezeWorks) {
  auto c = tiny_config();
  Transformer m(c, {.lm_head = true, .value_head = true});
  randomize(m, 6);
  auto copy = m.clone();
  auto shared = m;  // handle copy: same parameters
  auto ids = torch::randint(0, c.vocab_size, {1, 4}, torch::kLong);
  torch::NoGradGuard g;
  EXPECT_TRUE(torch::equal(copy.forward(ids), m.forward(ids)));
  m.named_parameters().at("model.norm.weight").mul_(2);
  EXPECT_FALSE(torch::equal(copy.forward(ids), m.forward(ids)));
  EXPECT_TRUE(torch::equal(shared.forward(ids), m.forward(ids)));
  EXPECT_TRUE(copy.heads().value_head);
  copy.set_requires_grad(false);
  for (auto& p : copy.parameters()) EXPECT_FALSE(p.requires_grad());
  for (auto& p : m.parameters()) EXPECT_TRUE(p.requires_grad());
}

TEST(Transformer, LastTokenValues) {
  auto v = torch::tensor({{1.0, 2.0, 3.0}, {4.0, 5.0, 6.0}, {7.0, 8.0, 9.0}});
  auto mask = torch::tensor({{0, 1, 1}, {1, 1, 0}, {0, 1, 0}});
  // row 0: last real index 2 -> 3; row 1: index 1 -> 5; row 2: index 1 -> 8
  EXPECT_TRUE(torch::equal(last_token_values(v, mask), torch::tensor({3.0, 5.0, 8.0})));
  EXPECT_THROW(last_token_values(v, torch::zeros({3, 3})), c10::Error);
}

// Recomputation in backward gives the same gradients as storing activations.
TEST(Transformer, GradientCheckpointingMatches) {
  for (bool tie : {false, true}) {
    SCOPED_TRACE(tie ? "tied, no mask" : "untied, padded");
    auto c = tiny_config("qwen2");
    c.tie_word_embeddings = tie;
    Transformer m(c);
    randomize(m, 11);
    m.train(true);
    auto gen = at::detail::createCPUGenerator(11);
    auto [ids, mask] = padded_batch({5, 3}, 5, c.vocab_size, gen);
    const auto grads = [&](bool ckpt) {
      m.set_gradient_checkpointing(ckpt);
      for (auto& p : m.parameters()) p.mutable_grad() = at::Tensor();
      auto logits = tie ? m.forward(ids) : m.forward(ids, mask);  // undefined mask: the causal fast path
      (logits.pow(2).mean()).backward();
      std::map<std::string, at::Tensor> g;
      for (auto& [n, p] : m.named_parameters()) g[n] = p.grad().clone();
      return g;
    };
    const auto plain = grads(false);
    const auto ckpt = grads(true);
    for (const auto& [n, g] : plain) {
      ASSERT_TRUE(ckpt.at(n).defined()) << n;
      EXPECT_TRUE(torch::allclose(ckpt.at(n), g, 1e-5, 1e-6)) << n;
    }
  }
}

// Padding-free forward: sequences packed back to back give the hidden states of each run alone,
// and the same parameter gradients, over random configs (GQA, windows shorter than the sequences,
// biases, qk-norm, rope scalings), with and without activation checkpointing.
TEST(Transformer, PackedForwardMatchesEachSequenceAlone) {
  for (uint64_t seed = 0; seed < 12; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    const auto c = random_config(seed);
    Transformer m(c);
    randomize(m, seed + 100);
    m.train(true);
    auto gen = at::detail::createCPUGenerator(seed);
    const std::vector<int64_t> lens = {1 + static_cast<int64_t>(seed % 3), 7, 4, 9};
    std::vector<at::Tensor> seqs;
    for (const int64_t len : lens) seqs.push_back(at::randint(1, c.vocab_size, {1, len}, gen, torch::kLong));
    const auto weights = at::randn({1, 23, c.hidden_size}, gen);  // (1 + seed % 3) + 7 + 4 + 9 <= 23 tokens
    const auto grads = [&](bool packed, bool ckpt) {
      m.set_gradient_checkpointing(ckpt);
      for (auto& p : m.parameters()) p.mutable_grad() = at::Tensor();
      at::Tensor hidden;
      if (packed) {
        hidden = m.forward_hidden_packed(torch::cat(seqs, 1), lens);
      } else {
        std::vector<at::Tensor> parts;
        for (const auto& s : seqs) parts.push_back(m.forward_hidden(s));
        hidden = torch::cat(parts, 1);
      }
      (hidden * weights.narrow(1, 0, hidden.size(1))).sum().backward();
      std::map<std::string, at::Tensor> g;
      for (auto& [n, p] : m.named_parameters())
        if (p.grad().defined()) g[n] = p.grad().clone();
      return std::make_pair(hidden.detach(), g);
    };
    const auto [h_alone, g_alone] = grads(false, false);
    for (const bool ckpt : {false, true}) {
      SCOPED_TRACE(ckpt ? "checkpointed" : "stored activations");
      const auto [h_packed, g_packed] = grads(true, ckpt);
      EXPECT_TRUE(torch::allclose(h_packed, h_alone, 1e-5, 1e-5)) << (h_packed - h_alone).abs().max();
      ASSERT_EQ(g_packed.size(), g_alone.size());
      // fp32 sums in another order: bounded relative to the tensor's largest entry.
      for (const auto& [n, g] : g_alone)
        EXPECT_LE((g_packed.at(n) - g).abs().max().item<double>(), 2e-5 * (1 + g.abs().max().item<double>())) << n;
    }
  }
}

TEST(Transformer, PackedForwardInputErrors) {
  Transformer m(tiny_config());
  const auto ids = torch::ones({1, 5}, torch::kLong);
  EXPECT_THROW(m.forward_hidden_packed(ids, {2, 2}), c10::Error);            // lengths sum to 4, not 5
  EXPECT_THROW(m.forward_hidden_packed(ids, {5, 0}), c10::Error);            // an empty sequence
  EXPECT_THROW(m.forward_hidden_packed(ids, {}), c10::Error);                // no sequences
  EXPECT_THROW(m.forward_hidden_packed(ids.view({5, 1}), {1, 1, 1, 1, 1}), c10::Error);  // not one row
  EXPECT_EQ(m.forward_hidden_packed(ids, {2, 3}).sizes(), (std::vector<int64_t>{1, 5, 32}));
}

}  // namespace
}  // namespace keel::models
