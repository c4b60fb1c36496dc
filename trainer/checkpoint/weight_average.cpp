// WARM weight averaging of reward-model checkpoints (see weight_average.h).
#include "trainer/checkpoint/weight_average.h"

#include <filesystem>

#include <torch/torch.h>

#include "models/pretrained.h"
#include "base/error.h"

namespace keel::checkpoint {

std::map<std::string, at::Tensor> average_state_dicts(const std::vector<std::map<std::string, at::Tensor>>& dicts,
                                                      std::vector<double> weights, const std::vector<std::string>& where) {
  const size_t m = dicts.size();
  if (m == 0) fail("weight averaging: no checkpoints");
  if (where.size() != m) fail("weight averaging: {} checkpoints but {} names", m, where.size());
  if (weights.empty()) weights.assign(m, 1.0 / static_cast<double>(m));
  if (weights.size() != m) fail("weight averaging: {} weights for {} checkpoints", weights.size(), m);
  double total = 0;
  for (size_t i = 0; i < m; ++i) {
    if (!(weights[i] >= 0)) fail("weight averaging: weight {} of {} must be >= 0, got {}", i + 1, where[i], weights[i]);
    total += weights[i];
  }
  if (!(total > 0)) fail("weight averaging: the weights sum to {}; at least one must be positive", total);
  for (auto& w : weights) w /= total;

  const auto& first = dicts[0];
  for (size_t i = 1; i < m; ++i) {
    for (const auto& [name, t] : dicts[i]) {
      const auto it = first.find(name);
      if (it == first.end()) fail("{}: tensor '{}' is not in {} (the models' architectures differ)", where[i], name, where[0]);
      if (it->second.sizes() != t.sizes())
        fail("{}: tensor '{}' has shape {} but {} in {} (the models' architectures differ)", where[i], name,
             c10::str(t.sizes()), c10::str(it->second.sizes()), where[0]);
    }
    for (const auto& [name, t] : first)
      if (!dicts[i].count(name)) fail("{}: tensor '{}' of {} is missing (the models' architectures differ)", where[i], name, where[0]);
  }
  torch::NoGradGuard ng;
  std::map<std::string, at::Tensor> out;
  for (const auto& [name, t0] : first) {
    auto acc = torch::zeros(t0.sizes(), torch::TensorOptions().dtype(torch::kDouble));
    for (size_t i = 0; i < m; ++i) acc.add_(dicts[i].at(name).detach().to(torch::kCPU, torch::kDouble), weights[i]);
    out.emplace(name, acc.to(t0.scalar_type()));
  }
  return out;
}

std::vector<double> average_reward_models(const std::vector<std::string>& paths, const std::vector<double>& weights,
                                          const std::string& out_dir, const models::ModelRegistry& registry) {
  if (paths.size() < 2) fail("average-rm: give at least two reward-model directories, got {}", paths.size());
  if (!weights.empty() && weights.size() != paths.size())
    fail("average-rm: --weights has {} values for {} models", weights.size(), paths.size());
  namespace stdfs = std::filesystem;
  for (const auto& p : paths)
    if (stdfs::weakly_canonical(p) == stdfs::weakly_canonical(out_dir))
      fail("average-rm: the output {} is one of the inputs; write the average elsewhere", out_dir);
  models::LoadOptions lo;
  lo.heads = models::HeadOptions{/*lm_head=*/false, /*value_head=*/false, /*reward_head=*/true};
  lo.init_missing_heads = false;  // a causal LM without score.weight is not a reward model
  std::vector<models::Transformer> ms;
  std::vector<std::map<std::string, at::Tensor>> dicts;
  for (const auto& p : paths) {
    ms.push_back(models::load_pretrained(p, registry, lo));
    const auto& a = ms.front().config();
    const auto& b = ms.back().config();
    auto differ = [&](const char* field, const std::string& x, const std::string& y) {
      if (x != y) fail("{}: {} is {} but {} in {} (averaged models must share one architecture)", p, field, y, x, paths[0]);
    };
    differ("model_type", a.model_type, b.model_type);
    differ("num_hidden_layers", std::to_string(a.num_hidden_layers), std::to_string(b.num_hidden_layers));
    differ("num_attention_heads", std::to_string(a.num_attention_heads), std::to_string(b.num_attention_heads));
    differ("num_key_value_heads", std::to_string(a.num_key_value_heads), std::to_string(b.num_key_value_heads));
    differ("vocab_size", std::to_string(a.vocab_size), std::to_string(b.vocab_size));
    differ("rope_theta", fmt::format("{}", a.rope_theta), fmt::format("{}", b.rope_theta));
    differ("rms_norm_eps", fmt::format("{}", a.rms_norm_eps), fmt::format("{}", b.rms_norm_eps));
    differ("tie_word_embeddings", std::to_string(a.tie_word_embeddings), std::to_string(b.tie_word_embeddings));
    dicts.push_back(ms.back().state_dict());
  }
  auto avg = average_state_dicts(dicts, weights, paths);
  auto& out = ms.front();
  out.load_state_dict(avg, "average-rm");
  models::SaveOptions so;  // tokenizer files from the first member's directory (its source_dir)
  models::save_pretrained(out, out_dir, so);
  std::vector<double> used = weights.empty() ? std::vector<double>(paths.size(), 1.0) : weights;
  double total = 0;
  for (double w : used) total += w;
  for (auto& w : used) w /= total;
  return used;
}

}  // namespace keel::checkpoint
