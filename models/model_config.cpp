// HF config.json -> ModelConfig, and the llama / qwen2 / mistral family parsers. See model_config.h.
#include "models/model_config.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "base/error.h"

namespace keel::models {
namespace {
using nlohmann::json;

std::string dtype_to_hf(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return "float32";
    case at::kHalf: return "float16";
    case at::kBFloat16: return "bfloat16";
    default: fail("model config: dtype {} has no HF torch_dtype name keel writes", c10::toString(t));
  }
}

// ---- the three families ------------------------------------------------------------------------

void parse_llama(const ConfigJson& j, ModelConfig& cfg) {
  // LlamaAttention: bias=config.attention_bias on q, k, v AND o_proj; LlamaMLP: bias=config.mlp_bias.
  cfg.attention_bias = j.get_bool_or("attention_bias", false);
  cfg.o_proj_bias = cfg.attention_bias;
  cfg.mlp_bias = j.get_bool_or("mlp_bias", false);
  cfg.sliding_window = 0;
}

void parse_qwen2(const ConfigJson& j, ModelConfig& cfg) {
  // Qwen2Attention hard-codes bias=True on q/k/v and False on o_proj; the MLP has no bias.
  cfg.attention_bias = true;
  cfg.o_proj_bias = false;
  cfg.mlp_bias = false;
  // Sliding window only with use_sliding_window, and only for layers >= max_window_layers.
  if (j.get_bool_or("use_sliding_window", false) && j.has("sliding_window")) {
    cfg.sliding_window = j.get_int("sliding_window");
    cfg.sliding_window_first_layer = j.get_int_or("max_window_layers", 0);
  } else {
    cfg.sliding_window = 0;
  }
}

void parse_qwen3(const ConfigJson& j, ModelConfig& cfg) {
  // Qwen3Attention: bias=config.attention_bias on q, k, v AND o_proj (default false); q_norm /
  // k_norm (Qwen3RMSNorm over head_dim) on q and k before RoPE; the MLP has no bias. head_dim is
  // explicit in Qwen3's configs (128 where hidden / heads is 64 or 80).
  cfg.attention_bias = j.get_bool_or("attention_bias", false);
  cfg.o_proj_bias = cfg.attention_bias;
  cfg.mlp_bias = false;
  cfg.qk_norm = true;
  // As Qwen3Config's default layer_types: sliding_attention for layers >= max_window_layers when
  // use_sliding_window. An explicit layer_types must have that shape (full layers, then sliding).
  cfg.sliding_window = 0;
  if (j.get_bool_or("use_sliding_window", false) && j.has("sliding_window")) {
    cfg.sliding_window = j.get_int("sliding_window");
    cfg.sliding_window_first_layer = j.get_int_or("max_window_layers", 0);
  }
  if (j.has("layer_types")) {
    const auto types = j.get_string_list("layer_types");
    int64_t first = static_cast<int64_t>(types.size());
    for (size_t i = 0; i < types.size(); ++i)
      if (types[i] == "sliding_attention") {
        first = static_cast<int64_t>(i);
        break;
      }
    for (size_t i = 0; i < types.size(); ++i) {
      const bool sliding = static_cast<int64_t>(i) >= first;
      if (types[i] != (sliding ? "sliding_attention" : "full_attention"))
        fail("{}: layer_types[{}] is '{}': keel runs full_attention layers followed by sliding_attention ones", j.path(),
             i, types[i]);
    }
    if (first < static_cast<int64_t>(types.size())) {
      if (!j.has("sliding_window")) fail("{}: layer_types has sliding_attention layers but no sliding_window", j.path());
      cfg.sliding_window = j.get_int("sliding_window");
      cfg.sliding_window_first_layer = first;
    } else {
      cfg.sliding_window = 0;
    }
  }
}

void parse_mistral(const ConfigJson& j, ModelConfig& cfg) {
  cfg.attention_bias = false;
  cfg.o_proj_bias = false;
  cfg.mlp_bias = false;
  // Mistral v0.1 uses a 4096 window on every layer; v0.2+ sets "sliding_window": null.
  cfg.sliding_window = j.has("sliding_window") ? j.get_int("sliding_window") : 0;
  cfg.sliding_window_first_layer = 0;
}

}  // namespace

