// The Llama-layout model the benches share (decode_bench, rollout_bench, train_step_bench): hidden
// `hidden` with 64-dim heads (hidden / 64 query heads, half as many key-value heads), SwiGLU
// intermediate 1376 per 512 of hidden, untied embeddings, rope theta 1e4, fp32. No eos_token_ids:
// nothing stops early unless a bench says so.
#pragma once

#include <cstdint>

#include <torch/torch.h>

#include "models/model_config.h"
#include "models/transformer.h"

namespace keel::bench {

inline models::ModelConfig llama_bench_config(int64_t hidden, int64_t layers, int64_t vocab) {
  models::ModelConfig c;
  c.model_type = "llama";
  c.hidden_size = hidden;
  c.num_hidden_layers = layers;
  c.num_attention_heads = hidden / 64;
  c.num_key_value_heads = hidden / 128;
  c.head_dim = 64;
  c.intermediate_size = 1376 * hidden / 512;
  c.vocab_size = vocab;
  c.max_position_embeddings = 4096;
  c.rms_norm_eps = 1e-5;
  c.rope_theta = 10000.0;
  c.tie_word_embeddings = false;
  return c;
}

/// The bench model: random init from torch seed 1234, eval mode; *params gets its parameter count.
inline models::Transformer make_bench_model(const models::ModelConfig& cfg, int64_t* params) {
  torch::manual_seed(1234);
  models::Transformer model(cfg);
  model.train(false);
  *params = 0;
  for (const auto& p : model.parameters()) *params += p.numel();
  return model;
}

}  // namespace keel::bench
