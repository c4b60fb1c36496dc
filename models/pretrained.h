// Load and save HF model directories (config.json + safetensors [+ index] + generation_config.json
// + tokenizer files) for keel::models::Transformer. Saving is atomic at the directory level.
// Deliberately not here: trainer state (optimizer, step counters) — that is trainer/checkpoint.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <torch/types.h>

#include "models/model_config.h"
#include "models/transformer.h"

namespace keel::models {

struct LoadOptions {
  /// Heads to build; nullopt = from the checkpoint: *ForSequenceClassification -> reward head only,
  /// otherwise the LM head, plus any value_head / score tensors present.
  std::optional<HeadOptions> heads;
  /// Requested heads absent from the checkpoint (value / reward) are freshly initialised when true,
  /// an error when false. A missing LM head is always an error.
  bool init_missing_heads = true;
  /// Parameter dtype; nullopt = float32 (training precision), whatever config.json says.
  std::optional<at::ScalarType> dtype;
  at::Device device = at::kCPU;
};

/// Loads an HF model directory: config.json (through `registry`), model.safetensors or
/// model.safetensors.index.json.
Transformer load_pretrained(const std::string& dir, const ModelRegistry& registry, const LoadOptions& opts = {});

struct SaveOptions {
  std::optional<at::ScalarType> dtype;  ///< written dtype; nullopt = the parameters' dtype
  /// Where tokenizer files are copied from; "" = the model's source_dir() (nothing if that is "" too).
  std::string tokenizer_dir;
  /// 0: one model.safetensors. Otherwise the weights are split as HF's save_pretrained(max_shard_size=)
  /// does (huggingface_hub split_state_dict_into_shards): tensors in module order, a new shard
  /// whenever the next tensor would push the current one past this many bytes, a tensor larger
  /// than the limit alone in its own shard. More than one shard is written as
  /// model-0000i-of-0000N.safetensors plus model.safetensors.index.json
  /// ({"metadata": {"total_size": bytes}, "weight_map": {name: file}}); one shard stays model.safetensors.
  uint64_t max_shard_bytes = 0;
};

/// Writes an HF model directory (config.json, model.safetensors or shards + index (see
/// SaveOptions::max_shard_bytes), generation_config.json, and tokenizer files when available). Atomic: everything is written to a temp directory next to
/// `dir` and renamed into place; an existing `dir` is replaced only once the new one is complete.
void save_pretrained(const Transformer& model, const std::string& dir, const SaveOptions& opts = {});

/// The shard plan of save_pretrained: `names_in_order` (module order) with byte sizes `bytes`
/// split at `max_shard_bytes` -> the names of each shard, in order. Exposed for tests.
std::vector<std::vector<std::string>> plan_shards(const std::vector<std::string>& names_in_order,
                                                  const std::vector<uint64_t>& bytes, uint64_t max_shard_bytes);

/// The files save_pretrained copies from a tokenizer directory when they exist.
const std::vector<std::string>& tokenizer_file_names();

}  // namespace keel::models