// ---- ConfigJson --------------------------------------------------------------------------------

struct ConfigJson::Impl {
  json j;
};

ConfigJson::ConfigJson(const std::string& json_text, std::string path) : path_(std::move(path)), text_(json_text) {
  auto impl = std::make_shared<Impl>();
  impl->j = json::parse(json_text, /*cb=*/nullptr, /*allow_exceptions=*/false);
  if (impl->j.is_discarded()) fail("{}: not valid JSON", path_);
  if (!impl->j.is_object()) fail("{}: expected a JSON object", path_);
  impl_ = std::move(impl);
}
ConfigJson::~ConfigJson() = default;

bool ConfigJson::has(const std::string& key) const { return impl_->j.contains(key) && !impl_->j[key].is_null(); }

int64_t ConfigJson::get_int(const std::string& key) const {
  if (!has(key)) fail("{}: missing required field '{}'", path_, key);
  const auto& v = impl_->j[key];
  if (!v.is_number_integer()) fail("{}: field '{}' must be an integer, got {}", path_, key, v.dump());
  return v.get<int64_t>();
}
int64_t ConfigJson::get_int_or(const std::string& key, int64_t fallback) const {
  return has(key) ? get_int(key) : fallback;
}
double ConfigJson::get_number(const std::string& key) const {
  if (!has(key)) fail("{}: missing required field '{}'", path_, key);
  const auto& v = impl_->j[key];
  if (!v.is_number()) fail("{}: field '{}' must be a number, got {}", path_, key, v.dump());
  return v.get<double>();
}
double ConfigJson::get_number_or(const std::string& key, double fallback) const {
  return has(key) ? get_number(key) : fallback;
}
bool ConfigJson::get_bool_or(const std::string& key, bool fallback) const {
  if (!has(key)) return fallback;
  const auto& v = impl_->j[key];
  if (!v.is_boolean()) fail("{}: field '{}' must be true or false, got {}", path_, key, v.dump());
  return v.get<bool>();
}
std::string ConfigJson::get_string(const std::string& key) const {
  if (!has(key)) fail("{}: missing required field '{}'", path_, key);
  const auto& v = impl_->j[key];
  if (!v.is_string()) fail("{}: field '{}' must be a string, got {}", path_, key, v.dump());
  return v.get<std::string>();
}
std::string ConfigJson::get_string_or(const std::string& key, const std::string& fallback) const {
  return has(key) ? get_string(key) : fallback;
}
std::vector<int64_t> ConfigJson::get_int_list_or_empty(const std::string& key) const {
  std::vector<int64_t> out;
  if (!has(key)) return out;
  const auto& v = impl_->j[key];
  if (v.is_number_integer()) return {v.get<int64_t>()};
  if (!v.is_array()) fail("{}: field '{}' must be an integer or a list of integers, got {}", path_, key, v.dump());
  for (const auto& e : v) {
    if (!e.is_number_integer()) fail("{}: field '{}' must contain only integers, got {}", path_, key, v.dump());
    out.push_back(e.get<int64_t>());
  }
  return out;
}
std::vector<std::string> ConfigJson::get_string_list(const std::string& key) const {
  if (!has(key)) fail("{}: missing required field '{}'", path_, key);
  const auto& v = impl_->j[key];
  if (!v.is_array()) fail("{}: field '{}' must be a list of strings, got {}", path_, key, v.dump());
  std::vector<std::string> out;
  for (const auto& e : v) {
    if (!e.is_string()) fail("{}: field '{}' must contain only strings, got {}", path_, key, v.dump());
    out.push_back(e.get<std::string>());
  }
  return out;
}

ConfigJson ConfigJson::object(const std::string& key) const {
  if (!has(key)) fail("{}: missing required field '{}'", path_, key);
  const auto& v = impl_->j[key];
  if (!v.is_object()) fail("{}: field '{}' must be an object, got {}", path_, key, v.dump());
  return ConfigJson(v.dump(), fmt::format("{} ({})", path_, key));
}

// ---- parsing -----------------------------------------------------------------------------------

