// Tests for models/pretrained: save -> load gives identical logits, dtype handling, tied
// embeddings, tokenizer files, atomic overwrite, reward models from *ForSequenceClassification
// checkpoints, critics from policy checkpoints, load errors, and sharded saving (HF shard plan,
// file names and index.json).
#include "models/pretrained.h"

#include <algorithm>
#include <fstream>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "models/safetensors.h"
#include "tests/models/test_util.h"
#include "base/error.h"
#include "base/fs.h"

namespace keel::models {
namespace {

using testing::randomize;
using testing::TempDir;
using testing::tiny_config;
namespace fs = std::filesystem;

ModelRegistry registry() {
  ModelRegistry r("model family");
  register_builtin_models(r);
  return r;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

at::Tensor sample_ids(int64_t vocab) {
  torch::manual_seed(0);
  return torch::randint(0, vocab, {2, 5}, torch::kLong);
}

TEST(Pretrained, SaveLoadGivesIdenticalLogits) {
  for (const std::string type : {"llama", "qwen2", "qwen3", "mistral"}) {
    for (bool tie : {false, true}) {
      SCOPED_TRACE(type + (tie ? " tied" : " untied"));
      TempDir dir;
      auto c = tiny_config(type);
      c.tie_word_embeddings = tie;
      if (type == "mistral") c.sliding_window = 3;
      Transformer m(c);
      randomize(m, 42);
      const std::string out = dir / "model";
      save_pretrained(m, out);
      for (const char* f : {"config.json", "model.safetensors", "generation_config.json"})
        EXPECT_TRUE(fs::exists(fs::path(out) / f)) << f;
      EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), {}), 1);  // no temp dirs left
      const auto file = SafetensorsFile::open(out + "/model.safetensors");
      EXPECT_EQ(file.contains("lm_head.weight"), !tie);
      auto loaded = load_pretrained(out, registry());
      EXPECT_EQ(loaded.config().sliding_window, c.sliding_window);
      EXPECT_EQ(loaded.config().tie_word_embeddings, tie);
      const auto ids = sample_ids(c.vocab_size);
      torch::NoGradGuard g;
      EXPECT_TRUE(torch::equal(loaded.forward(ids), m.forward(ids)));
      const auto gen = nlohmann::json::parse(read_text(out + "/generation_config.json"));
      EXPECT_EQ(gen["eos_token_id"], 2);
      EXPECT_EQ(gen["bos_token_id"], 1);
    }
  }
}

TEST(Pretrained, DtypeOnSaveAndLoad) {
  TempDir dir;
  auto c = tiny_config("qwen2");
  Transformer m(c);
  randomize(m, 1);
  save_pretrained(m, dir / "bf16", {.dtype = at::kBFloat16});
  EXPECT_EQ(SafetensorsFile::open(dir / "bf16/model.safetensors").entry("model.norm.weight").dtype, at::kBFloat16);
  EXPECT_EQ(nlohmann::json::parse(read_text(dir / "bf16/config.json"))["torch_dtype"], "bfloat16");
  auto as_fp32 = load_pretrained(dir / "bf16", registry());  // default: fp32 parameters
  EXPECT_EQ(as_fp32.dtype(), at::kFloat);
  for (auto& [n, p] : as_fp32.named_parameters())
    EXPECT_TRUE(torch::equal(p, m.named_parameters().at(n).to(at::kBFloat16).to(at::kFloat))) << n;
  auto as_bf16 = load_pretrained(dir / "bf16", registry(), {.dtype = at::kBFloat16});
  EXPECT_EQ(as_bf16.dtype(), at::kBFloat16);
  torch::NoGradGuard g;
  const auto ids = sample_ids(c.vocab_size);
  const auto a = as_bf16.forward(ids).to(at::kFloat);
  const auto b = as_fp32.forward(ids);
  EXPECT_TRUE(torch::allclose(a, b, 0.05, 0.05)) << (a - b).abs().max().item<double>();
}

