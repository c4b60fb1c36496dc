// Tests for models/model_config: the three families, rope_scaling, id fields, error messages that
// name the file and the field, and the config.json round trip.
#include "models/model_config.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "base/error.h"

namespace keel::models {
namespace {

using nlohmann::json;

json base_json(const std::string& model_type) {
  return {{"model_type", model_type},
          {"architectures", {"LlamaForCausalLM"}},
          {"hidden_size", 64},
          {"num_hidden_layers", 2},
          {"num_attention_heads", 8},
          {"num_key_value_heads", 2},
          {"intermediate_size", 128},
          {"vocab_size", 100},
          {"max_position_embeddings", 256},
          {"rms_norm_eps", 1e-5},
          {"rope_theta", 500000.0},
          {"hidden_act", "silu"},
          {"bos_token_id", 1},
          {"eos_token_id", {2, 3}},
          {"torch_dtype", "bfloat16"},
          {"tie_word_embeddings", true}};
}

ModelRegistry registry() {
  ModelRegistry r("model family");
  register_builtin_models(r);
  return r;
}

ModelConfig parse(const json& j) { return parse_model_config(j.dump(), "/m/config.json", registry()); }

TEST(ModelConfig, RegistryHasTheFourFamilies) {
  const auto r = registry();
  EXPECT_EQ(r.names(), (std::vector<std::string>{"llama", "mistral", "qwen2", "qwen3"}));
  ModelRegistry r2("model family");
  register_builtin_models(r2);
  EXPECT_THROW(register_builtin_models(r2), Error);  // duplicates
}

TEST(ModelConfig, LlamaWithLlama3RopeScaling) {
  auto j = base_json("llama");
  j["rope_scaling"] = {{"rope_type", "llama3"},
                       {"factor", 8.0},
                       {"low_freq_factor", 1.0},
                       {"high_freq_factor", 4.0},
                       {"original_max_position_embeddings", 8192}};
  const auto c = parse(j);
  EXPECT_EQ(c.model_type, "llama");
  EXPECT_EQ(c.hidden_size, 64);
  EXPECT_EQ(c.num_hidden_layers, 2);
  EXPECT_EQ(c.num_attention_heads, 8);
  EXPECT_EQ(c.num_key_value_heads, 2);
  EXPECT_EQ(c.head_dim, 8);  // 64 / 8
  EXPECT_EQ(c.intermediate_size, 128);
  EXPECT_EQ(c.vocab_size, 100);
  EXPECT_EQ(c.max_position_embeddings, 256);
  EXPECT_DOUBLE_EQ(c.rms_norm_eps, 1e-5);
  EXPECT_DOUBLE_EQ(c.rope_theta, 500000.0);
  EXPECT_EQ(c.rope_scaling.type, RopeScalingType::kLlama3);
  EXPECT_DOUBLE_EQ(c.rope_scaling.factor, 8.0);
  EXPECT_DOUBLE_EQ(c.rope_scaling.low_freq_factor, 1.0);
  EXPECT_DOUBLE_EQ(c.rope_scaling.high_freq_factor, 4.0);
  EXPECT_EQ(c.rope_scaling.original_max_position_embeddings, 8192);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_FALSE(c.attention_bias);
  EXPECT_EQ(c.sliding_window, 0);
  EXPECT_EQ(c.bos_token_id, 1);
  EXPECT_EQ(c.eos_token_ids, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(c.torch_dtype, at::kBFloat16);
}

// transformers >= 5 writes rope_parameters (theta and scaling in one object) instead of the
// top-level rope_theta / rope_scaling.
TEST(ModelConfig, RopeParametersOfTransformers5) {
  auto j = base_json("llama");
  j.erase("rope_theta");
  j["rope_parameters"] = {{"rope_type", "llama3"},
                          {"rope_theta", 250000.0},
                          {"factor", 8.0},
                          {"low_freq_factor", 1.0},
                          {"high_freq_factor", 4.0},
                          {"original_max_position_embeddings", 8192}};
  auto c = parse(j);
  EXPECT_DOUBLE_EQ(c.rope_theta, 250000.0);
  EXPECT_EQ(c.rope_scaling.type, RopeScalingType::kLlama3);
  EXPECT_DOUBLE_EQ(c.rope_scaling.factor, 8.0);
  EXPECT_EQ(c.rope_scaling.original_max_position_embeddings, 8192);
  // Written back in the same form, and read back the same.
  const auto back = json::parse(model_config_to_json(c));
  EXPECT_FALSE(back.contains("rope_scaling"));
  EXPECT_FALSE(back.contains("rope_theta"));
  EXPECT_EQ(back["rope_parameters"]["rope_type"], "llama3");
  EXPECT_EQ(back["rope_parameters"]["rope_theta"], 250000.0);
  const auto c2 = parse(back);
  EXPECT_DOUBLE_EQ(c2.rope_theta, 250000.0);
  EXPECT_EQ(c2.rope_scaling.type, RopeScalingType::kLlama3);
  j["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", 1e6}};
  c = parse(j);
  EXPECT_EQ(json::parse(model_config_to_json(c))["rope_parameters"]["rope_type"], "default");
  EXPECT_DOUBLE_EQ(c.rope_theta, 1e6);
  EXPECT_EQ(c.rope_scaling.type, RopeScalingType::kNone);
  j["rope_scaling"] = {{"rope_type", "linear"}, {"factor", 2.0}};
  try {
    parse(j);
    ADD_FAILURE() << "both rope_parameters and rope_scaling must be an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("both 'rope_parameters' and 'rope_scaling'"), std::string::npos) << e.what();
  }
  j.erase("rope_scaling");
  j["rope_parameters"] = {{"rope_type", "yarn"}, {"rope_theta", 1e6}, {"factor", 4.0}};
  try {
    parse(j);
    ADD_FAILURE() << "yarn must be rejected";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'rope_parameters' has type 'yarn'"), std::string::npos) << e.what();
  }
}

TEST(ModelConfig, LlamaAttentionBiasCoversOProj) {
  auto j = base_json("llama");
  j["attention_bias"] = true;
  j["rope_scaling"] = {{"type", "linear"}, {"factor", 2.0}};  // the older key
  const auto c = parse(j);
  EXPECT_TRUE(c.attention_bias);
  EXPECT_TRUE(c.o_proj_bias);
  EXPECT_EQ(c.rope_scaling.type, RopeScalingType::kLinear);
  EXPECT_DOUBLE_EQ(c.rope_scaling.factor, 2.0);
}

TEST(ModelConfig, Qwen2HasQkvBiasAndLayerWindow) {
  auto j = base_json("qwen2");
  j["eos_token_id"] = 5;
  j["sliding_window"] = 32;
  j["use_sliding_window"] = false;
  auto c = parse(j);
  EXPECT_TRUE(c.attention_bias);
  EXPECT_FALSE(c.o_proj_bias);
  EXPECT_EQ(c.sliding_window, 0);  // use_sliding_window false
  EXPECT_EQ(c.eos_token_ids, (std::vector<int64_t>{5}));
  j["use_sliding_window"] = true;
  j["max_window_layers"] = 1;
  c = parse(j);
  EXPECT_EQ(c.sliding_window, 32);
  EXPECT_FALSE(c.layer_uses_sliding_window(0));
  EXPECT_TRUE(c.layer_uses_sliding_window(1));
}

// Qwen3-0.6B's config.json fields that matter (head_dim 128 with hidden 1024 / 16 heads, no bias,
// layer_types of transformers >= 4.53): q/k RMSNorm on, biases per attention_bias, o_proj too.
TEST(ModelConfig, Qwen3HasQkNormExplicitHeadDimAndLayerTypes) {
  auto j = base_json("qwen3");
  j["architectures"] = {"Qwen3ForCausalLM"};
  j["head_dim"] = 32;  // hidden 64 / 8 heads would be 8
  j["attention_bias"] = false;
  j["use_sliding_window"] = false;
  j["sliding_window"] = nullptr;
  j["max_window_layers"] = 2;
  j["layer_types"] = {"full_attention", "full_attention"};
  auto c = parse(j);
  EXPECT_TRUE(c.qk_norm);
  EXPECT_EQ(c.head_dim, 32);
  EXPECT_FALSE(c.attention_bias);
  EXPECT_FALSE(c.o_proj_bias);
  EXPECT_FALSE(c.mlp_bias);
  EXPECT_EQ(c.sliding_window, 0);
  j["attention_bias"] = true;
  j["sliding_window"] = 8;
  j["layer_types"] = {"full_attention", "sliding_attention"};
  c = parse(j);
  EXPECT_TRUE(c.attention_bias);
  EXPECT_TRUE(c.o_proj_bias);
  EXPECT_FALSE(c.layer_uses_sliding_window(0));
  EXPECT_TRUE(c.layer_uses_sliding_window(1));
  EXPECT_EQ(c.sliding_window, 8);
  j["layer_types"] = {"sliding_attention", "full_attention"};
  try {
    parse(j);
    ADD_FAILURE() << "no error for interleaved layer_types";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/m/config.json: layer_types[1] is 'full_attention'"), std::string::npos)
        << e.what();
  }
  EXPECT_FALSE(parse(base_json("qwen2")).qk_norm);
}

TEST(ModelConfig, MistralSlidingWindow) {
  auto j = base_json("mistral");
  j["sliding_window"] = 16;
  EXPECT_EQ(parse(j).sliding_window, 16);
  EXPECT_TRUE(parse(j).layer_uses_sliding_window(0));
  j["sliding_window"] = nullptr;
  EXPECT_EQ(parse(j).sliding_window, 0);
}

TEST(ModelConfig, DefaultsFromHf) {
  auto j = base_json("llama");
  j.erase("num_key_value_heads");
  j.erase("rope_theta");
  j.erase("torch_dtype");
  j.erase("tie_word_embeddings");
  j["head_dim"] = 16;
  const auto c = parse(j);
  EXPECT_EQ(c.num_key_value_heads, 8);
  EXPECT_DOUBLE_EQ(c.rope_theta, 10000.0);
  EXPECT_EQ(c.torch_dtype, at::kFloat);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_EQ(c.head_dim, 16);
}

struct BadCase {
  const char* name;
  std::function<void(json&)> edit;
  const char* needle;
};

TEST(ModelConfig, ErrorsNameFileAndField) {
  const std::vector<BadCase> cases = {
      {"unknown type", [](json& j) { j["model_type"] = "gpt2"; }, "unknown model_type 'gpt2' (known: llama, mistral, qwen2, qwen3)"},
      {"no type", [](json& j) { j.erase("model_type"); }, "missing required field 'model_type'"},
      {"no hidden", [](json& j) { j.erase("hidden_size"); }, "missing required field 'hidden_size'"},
      {"no layers", [](json& j) { j.erase("num_hidden_layers"); }, "missing required field 'num_hidden_layers'"},
      {"no heads", [](json& j) { j.erase("num_attention_heads"); }, "missing required field 'num_attention_heads'"},
      {"no inter", [](json& j) { j.erase("intermediate_size"); }, "missing required field 'intermediate_size'"},
      {"no vocab", [](json& j) { j.erase("vocab_size"); }, "missing required field 'vocab_size'"},
      {"no eps", [](json& j) { j.erase("rms_norm_eps"); }, "missing required field 'rms_norm_eps'"},
      {"no maxpos", [](json& j) { j.erase("max_position_embeddings"); }, "missing required field 'max_position_embeddings'"},
      {"string size", [](json& j) { j["hidden_size"] = "64"; }, "field 'hidden_size' must be an integer"},
      {"float size", [](json& j) { j["vocab_size"] = 1.5; }, "field 'vocab_size' must be an integer"},
      {"negative", [](json& j) { j["num_hidden_layers"] = -1; }, "field 'num_hidden_layers' must be positive"},
      {"kv heads", [](json& j) { j["num_key_value_heads"] = 3; }, "multiple of num_key_value_heads"},
      {"head split", [](json& j) { j["num_attention_heads"] = 6; j["num_key_value_heads"] = 6; }, "multiple of num_attention_heads"},
      {"rope type", [](json& j) { j["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}}; }, "'rope_scaling' has type 'yarn'"},
      {"rope factor", [](json& j) { j["rope_scaling"] = {{"rope_type", "linear"}}; }, "missing required field 'factor'"},
      {"llama3 field", [](json& j) { j["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0}, {"high_freq_factor", 4.0}}; },
       "missing required field 'original_max_position_embeddings'"},
      {"act", [](json& j) { j["hidden_act"] = "gelu"; }, "field 'hidden_act' is 'gelu'"},
      {"dtype", [](json& j) { j["torch_dtype"] = "float64"; }, "field 'torch_dtype' is 'float64'"},
      {"eos type", [](json& j) { j["eos_token_id"] = "x"; }, "field 'eos_token_id' must be an integer or a list"},
      {"eos range", [](json& j) { j["eos_token_id"] = 1000; }, "eos_token_id 1000 is outside the vocabulary"},
      {"tie type", [](json& j) { j["tie_word_embeddings"] = 1; }, "field 'tie_word_embeddings' must be true or false"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto j = base_json("llama");
    c.edit(j);
    try {
      parse(j);
      ADD_FAILURE() << "no error";
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find("/m/config.json"), std::string::npos) << msg;
      EXPECT_NE(msg.find(c.needle), std::string::npos) << "expected '" << c.needle << "' in: " << msg;
    }
  }
  EXPECT_THROW(parse_model_config("{oops", "/m/config.json", registry()), Error);
  EXPECT_THROW(parse_model_config("[1]", "/m/config.json", registry()), Error);
  EXPECT_THROW(load_model_config("/nonexistent/dir/config.json", registry()), Error);
}

TEST(ModelConfig, JsonRoundTrip) {
  for (const std::string type : {"llama", "qwen2", "qwen3", "mistral"}) {
    SCOPED_TRACE(type);
    auto j = base_json(type);
    j["custom_key"] = "kept";
    j["sliding_window"] = 16;
    j["use_sliding_window"] = true;
    j["max_window_layers"] = 1;
    j["rope_scaling"] = {{"rope_type", "linear"}, {"factor", 3.0}};
    const auto a = parse(j);
    const std::string text = model_config_to_json(a);
    EXPECT_EQ(json::parse(text)["custom_key"], "kept");
    const auto b = parse_model_config(text, "/m/config.json", registry());
    EXPECT_EQ(b.hidden_size, a.hidden_size);
    EXPECT_EQ(b.num_key_value_heads, a.num_key_value_heads);
    EXPECT_EQ(b.head_dim, a.head_dim);
    EXPECT_EQ(b.attention_bias, a.attention_bias);
    EXPECT_EQ(b.o_proj_bias, a.o_proj_bias);
    EXPECT_EQ(b.sliding_window, a.sliding_window);
    EXPECT_EQ(b.sliding_window_first_layer, a.sliding_window_first_layer);
    EXPECT_EQ(b.rope_scaling.type, a.rope_scaling.type);
    EXPECT_DOUBLE_EQ(b.rope_scaling.factor, a.rope_scaling.factor);
    EXPECT_EQ(b.eos_token_ids, a.eos_token_ids);
    EXPECT_EQ(b.bos_token_id, a.bos_token_id);
    EXPECT_EQ(b.torch_dtype, a.torch_dtype);
    EXPECT_EQ(b.tie_word_embeddings, a.tie_word_embeddings);
    EXPECT_EQ(b.qk_norm, a.qk_norm);
  }
}

}  // namespace
}  // namespace keel::models