void register_builtin_models(ModelRegistry& registry) {
  registry.add("llama", "Llama 2/3 layout: RMSNorm, RoPE (linear / llama3 scaling), GQA, SwiGLU; optional attention_bias",
               parse_llama);
  registry.add("qwen2", "Qwen2 / Qwen2.5: Llama layout with q/k/v bias; sliding window on layers >= max_window_layers",
               parse_qwen2);
  registry.add("qwen3", "Qwen3 (dense): Llama layout with RMSNorm on each q / k head before RoPE, optional attention_bias; "
               "sliding window on layers >= max_window_layers", parse_qwen3);
  registry.add("mistral", "Mistral: Llama layout with an optional sliding window on every layer", parse_mistral);
}

void parse_common_fields(const ConfigJson& j, ModelConfig& cfg) {
  const auto positive = [&](const char* key) {
    const int64_t v = j.get_int(key);
    if (v <= 0) fail("{}: field '{}' must be positive, got {}", j.path(), key, v);
    return v;
  };
  cfg.hidden_size = positive("hidden_size");
  cfg.num_hidden_layers = positive("num_hidden_layers");
  cfg.num_attention_heads = positive("num_attention_heads");
  cfg.num_key_value_heads = j.has("num_key_value_heads") ? positive("num_key_value_heads") : cfg.num_attention_heads;
  if (!j.has("head_dim") && cfg.hidden_size % cfg.num_attention_heads != 0)
    fail("{}: hidden_size ({}) must be a multiple of num_attention_heads ({}) when 'head_dim' is absent", j.path(),
         cfg.hidden_size, cfg.num_attention_heads);
  cfg.head_dim = j.has("head_dim") ? positive("head_dim") : cfg.hidden_size / cfg.num_attention_heads;
  cfg.intermediate_size = positive("intermediate_size");
  cfg.vocab_size = positive("vocab_size");
  cfg.max_position_embeddings = positive("max_position_embeddings");
  cfg.rms_norm_eps = j.get_number("rms_norm_eps");
  if (!(cfg.rms_norm_eps > 0)) fail("{}: field 'rms_norm_eps' must be positive", j.path());
  // transformers >= 5 writes "rope_parameters": {"rope_type", "rope_theta", scaling fields} in
  // place of the top-level rope_theta and rope_scaling of earlier versions; both are read.
  const bool rope_params = j.has("rope_parameters");
  if (rope_params && j.has("rope_scaling"))
    fail("{}: both 'rope_parameters' and 'rope_scaling' are set; expected one of them", j.path());
  const std::optional<ConfigJson> rp = rope_params ? std::optional(j.object("rope_parameters")) : std::nullopt;
  cfg.rope_theta = rp && rp->has("rope_theta") ? rp->get_number("rope_theta") : j.get_number_or("rope_theta", 10000.0);
  if (!(cfg.rope_theta > 0)) fail("{}: field 'rope_theta' must be positive", j.path());
  cfg.tie_word_embeddings = j.get_bool_or("tie_word_embeddings", false);
  cfg.initializer_range = j.get_number_or("initializer_range", 0.02);
  const std::string act = j.get_string_or("hidden_act", "silu");
  if (act != "silu") fail("{}: field 'hidden_act' is '{}', keel implements only 'silu' (SwiGLU)", j.path(), act);

  cfg.rope_scaling = {};
  if (rp || j.has("rope_scaling")) {
    const ConfigJson rs = rp ? *rp : j.object("rope_scaling");
    const std::string type = rs.has("rope_type") ? rs.get_string("rope_type") : rs.get_string_or("type", "default");
    if (type == "default") {
      cfg.rope_scaling.type = RopeScalingType::kNone;
    } else if (type == "linear") {
      cfg.rope_scaling.type = RopeScalingType::kLinear;
      cfg.rope_scaling.factor = rs.get_number("factor");
    } else if (type == "llama3") {
      cfg.rope_scaling.type = RopeScalingType::kLlama3;
      cfg.rope_scaling.factor = rs.get_number("factor");
      cfg.rope_scaling.low_freq_factor = rs.get_number("low_freq_factor");
      cfg.rope_scaling.high_freq_factor = rs.get_number("high_freq_factor");
      cfg.rope_scaling.original_max_position_embeddings = rs.get_int("original_max_position_embeddings");
      if (!(cfg.rope_scaling.high_freq_factor > cfg.rope_scaling.low_freq_factor))
        fail("{}: rope_scaling high_freq_factor must exceed low_freq_factor", j.path());
    } else {
      fail("{}: field '{}' has type '{}', keel supports default, linear, llama3", j.path(),
           rp ? "rope_parameters" : "rope_scaling", type);
    }
    if (!(cfg.rope_scaling.factor > 0)) fail("{}: rope_scaling 'factor' must be positive", j.path());
  }

  if (j.has("bos_token_id")) cfg.bos_token_id = j.get_int("bos_token_id");
  if (j.has("pad_token_id")) cfg.pad_token_id = j.get_int("pad_token_id");
  cfg.eos_token_ids = j.get_int_list_or_empty("eos_token_id");

  const std::string dkey = j.has("torch_dtype") ? "torch_dtype" : "dtype";
  const std::string dt = j.get_string_or(dkey, "float32");
  if (dt == "float32") cfg.torch_dtype = at::kFloat;
  else if (dt == "float16") cfg.torch_dtype = at::kHalf;
  else if (dt == "bfloat16") cfg.torch_dtype = at::kBFloat16;
  else fail("{}: field '{}' is '{}', expected float32, float16 or bfloat16", j.path(), dkey, dt);

  cfg.architectures.clear();
  if (j.has("architectures")) {
    // Read through the raw JSON: a list of strings.
    const json a = json::parse(j.text(), nullptr, false)["architectures"];
    if (!a.is_array()) fail("{}: field 'architectures' must be a list of strings", j.path());
    for (const auto& e : a) {
      if (!e.is_string()) fail("{}: field 'architectures' must be a list of strings", j.path());
      cfg.architectures.push_back(e.get<std::string>());
    }
  }
}

