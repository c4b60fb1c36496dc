// Tests for LoRA (models/lora.h, Transformer::add_lora): the adapted forward equals a plain model
// holding the merged weights W + (alpha / r) B A (padded, packed, KV-cache and paged decoding),
// without_adapters() is the base, only adapters and heads train, activation checkpointing keeps
// the gradients, and PEFT adapter directories round-trip with clear errors.
#include "models/lora.h"

#include <filesystem>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "base/fs.h"
#include "models/generate.h"
#include "models/logprobs.h"
#include "models/rollout_engine.h"
#include "models/safetensors.h"
#include "tests/models/test_util.h"

namespace keel::models {
namespace {

using testing::random_prompts;
using testing::tiny_model;

namespace stdfs = std::filesystem;

LoraOptions lora(int64_t rank, std::vector<std::string> targets = {"all-linear"}) {
  LoraOptions o;
  o.rank = rank;
  o.alpha = 2.0 * static_cast<double>(rank);
  o.target_modules = std::move(targets);
  return o;
}

/// Adapters with non-zero B (fresh ones are B = 0, a no-op), drawn from `seed`.
void randomize_adapters(Transformer& m, uint64_t seed) {
  torch::NoGradGuard g;
  auto gen = at::detail::createCPUGenerator(seed);
  for (auto& [name, p] : m.adapter_parameters()) p.normal_(0.0, 0.2, gen);
}

/// A plain model holding `m`'s merged weights.
Transformer merged_copy(const Transformer& m) {
  Transformer out(m.config(), m.heads());
  out.load_state_dict(m.state_dict(), "merged");
  return out;
}

struct TempDir {
  stdfs::path path;
  explicit TempDir(const std::string& tag)
      : path(stdfs::temp_directory_path() / ("keel_lora_" + tag + "_" + std::to_string(::getpid()))) {
    fs::remove_tree(path);
    stdfs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_tree(path, ec);
  }
};

TEST(Lora, TargetsExpandAllLinearAndRejectUnknownNames) {
  EXPECT_EQ(lora(2).targets("t"), kLoraTargets);
  EXPECT_EQ(lora(2, {"v_proj", "q_proj"}).targets("t"), (std::vector<std::string>{"q_proj", "v_proj"}));
  try {
    (void)lora(2, {"q_proj", "qkv"}).targets("model.lora.target_modules");
    FAIL() << "an unknown module was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("model.lora.target_modules: unknown target module 'qkv'"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW((void)lora(2, {}).targets("t"), Error);
}

// Fresh adapters (B = 0) change nothing; random ones give exactly the merged model, over families,
// ties, windows and target sets; without_adapters() is the base model on the same parameters.
TEST(Lora, ForwardEqualsTheMergedModelAndWithoutAdaptersTheBase) {
  const std::vector<std::string> types = {"llama", "qwen2", "mistral", "qwen3"};
  for (uint64_t seed = 0; seed < 8; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    auto m = tiny_model(types[seed % 4], seed, /*tie=*/seed % 2, /*window=*/seed % 3 == 2 ? 3 : 0);
    Transformer base = merged_copy(m);
    m.add_lora(seed % 2 ? lora(4) : lora(2, {"q_proj", "v_proj", "down_proj"}), seed);
    auto [ids, mask] = left_pad(random_prompts(50, seed, {5, 3, 7}), 0);
    torch::NoGradGuard ng;
    EXPECT_TRUE(torch::allclose(m.forward(ids, mask), base.forward(ids, mask), 0, 1e-6));
    randomize_adapters(m, seed + 50);
    auto merged = merged_copy(m);
    const auto lm = m.forward(ids, mask);
    EXPECT_FALSE(torch::allclose(lm, base.forward(ids, mask), 0, 1e-3)) << "the adapters had no effect";
    EXPECT_TRUE(torch::allclose(lm, merged.forward(ids, mask), 0, 1e-5)) << (lm - merged.forward(ids, mask)).abs().max();
    EXPECT_TRUE(torch::allclose(m.without_adapters().forward(ids, mask), base.forward(ids, mask), 0, 1e-5));
    EXPECT_TRUE(m.adapters_enabled());  // the handle's copy switched them off, not this one
    EXPECT_TRUE(torch::allclose(m.forward(ids, mask), lm, 0, 0));
    // Padding-free passes apply them as well.
    LogprobOptions lo;
    lo.padding_free = true;
    const auto rids = torch::randint(1, 50, {3, 4}, torch::kLong);
    const auto rmask = torch::ones({3, 4}, torch::kLong);
    const auto a = sequence_logprobs(m, ids, mask, rids, rmask, lo).logprobs;
    lo.padding_free = false;
    const auto b = sequence_logprobs(merged, ids, mask, rids, rmask, lo).logprobs;
    EXPECT_TRUE(torch::allclose(a, b, 0, 1e-5));
  }
}

// Generation decodes through the adapters (KV-cache, paged engine's own o_proj call): the log-prob
// contract holds against teacher forcing on the adapted model.
TEST(Lora, GenerationKeepsTheLogprobContract) {
  auto m = tiny_model("qwen2", 3);
  m.add_lora(lora(4), 3);
  randomize_adapters(m, 4);
  SamplingOptions o;
  o.max_new_tokens = 6;
  o.seed = 5;
  const auto prompts = random_prompts(50, 3, {4, 6, 2});
  auto merged = merged_copy(m);
  for (const bool paged : {false, true}) {
    SCOPED_TRACE(paged ? "paged" : "static");
    const auto g = paged ? generate_paged(m, prompts, o, EngineOptions{}) : generate(m, prompts, o);
    torch::NoGradGuard ng;
    const auto tf = sequence_logprobs(merged, g.prompt_ids, g.prompt_mask, g.response_ids,
                                      g.response_mask);
    EXPECT_TRUE(torch::allclose(g.logprobs, tf.logprobs, 0, 1e-5)) << (g.logprobs - tf.logprobs).abs().max();
  }
}

// Only the adapters (and a value head) are trainable; the base gets no gradient. Checkpointed
// layers give the adapters the same gradients, also for a handle without adapters (none at all).
TEST(Lora, OnlyAdaptersAndHeadsTrainAndCheckpointingKeepsTheirGradients) {
  auto m = tiny_model("llama", 9);
  m.add_value_head();
  m.add_lora(lora(2, {"q_proj", "up_proj"}), 9);
  randomize_adapters(m, 10);
  m.train(true);
  const auto params = m.parameters();
  EXPECT_EQ(params.size(), 2u * 2 * 2 + 1);  // 2 layers x 2 targets x (A, B) + value_head.weight
  for (const auto& [name, p] : m.named_parameters()) {
    const bool trained = name.find(".lora_") != std::string::npos || name == "value_head.weight";
    EXPECT_EQ(p.requires_grad(), trained) << name;
  }
  auto [ids, mask] = left_pad(random_prompts(50, 9, {5, 3}), 0);
  const auto grads = [&](bool ckpt) {
    m.set_gradient_checkpointing(ckpt);
    for (auto& p : m.parameters()) p.mutable_grad() = at::Tensor();
    (m.forward(ids, mask).pow(2).mean() + m.values(m.forward_hidden(ids, mask)).sum()).backward();
    std::map<std::string, at::Tensor> g;
    for (const auto& [name, p] : m.named_parameters()) {
      if (!p.requires_grad()) {
        EXPECT_FALSE(p.grad().defined()) << name;
        continue;
      }
      EXPECT_TRUE(p.grad().defined()) << name;
      g[name] = p.grad().clone();
    }
    return g;
  };
  const auto plain = grads(false), ckpt = grads(true);
  for (const auto& [n, g] : plain) EXPECT_TRUE(torch::allclose(ckpt.at(n), g, 1e-5, 1e-6)) << n << " " << (ckpt.at(n) - g).abs().max();
  // The base model's forward has no path to the adapters.
  for (auto& p : m.parameters()) p.mutable_grad() = at::Tensor();
  m.without_adapters().forward(ids, mask).pow(2).mean().backward();
  for (const auto& [name, p] : m.adapter_parameters())
    EXPECT_TRUE(!p.grad().defined() || p.grad().abs().max().item<double>() == 0) << name;
  EXPECT_THROW(m.add_lora(lora(2), 1), Error);
}

// PEFT's layout on disk: adapter_config.json and adapter_model.safetensors with
// base_model.model.<module>.lora_{A,B}.weight keys; loading it into a fresh adapted model restores
// the forward exactly.
TEST(Lora, AdapterDirectoryRoundTripsInPeftLayout) {
  TempDir dir("roundtrip");
  auto m = tiny_model("qwen3", 12);
  LoraOptions o = lora(4, {"q_proj", "k_proj", "v_proj", "o_proj"});
  o.dropout = 0.05;
  m.add_lora(o, 12);
  randomize_adapters(m, 13);
  save_adapter(m, (dir.path / "adapter").string(), "Qwen/Qwen3-0.6B");
  const auto cfg = nlohmann::json::parse(fs::read_file(dir.path / "adapter" / "adapter_config.json"));
  EXPECT_EQ(cfg["peft_type"], "LORA");
  EXPECT_EQ(cfg["r"], 4);
  EXPECT_EQ(cfg["lora_alpha"], 8.0);
  EXPECT_EQ(cfg["base_model_name_or_path"], "Qwen/Qwen3-0.6B");
  EXPECT_EQ(cfg["target_modules"], (std::vector<std::string>{"q_proj", "k_proj", "v_proj", "o_proj"}));
  const auto tensors = load_safetensors((dir.path / "adapter" / "adapter_model.safetensors").string());
  EXPECT_EQ(tensors.size(), 2u * 4 * 2);
  ASSERT_TRUE(tensors.count("base_model.model.model.layers.1.self_attn.k_proj.lora_A.weight"));
  EXPECT_EQ(tensors.at("base_model.model.model.layers.1.self_attn.k_proj.lora_A.weight").sizes(),
            (std::vector<int64_t>{4, 32}));
  EXPECT_EQ(tensors.at("base_model.model.model.layers.1.self_attn.k_proj.lora_B.weight").sizes(),
            (std::vector<int64_t>{2 * 8, 4}));  // k_proj out = Hkv * D

  const auto read = read_adapter_config((dir.path / "adapter").string());
  EXPECT_EQ(read.rank, 4);
  EXPECT_DOUBLE_EQ(read.alpha, 8.0);
  EXPECT_DOUBLE_EQ(read.dropout, 0.05);
  auto fresh = tiny_model("qwen3", 12);
  fresh.add_lora(read, 99);  // other random A: the load overwrites it
  load_adapter(fresh, (dir.path / "adapter").string());
  auto [ids, mask] = left_pad(random_prompts(50, 12, {5, 3}), 0);
  torch::NoGradGuard ng;
  m.train(false);  // no dropout
  fresh.train(false);
  EXPECT_TRUE(torch::allclose(fresh.forward(ids, mask), m.forward(ids, mask), 0, 0));
  // Dropout (0.05 on the adapters' input) applies in training mode only.
  m.train(true);
  EXPECT_FALSE(torch::allclose(fresh.forward(ids, mask), m.forward(ids, mask), 0, 1e-6));

  // Errors name the file and the tensor or key.
  auto wrong_rank = tiny_model("qwen3", 12);
  wrong_rank.add_lora(lora(2, read.target_modules), 1);
  try {
    load_adapter(wrong_rank, (dir.path / "adapter").string());
    FAIL() << "a rank-4 adapter loaded into rank 2";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("adapter_model.safetensors: adapter tensor"), std::string::npos) << e.what();
  }
  auto more_targets = tiny_model("qwen3", 12);
  more_targets.add_lora(lora(4), 1);
  try {
    load_adapter(more_targets, (dir.path / "adapter").string());
    FAIL() << "missing gate_proj adapters were not noticed";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing adapter tensor"), std::string::npos) << e.what();
  }
  fs::write_file_atomic(dir.path / "adapter" / "adapter_config.json", R"({"peft_type": "LORA", "r": 4, "lora_alpha": 8, "target_modules": ["qkv_proj"]})");
  try {
    (void)read_adapter_config((dir.path / "adapter").string());
    FAIL() << "an unknown target was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("adapter_config.json target_modules: unknown target module 'qkv_proj'"),
              std::string::npos)
        << e.what();
  }
  fs::write_file_atomic(dir.path / "adapter" / "adapter_config.json", R"({"peft_type": "LORA", "lora_alpha": 8, "target_modules": "all-linear"})");
  EXPECT_THROW((void)read_adapter_config((dir.path / "adapter").string()), Error);  // no r
}

// PEFT options that would change which modules carry adapters, or their rank or scale, are refused
// by name; their defaults (as PEFT writes them) are accepted.
TEST(Lora, AdapterConfigRefusesOptionsThatChangeTheMath) {
  TempDir dir("peft_options");
  const auto read_with = [&](const std::string& extra) {
    fs::write_file_atomic(dir.path / "adapter_config.json",
                          R"({"peft_type": "LORA", "r": 4, "lora_alpha": 8, "target_modules": ["q_proj"])" + extra + "}");
    return read_adapter_config(dir.path.string());
  };
  EXPECT_EQ(read_with(R"(, "rank_pattern": {}, "alpha_pattern": {}, "layers_to_transform": null, "layers_pattern": null,
      "exclude_modules": null, "use_dora": false, "lora_bias": false, "fan_in_fan_out": false, "target_parameters": null)")
                .rank,
            4);
  for (const std::string& bad :
       {R"("rank_pattern": {"q_proj": 8})", R"("alpha_pattern": {"q_proj": 2})", R"("layers_to_transform": [0])",
        R"("layers_pattern": "layers")", R"("exclude_modules": ["layers.0.self_attn.q_proj"])", R"("use_rslora": true)",
        R"("use_dora": true)", R"("lora_bias": true)", R"("fan_in_fan_out": true)", R"("target_parameters": ["w"])"}) {
    SCOPED_TRACE(bad);
    const std::string key = bad.substr(1, bad.find('"', 1) - 1);
    try {
      (void)read_with(", " + bad);
      FAIL() << "accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("adapter_config.json: " + key), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace keel::models