TEST(Pretrained, CopiesTokenizerFilesAndReplacesAtomically) {
  TempDir dir;
  const std::string tok = dir / "tok";
  fs::create_directories(tok);
  std::ofstream(tok + "/tokenizer.json") << R"({"version":"1.0"})";
  std::ofstream(tok + "/tokenizer_config.json") << R"({"chat_template":"x"})";
  std::ofstream(tok + "/unrelated.txt") << "no";
  auto c = tiny_config();
  Transformer m(c);
  save_pretrained(m, dir / "a", {.tokenizer_dir = tok});
  EXPECT_EQ(read_text(dir / "a/tokenizer.json"), R"({"version":"1.0"})");
  EXPECT_TRUE(fs::exists(dir / "a/tokenizer_config.json"));
  EXPECT_FALSE(fs::exists(dir / "a/unrelated.txt"));
  // A loaded model copies from the directory it came from.
  auto loaded = load_pretrained(dir / "a", registry());
  save_pretrained(loaded, dir / "b");
  EXPECT_TRUE(fs::exists(dir / "b/tokenizer.json"));
  // Saving over an existing directory replaces it whole.
  std::ofstream(dir / "b/stale.bin") << "old";
  Transformer other(c);
  randomize(other, 9);
  save_pretrained(other, dir / "b");
  EXPECT_FALSE(fs::exists(dir / "b/stale.bin"));
  EXPECT_FALSE(fs::exists(dir / "b/tokenizer.json"));  // `other` has no source dir
  auto reloaded = load_pretrained(dir / "b", registry());
  EXPECT_TRUE(torch::equal(reloaded.named_parameters().at("model.norm.weight"), other.named_parameters().at("model.norm.weight")));
  std::vector<std::string> entries;
  for (auto& e : fs::directory_iterator(dir.path())) entries.push_back(e.path().filename().string());
  std::sort(entries.begin(), entries.end());
  EXPECT_EQ(entries, (std::vector<std::string>{"a", "b", "tok"}));  // no temp or backup left
}

// An HF Qwen2ForSequenceClassification checkpoint (score.weight, no lm_head) loads into the reward head.
TEST(Pretrained, SequenceClassificationCheckpointLoadsRewardHead) {
  TempDir dir;
  auto c = tiny_config("qwen2");
  Transformer body(c, {.lm_head = false});
  randomize(body, 3);
  auto tensors = body.state_dict();
  torch::manual_seed(3);
  const auto score = torch::randn({1, c.hidden_size});
  tensors["score.weight"] = score;
  const std::string rm = dir / "rm";
  fs::create_directories(rm);
  c.architectures = {"Qwen2ForSequenceClassification"};
  keel::fs::write_file_atomic(rm + "/config.json", model_config_to_json(c));
  save_safetensors(rm + "/model.safetensors", tensors);

  auto m = load_pretrained(rm, registry());
  EXPECT_FALSE(m.heads().lm_head);
  EXPECT_TRUE(m.heads().reward_head);
  EXPECT_FALSE(m.heads().value_head);
  torch::NoGradGuard g;
  const auto ids = sample_ids(c.vocab_size);
  const auto h = m.forward_hidden(ids);
  EXPECT_TRUE(torch::allclose(m.rewards(h), torch::matmul(body.forward_hidden(ids), score[0]), 1e-5, 1e-5));
  EXPECT_THROW(m.lm_logits(h), c10::Error);
  // Saved back as a classifier.
  save_pretrained(m, dir / "rm2");
  const auto j = nlohmann::json::parse(read_text(dir / "rm2/config.json"));
  EXPECT_EQ(j["architectures"][0], "Qwen2ForSequenceClassification");
  EXPECT_EQ(j["num_labels"], 1);
  auto again = load_pretrained(dir / "rm2", registry());
  EXPECT_TRUE(torch::equal(again.rewards(again.forward_hidden(ids)), m.rewards(h)));
}

// A policy checkpoint opened as a critic: lm_head ignored, value head freshly initialised.
TEST(Pretrained, PolicyCheckpointAsCritic) {
  TempDir dir;
  auto c = tiny_config();
  Transformer policy(c);
  randomize(policy, 4);
  save_pretrained(policy, dir / "p");
  auto critic = load_pretrained(dir / "p", registry(), {.heads = HeadOptions{.lm_head = false, .value_head = true}});
  EXPECT_TRUE(critic.heads().value_head);
  EXPECT_FALSE(critic.named_parameters().count("lm_head.weight"));
  EXPECT_TRUE(torch::equal(critic.named_parameters().at("model.norm.weight"), policy.named_parameters().at("model.norm.weight")));
  torch::NoGradGuard g;
  EXPECT_EQ(critic.values(critic.forward_hidden(sample_ids(c.vocab_size))).sizes(), (at::IntArrayRef{2, 5}));
  EXPECT_THROW(load_pretrained(dir / "p", registry(),
                               {.heads = HeadOptions{.lm_head = false, .value_head = true}, .init_missing_heads = false}),
               Error);
}