void validate_model_config(const ModelConfig& c, const std::string& where) {
  if (c.num_attention_heads % c.num_key_value_heads != 0)
    fail("{}: num_attention_heads ({}) must be a multiple of num_key_value_heads ({})", where, c.num_attention_heads,
         c.num_key_value_heads);
  if (c.head_dim <= 0 || c.head_dim % 2 != 0) fail("{}: head_dim ({}) must be positive and even for RoPE", where, c.head_dim);
  if (c.sliding_window < 0) fail("{}: sliding_window must be >= 0, got {}", where, c.sliding_window);
  for (const int64_t id : c.eos_token_ids)
    if (id < 0 || id >= c.vocab_size) fail("{}: eos_token_id {} is outside the vocabulary [0, {})", where, id, c.vocab_size);
}

ModelConfig parse_model_config(const std::string& json_text, const std::string& path, const ModelRegistry& registry) {
  const ConfigJson j(json_text, path);
  ModelConfig cfg;
  cfg.model_type = j.get_string("model_type");
  if (!registry.contains(cfg.model_type))
    fail("{}: unknown model_type '{}' (known: {})", path, cfg.model_type, registry.known());
  parse_common_fields(j, cfg);
  registry.get(cfg.model_type).fn(j, cfg);
  cfg.source_json = json_text;
  validate_model_config(cfg, path);
  return cfg;
}

ModelConfig load_model_config(const std::string& path, const ModelRegistry& registry) {
  std::filesystem::path p(path);
  if (std::filesystem::is_directory(p)) p /= "config.json";
  std::ifstream in(p);
  if (!in) fail("{}: cannot read model config", p.string());
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_model_config(ss.str(), p.string(), registry);
}

std::string model_architecture_prefix(const std::string& model_type) {
  if (model_type == "llama") return "Llama";
  if (model_type == "qwen2") return "Qwen2";
  if (model_type == "qwen3") return "Qwen3";
  if (model_type == "mistral") return "Mistral";
  std::string s = model_type;
  if (!s.empty()) s[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(s[0])));
  return s;
}

