// HF model directory load / save. See pretrained.h.
#include "models/pretrained.h"

#include <unistd.h>

#include <filesystem>
#include <random>

#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "models/safetensors.h"
#include "models/transformer_impl.h"
#include "base/error.h"
#include "base/fs.h"
#include "base/hub_name.h"

namespace keel::models {
namespace {
namespace fs = std::filesystem;

bool any_ends_with(const std::vector<std::string>& v, const std::string& suffix) {
  for (const auto& s : v)
    if (s.ends_with(suffix)) return true;
  return false;
}
}  // namespace

std::vector<std::vector<std::string>> plan_shards(const std::vector<std::string>& names_in_order,
                                                  const std::vector<uint64_t>& bytes, uint64_t max_shard_bytes) {
  TORCH_CHECK(names_in_order.size() == bytes.size(), "plan_shards: ", names_in_order.size(), " names but ",
              bytes.size(), " sizes");
  std::vector<std::vector<std::string>> shards;
  std::vector<std::string> current;
  uint64_t current_bytes = 0;
  for (size_t i = 0; i < names_in_order.size(); ++i) {
    const uint64_t n = bytes[i];
    if (max_shard_bytes > 0 && n > max_shard_bytes) {  // too big for any shard: alone in its own
      shards.push_back({names_in_order[i]});
      continue;
    }
    if (max_shard_bytes > 0 && !current.empty() && current_bytes + n > max_shard_bytes) {
      shards.push_back(std::move(current));
      current.clear();
      current_bytes = 0;
    }
    current.push_back(names_in_order[i]);
    current_bytes += n;
  }
  if (!current.empty()) shards.push_back(std::move(current));
  return shards;
}

const std::vector<std::string>& tokenizer_file_names() {
  static const std::vector<std::string> names = {
      "tokenizer.json",  "tokenizer_config.json", "tokenizer.model",    "special_tokens_map.json",
      "vocab.json",      "merges.txt",            "added_tokens.json",  "chat_template.jinja",
      "chat_template.json"};
  return names;
}

Transformer load_pretrained(const std::string& dir, const ModelRegistry& registry, const LoadOptions& opts) {
  if (looks_like_hub_name(dir)) fail("model directory {}", hub_name_message(dir, "give"));
  if (!fs::is_directory(dir)) fail("{}: not a model directory", dir);
  const ModelConfig cfg = load_model_config(dir, registry);
  const auto tensors = load_safetensors_dir(dir);
  HeadOptions heads;
  if (opts.heads) {
    heads = *opts.heads;
  } else {
    const bool classifier = any_ends_with(cfg.architectures, "ForSequenceClassification");
    heads.lm_head = !classifier;
    heads.reward_head = classifier || tensors.count("score.weight") != 0;
    heads.value_head = tensors.count("value_head.weight") != 0;
  }
  if (heads.lm_head && !cfg.tie_word_embeddings && !tensors.count("lm_head.weight"))
    fail("{}: no lm_head.weight in the checkpoint (architectures {}); load it with HeadOptions::lm_head = false "
         "or set tie_word_embeddings",
         dir, fmt::format("[{}]", fmt::join(cfg.architectures, ", ")));
  if (!opts.init_missing_heads) {
    if (heads.reward_head && !tensors.count("score.weight"))
      fail("{}: reward head requested but the checkpoint has no score.weight", dir);
    if (heads.value_head && !tensors.count("value_head.weight"))
      fail("{}: value head requested but the checkpoint has no value_head.weight", dir);
  }
  Transformer model(cfg, heads);
  model.to(opts.device, opts.dtype.value_or(at::kFloat));
  model.load_state_dict(tensors, dir, /*allow_missing_heads=*/opts.init_missing_heads);
  model.set_source_dir(dir);
  return model;
}

namespace {
// model.safetensors, or HF-style shards + model.safetensors.index.json, into the staging dir `tmp`
// (each file is itself written atomically; the whole directory is renamed into place afterwards).
void write_weights(const Transformer& model, const std::map<std::string, at::Tensor>& tensors, const fs::path& tmp,
                   uint64_t max_shard_bytes) {
  const std::map<std::string, std::string> meta{{"format", "pt"}};
  if (max_shard_bytes == 0) {
    save_safetensors((tmp / "model.safetensors").string(), tensors, meta);
    return;
  }
  // Module (registration) order, which is HF's state_dict order for this layout.
  std::vector<std::string> names;
  std::vector<uint64_t> bytes;
  uint64_t total = 0;
  for (const auto& item : model.impl()->named_parameters()) {
    auto it = tensors.find(item.key());
    if (it == tensors.end()) continue;  // e.g. a tied lm_head
    names.push_back(item.key());
    bytes.push_back(static_cast<uint64_t>(it->second.numel()) * it->second.element_size());
    total += bytes.back();
  }
  TORCH_CHECK(names.size() == tensors.size(), "save_pretrained: ", tensors.size() - names.size(),
              " state_dict tensors are not module parameters");
  const auto shards = plan_shards(names, bytes, max_shard_bytes);
  if (shards.size() == 1) {  // HF writes an unsharded checkpoint when everything fits
    save_safetensors((tmp / "model.safetensors").string(), tensors, meta);
    return;
  }
  nlohmann::ordered_json weight_map = nlohmann::ordered_json::object();
  std::map<std::string, std::string> file_of;
  for (size_t i = 0; i < shards.size(); ++i) {
    const std::string file = fmt::format("model-{:05d}-of-{:05d}.safetensors", i + 1, shards.size());
    std::map<std::string, at::Tensor> part;
    for (const auto& n : shards[i]) {
      part.emplace(n, tensors.at(n));
      file_of[n] = file;
    }
    save_safetensors((tmp / file).string(), part, meta);
  }
  for (const auto& [n, file] : file_of) weight_map[n] = file;  // sorted by name, as HF's json.dumps(sort_keys=True)
  nlohmann::ordered_json index = nlohmann::ordered_json::object();
  index["metadata"] = {{"total_size", total}};
  index["weight_map"] = weight_map;
  keel::fs::write_file_atomic(tmp / "model.safetensors.index.json", index.dump(2) + "\n");
}
}  // namespace

void save_pretrained(const Transformer& model, const std::string& dir, const SaveOptions& opts) {
  keel::fs::write_dir_atomic(fs::path(dir), [&](const fs::path& tmp) {
    ModelConfig cfg = model.config();
    std::map<std::string, at::Tensor> tensors = model.state_dict();
    const at::ScalarType dtype = opts.dtype.value_or(model.dtype());
    for (auto& [name, t] : tensors) t = t.detach().to(at::kCPU, dtype);
    cfg.torch_dtype = dtype;
    std::string arch;
    if (!model.heads().lm_head && model.heads().reward_head)
      arch = model_architecture_prefix(cfg.model_type) + "ForSequenceClassification";
    else if (model.heads().lm_head)
      arch = model_architecture_prefix(cfg.model_type) + "ForCausalLM";
    cfg.architectures = arch.empty() ? cfg.architectures : std::vector<std::string>{arch};
    std::string config_text = model_config_to_json(cfg, arch);
    if (!arch.empty() && arch.ends_with("ForSequenceClassification")) {
      auto j = nlohmann::json::parse(config_text);
      j["num_labels"] = 1;
      config_text = j.dump(2) + "\n";
    }
    write_weights(model, tensors, tmp, opts.max_shard_bytes);
    keel::fs::write_file_atomic(tmp / "config.json", config_text);
    nlohmann::json gen = nlohmann::json::object();
    if (cfg.bos_token_id) gen["bos_token_id"] = *cfg.bos_token_id;
    if (cfg.eos_token_ids.size() == 1) gen["eos_token_id"] = cfg.eos_token_ids[0];
    else if (!cfg.eos_token_ids.empty()) gen["eos_token_id"] = cfg.eos_token_ids;
    if (cfg.pad_token_id) gen["pad_token_id"] = *cfg.pad_token_id;
    keel::fs::write_file_atomic(tmp / "generation_config.json", gen.dump(2) + "\n");
    const std::string tok_dir = opts.tokenizer_dir.empty() ? model.source_dir() : opts.tokenizer_dir;
    if (!tok_dir.empty()) {
      for (const auto& name : tokenizer_file_names()) {
        const fs::path src = fs::path(tok_dir) / name;
        if (fs::is_regular_file(src)) {
          std::error_code ec;
          fs::copy_file(src, tmp / name, ec);
          if (ec) fail("{}: cannot copy tokenizer file {}: {}", dir, src.string(), ec.message());
        }
      }
    }
  }, "model");
}

}  // namespace keel::models