void expect_load_error(const std::string& dir, const std::string& needle) {
  try {
    load_pretrained(dir, registry());
    ADD_FAILURE() << "no error for " << needle;
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(dir), std::string::npos) << msg;
    EXPECT_NE(msg.find(needle), std::string::npos) << "expected '" << needle << "' in: " << msg;
  }
}

TEST(Pretrained, LoadErrorsNameDirectoryAndTensor) {
  TempDir dir;
  auto c = tiny_config();
  Transformer m(c);
  save_pretrained(m, dir / "ok");
  const auto tensors = m.state_dict();
  const auto write_variant = [&](const std::string& name, std::map<std::string, at::Tensor> t) {
    const std::string d = dir / name;
    fs::create_directories(d);
    fs::copy_file(dir / "ok/config.json", d + "/config.json");
    save_safetensors(d + "/model.safetensors", t);
    return d;
  };
  auto t = tensors;
  t.erase("model.layers.1.mlp.up_proj.weight");
  expect_load_error(write_variant("missing", t), "missing tensor 'model.layers.1.mlp.up_proj.weight'");
  t = tensors;
  t["model.norm.weight"] = torch::ones({31});
  expect_load_error(write_variant("shape", t), "tensor 'model.norm.weight' has shape [31]");
  t = tensors;
  t["model.layers.2.mlp.up_proj.weight"] = torch::ones({2});
  expect_load_error(write_variant("extra", t), "unexpected tensor 'model.layers.2.mlp.up_proj.weight'");
  t = tensors;
  t.erase("lm_head.weight");
  expect_load_error(write_variant("nohead", t), "no lm_head.weight");
  t = tensors;
  t["model.layers.0.self_attn.rotary_emb.inv_freq"] = torch::ones({4});  // old Llama checkpoints: ignored
  EXPECT_NO_THROW(load_pretrained(write_variant("rotary", t), registry()));
  expect_load_error(dir / "nonexistent", "not a model directory");
  fs::create_directories(dir / "noweights");
  fs::copy_file(dir / "ok/config.json", dir / "noweights/config.json");
  expect_load_error(dir / "noweights", "no model.safetensors");
}


// plan_shards follows huggingface_hub's split_state_dict_into_shards: fill in order, cut before the
// tensor that would overflow, and put a tensor larger than the limit alone in its own shard,
// appended at once (before the shard being filled).
TEST(Pretrained, PlanShardsFollowsHfSplitting) {
  using Plan = std::vector<std::vector<std::string>>;
  // limit 8: a(4) + b(4) = 8 fits exactly; c(4) would make 12 -> new shard.
  EXPECT_EQ(plan_shards({"a", "b", "c"}, {4, 4, 4}, 8), (Plan{{"a", "b"}, {"c"}}));
  // b(10) > 8 goes alone and first; a(3) + c(3) = 6 share the shard being filled.
  EXPECT_EQ(plan_shards({"a", "b", "c"}, {3, 10, 3}, 8), (Plan{{"b"}, {"a", "c"}}));
  // limit 0 = no sharding.
  EXPECT_EQ(plan_shards({"a", "b"}, {100, 100}, 0), (Plan{{"a", "b"}}));
  // Everything fits: one shard.
  EXPECT_EQ(plan_shards({"a", "b"}, {1, 2}, 3), (Plan{{"a", "b"}}));
  EXPECT_THROW(plan_shards({"a"}, {1, 2}, 3), c10::Error);
}

