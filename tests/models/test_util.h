// Helpers shared by the models tests: tiny configs, random weights, temp directories.
#pragma once

#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "models/model_config.h"
#include "models/transformer.h"
#include "base/fs.h"

namespace keel::models::testing {

/// A unique directory under the system temp dir, removed with its contents on destruction.
class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() / ("keel_models_test_" + std::to_string(rd()) + std::to_string(rd()));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    keel::fs::remove_tree(path_, ec);
  }
  std::string str() const { return path_.string(); }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

/// A tiny config (hidden 32, 2 layers, 4 query heads, 2 kv heads, head_dim 8, vocab 50).
inline ModelConfig tiny_config(const std::string& model_type = "llama") {
  ModelConfig c;
  c.model_type = model_type;
  c.hidden_size = 32;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 8;
  c.intermediate_size = 48;
  c.vocab_size = 50;
  c.max_position_embeddings = 128;
  c.rms_norm_eps = 1e-6;
  c.rope_theta = 10000.0;
  c.eos_token_ids = {2};
  c.bos_token_id = 1;
  if (model_type == "qwen2") c.attention_bias = true;
  if (model_type == "qwen3") c.qk_norm = true;
  return c;
}

/// Every parameter re-drawn with a seed: weights ~ N(0, 0.2), norms ~ 1 + N(0, 0.1), biases ~ N(0, 0.1),
/// so that biases and norm weights matter in comparisons.
inline void randomize(Transformer& m, uint64_t seed) {
  torch::NoGradGuard g;
  auto gen = at::detail::createCPUGenerator(seed);
  for (auto& [name, p] : m.named_parameters()) {
    auto r = at::normal(0.0, 1.0, p.sizes(), gen, torch::TensorOptions().dtype(torch::kFloat));
    if (name.find("norm") != std::string::npos) r = 1.0 + 0.1 * r;
    else if (name.ends_with("bias")) r = 0.1 * r;
    else r = 0.2 * r;
    p.copy_(r);
  }
}

/// Random prompts of the given lengths (ids 3 .. vocab - 1 from a seeded mt19937), each opening
/// with `header`.
inline std::vector<std::vector<int64_t>> random_prompts(int64_t vocab, uint64_t seed, const std::vector<size_t>& lens,
                                                        const std::vector<int64_t>& header = {}) {
  std::mt19937 rng(static_cast<uint32_t>(seed));
  std::vector<std::vector<int64_t>> out;
  for (size_t n : lens) {
    std::vector<int64_t> p = header;
    while (p.size() < n) p.push_back(3 + static_cast<int64_t>(rng() % static_cast<uint32_t>(vocab - 3)));
    out.push_back(p);
  }
  return out;
}

/// A tiny randomized model of a family (tiny_config, randomize), optionally with tied embeddings
/// and a sliding window.
inline Transformer tiny_model(const std::string& type, uint64_t seed, bool tie = false, int64_t window = 0) {
  auto c = tiny_config(type);
  c.tie_word_embeddings = tie;
  c.sliding_window = window;
  Transformer m(c);
  randomize(m, seed);
  return m;
}

}  // namespace keel::models::testing
