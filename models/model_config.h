// ModelConfig: the HF config.json of a decoder-only model (Llama / Qwen2 / Mistral layout) as a
// plain struct, plus the model-family registry keyed by config.json's "model_type".
// A family entry reads the family's own fields and conventions (qwen2: q/k/v bias and
// max_window_layers; mistral: sliding_window; llama: attention_bias / mlp_bias) on top of the
// common ones. Deliberately not here: the module itself (transformer.h), tokenizers.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <torch/types.h>

#include "base/registry.h"

namespace keel::models {

enum class RopeScalingType { kNone, kLinear, kLlama3 };

/// config.json "rope_scaling" (key "rope_type", or the older "type").
struct RopeScaling {
  RopeScalingType type = RopeScalingType::kNone;
  double factor = 1.0;                             ///< linear and llama3
  double low_freq_factor = 1.0;                    ///< llama3
  double high_freq_factor = 4.0;                   ///< llama3
  int64_t original_max_position_embeddings = 8192; ///< llama3
};

struct ModelConfig {
  std::string model_type;  ///< registry key: llama | qwen2 | qwen3 | mistral
  std::vector<std::string> architectures;  ///< e.g. {"Qwen2ForCausalLM"}; informs which heads to load
  int64_t hidden_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;  ///< defaults to num_attention_heads when absent (HF default)
  int64_t head_dim = 0;             ///< defaults to hidden_size / num_attention_heads
  int64_t intermediate_size = 0;
  int64_t vocab_size = 0;
  int64_t max_position_embeddings = 0;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  bool tie_word_embeddings = false;
  bool attention_bias = false;  ///< bias on q/k/v_proj (qwen2 always; llama "attention_bias")
  bool o_proj_bias = false;     ///< bias on o_proj (llama "attention_bias" applies here too)
  bool mlp_bias = false;        ///< bias on gate/up/down_proj (llama "mlp_bias")
  bool qk_norm = false;         ///< RMSNorm over each head of q and k before RoPE (qwen3: q_norm / k_norm)
  int64_t sliding_window = 0;   ///< 0: full causal attention; else keys with q - k < window
  int64_t sliding_window_first_layer = 0;  ///< layers >= this use the window (qwen2 max_window_layers)
  std::optional<int64_t> bos_token_id;
  std::optional<int64_t> pad_token_id;
  std::vector<int64_t> eos_token_ids;  ///< config.json "eos_token_id": an int or a list
  at::ScalarType torch_dtype = at::kFloat;  ///< "torch_dtype" (or newer "dtype"): float32|float16|bfloat16
  double initializer_range = 0.02;
  std::string source_json;  ///< the original config.json text; saving keeps its other keys

  /// Whether layer `i` uses the sliding window.
  bool layer_uses_sliding_window(int64_t i) const {
    return sliding_window > 0 && i >= sliding_window_first_layer;
  }
};

/// Typed, error-reporting read access to one config.json for family parsers. Every error names
/// the file and the field.
class ConfigJson {
 public:
  ConfigJson(const std::string& json_text, std::string path);
  ~ConfigJson();
  const std::string& path() const { return path_; }
  /// Present and not null.
  bool has(const std::string& key) const;
  int64_t get_int(const std::string& key) const;
  int64_t get_int_or(const std::string& key, int64_t fallback) const;
  double get_number(const std::string& key) const;
  double get_number_or(const std::string& key, double fallback) const;
  bool get_bool_or(const std::string& key, bool fallback) const;
  std::string get_string(const std::string& key) const;
  std::string get_string_or(const std::string& key, const std::string& fallback) const;
  /// An int or a list of ints (eos_token_id); empty when absent or null.
  std::vector<int64_t> get_int_list_or_empty(const std::string& key) const;
  /// A list of strings (required).
  std::vector<std::string> get_string_list(const std::string& key) const;
  /// A nested object's accessor (keel::Error if absent or not an object); path shows "file: key".
  ConfigJson object(const std::string& key) const;
  const std::string& text() const { return text_; }

 private:
  struct Impl;
  std::shared_ptr<const Impl> impl_;
  std::string path_;
  std::string text_;
};

/// A family parser: fills `cfg` from `j` (the common fields are already set; see
/// parse_common_fields) and applies the family's conventions.
using ModelFamilyFn = std::function<void(const ConfigJson& j, ModelConfig& cfg)>;
using ModelRegistry = Registry<ModelFamilyFn>;

/// Adds llama, qwen2, qwen3, mistral.
void register_builtin_models(ModelRegistry& registry);

/// The fields every family shares (sizes, rope, ids, dtype); called before the family parser.
void parse_common_fields(const ConfigJson& j, ModelConfig& cfg);

/// Parses config.json text; `path` is only for messages. Unknown model_type, missing or mistyped
/// fields and inconsistent sizes are keel::Error naming the file and the field.
ModelConfig parse_model_config(const std::string& json_text, const std::string& path, const ModelRegistry& registry);

/// Reads `path` (a config.json, or a directory containing one).
ModelConfig load_model_config(const std::string& path, const ModelRegistry& registry);

/// Cross-field checks (head counts divide, head_dim even, positive sizes); `where` prefixes messages.
void validate_model_config(const ModelConfig& cfg, const std::string& where);

/// HF config.json text for `cfg`: the keys of cfg.source_json (if any) with keel's fields written
/// over them. `architecture` overrides "architectures" when non-empty.
std::string model_config_to_json(const ModelConfig& cfg, const std::string& architecture = "");

/// The HF class-name prefix of a family ("llama" -> "Llama", "qwen2" -> "Qwen2", "mistral" -> "Mistral").
std::string model_architecture_prefix(const std::string& model_type);

}  // namespace keel::models