std::string model_config_to_json(const ModelConfig& c, const std::string& architecture) {
  json j = json::object();
  if (!c.source_json.empty()) {
    j = json::parse(c.source_json, nullptr, false);
    if (j.is_discarded() || !j.is_object()) j = json::object();
  }
  j["model_type"] = c.model_type;
  if (!architecture.empty()) j["architectures"] = {architecture};
  else if (!c.architectures.empty()) j["architectures"] = c.architectures;
  else j["architectures"] = {model_architecture_prefix(c.model_type) + "ForCausalLM"};
  j["hidden_size"] = c.hidden_size;
  j["num_hidden_layers"] = c.num_hidden_layers;
  j["num_attention_heads"] = c.num_attention_heads;
  j["num_key_value_heads"] = c.num_key_value_heads;
  if (c.head_dim != c.hidden_size / c.num_attention_heads || j.contains("head_dim")) j["head_dim"] = c.head_dim;
  j["intermediate_size"] = c.intermediate_size;
  j["vocab_size"] = c.vocab_size;
  j["max_position_embeddings"] = c.max_position_embeddings;
  j["rms_norm_eps"] = c.rms_norm_eps;
  j["rope_theta"] = c.rope_theta;
  j["hidden_act"] = "silu";
  j["tie_word_embeddings"] = c.tie_word_embeddings;
  j["initializer_range"] = c.initializer_range;
  switch (c.rope_scaling.type) {
    case RopeScalingType::kNone: j["rope_scaling"] = nullptr; break;
    case RopeScalingType::kLinear: j["rope_scaling"] = {{"rope_type", "linear"}, {"factor", c.rope_scaling.factor}}; break;
    case RopeScalingType::kLlama3:
      j["rope_scaling"] = {{"rope_type", "llama3"},
                           {"factor", c.rope_scaling.factor},
                           {"low_freq_factor", c.rope_scaling.low_freq_factor},
                           {"high_freq_factor", c.rope_scaling.high_freq_factor},
                           {"original_max_position_embeddings", c.rope_scaling.original_max_position_embeddings}};
      break;
  }
  if (j.contains("rope_parameters")) {
    // The source was written by transformers >= 5: keep its form (one rope_parameters object; a
    // config with both forms is an error when read back).
    json rp = j["rope_scaling"].is_null() ? json{{"rope_type", "default"}} : j["rope_scaling"];
    rp["rope_theta"] = c.rope_theta;
    j["rope_parameters"] = rp;
    j.erase("rope_scaling");
    j.erase("rope_theta");
  }
  if (c.model_type == "llama") {
    if (c.attention_bias != c.o_proj_bias)
      fail("model config: llama cannot express q/k/v bias without o_proj bias in config.json");
    j["attention_bias"] = c.attention_bias;
    j["mlp_bias"] = c.mlp_bias;
  } else if (c.model_type == "qwen2") {
    j["use_sliding_window"] = c.sliding_window > 0;
    if (c.sliding_window > 0) {
      j["sliding_window"] = c.sliding_window;
      j["max_window_layers"] = c.sliding_window_first_layer;
    }
  } else if (c.model_type == "qwen3") {
    if (c.attention_bias != c.o_proj_bias)
      fail("model config: qwen3 cannot express q/k/v bias without o_proj bias in config.json");
    j["attention_bias"] = c.attention_bias;
    j["head_dim"] = c.head_dim;
    j["use_sliding_window"] = c.sliding_window > 0;
    j["sliding_window"] = c.sliding_window > 0 ? json(c.sliding_window) : json(nullptr);
    j["max_window_layers"] = c.sliding_window > 0 ? c.sliding_window_first_layer : c.num_hidden_layers;
    j.erase("layer_types");  // derived again from the keys above when read back
  } else if (c.model_type == "mistral") {
    j["sliding_window"] = c.sliding_window > 0 ? json(c.sliding_window) : json(nullptr);
  }
  if (c.bos_token_id) j["bos_token_id"] = *c.bos_token_id;
  else j.erase("bos_token_id");
  if (c.pad_token_id) j["pad_token_id"] = *c.pad_token_id;
  if (c.eos_token_ids.size() == 1) j["eos_token_id"] = c.eos_token_ids[0];
  else if (!c.eos_token_ids.empty()) j["eos_token_id"] = c.eos_token_ids;
  else j.erase("eos_token_id");
  j.erase("dtype");
  j["torch_dtype"] = dtype_to_hf(c.torch_dtype);
  return j.dump(2) + "\n";
}

}  // namespace keel::models