// Sharded save: HF file names and index, atomic staging, identical tensors after load.
TEST(Pretrained, ShardedSaveRoundTrip) {
  TempDir dir;
  auto c = tiny_config("qwen2");  // with q/k/v biases
  Transformer m(c);
  randomize(m, 5);
  const std::string out = dir / "sharded";
  // Sizes (fp32): embed 50x32 = 6400 B, lm_head 6400 B, q/o 4096 B, k/v 2048 B, gate/up/down 6144 B,
  // norms and biases <= 128 B; total = 4 * (params) bytes. An 8192-byte limit gives many shards.
  const uint64_t limit = 8192;
  save_pretrained(m, out, {.max_shard_bytes = limit});
  EXPECT_FALSE(fs::exists(out + "/model.safetensors"));
  const auto index = nlohmann::json::parse(read_text(out + "/model.safetensors.index.json"));
  ASSERT_TRUE(index.contains("metadata") && index.contains("weight_map"));
  const auto params = m.named_parameters();
  uint64_t total = 0;
  for (const auto& [name, p] : params) total += static_cast<uint64_t>(p.numel()) * 4;
  EXPECT_EQ(index["metadata"]["total_size"].get<uint64_t>(), total);
  EXPECT_EQ(index["metadata"].size(), 1u);
  const auto& wm = index["weight_map"];
  EXPECT_EQ(wm.size(), params.size());
  // Files: model-0000i-of-0000N.safetensors, i = 1..N, each within the limit unless it holds a
  // single oversized tensor, and each holding exactly the tensors the index names for it.
  std::map<std::string, std::vector<std::string>> by_file;
  for (const auto& [name, file] : wm.items()) by_file[file.get<std::string>()].push_back(name);
  const size_t n = by_file.size();
  ASSERT_GT(n, 3u);
  for (size_t i = 1; i <= n; ++i) {
    const std::string f = fmt::format("model-{:05d}-of-{:05d}.safetensors", i, n);
    ASSERT_TRUE(by_file.count(f)) << f;
    const auto shard = SafetensorsFile::open(out + "/" + f);
    auto names = shard.names();
    std::sort(names.begin(), names.end());
    auto expected = by_file[f];
    std::sort(expected.begin(), expected.end());
    EXPECT_EQ(names, expected) << f;
    uint64_t bytes = 0;
    for (const auto& nm : names) bytes += shard.entry(nm).end - shard.entry(nm).begin;
    EXPECT_TRUE(bytes <= limit || names.size() == 1) << f << " holds " << bytes << " bytes";
  }
  // Module order: the embedding is in the first shard, the last layer's tensors after layer 0's.
  EXPECT_EQ(wm["model.embed_tokens.weight"], fmt::format("model-00001-of-{:05d}.safetensors", n));
  EXPECT_LT(wm["model.layers.0.mlp.down_proj.weight"].get<std::string>(),
            wm["model.layers.1.mlp.down_proj.weight"].get<std::string>());
  // No staging directory or stray temp file left.
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), {}), 1);
  for (const auto& e : fs::directory_iterator(out)) EXPECT_NE(e.path().filename().string()[0], '.') << e.path();
  // Load: identical tensors and logits.
  auto loaded = load_pretrained(out, registry());
  for (const auto& [name, p] : params) EXPECT_TRUE(torch::equal(loaded.named_parameters().at(name), p)) << name;
  const auto ids = sample_ids(c.vocab_size);
  {
    torch::NoGradGuard g;
    EXPECT_TRUE(torch::equal(loaded.forward(ids), m.forward(ids)));
  }
  // A large limit writes the usual single file; saving it over the sharded directory removes the shards.
  save_pretrained(m, out, {.max_shard_bytes = total});
  EXPECT_TRUE(fs::exists(out + "/model.safetensors"));
  EXPECT_FALSE(fs::exists(out + "/model.safetensors.index.json"));
  EXPECT_FALSE(fs::exists(out + fmt::format("/model-00001-of-{:05d}.safetensors", n)));
  // bf16 halves every size and the total.
  save_pretrained(m, dir / "bf16", {.dtype = at::kBFloat16, .max_shard_bytes = limit});
  const auto index16 = nlohmann::json::parse(read_text(dir / "bf16/model.safetensors.index.json"));
  EXPECT_EQ(index16["metadata"]["total_size"].get<uint64_t>(), total / 2);
  auto loaded16 = load_pretrained(dir / "bf16", registry());
  EXPECT_TRUE(torch::equal(loaded16.named_parameters().at("lm_head.weight"),
                           params.at("lm_head.weight").to(at::kBFloat16).to(at::kFloat)));
}

}  // namespace
}  // namespace keel::models
