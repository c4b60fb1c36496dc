// The torch::nn modules behind keel::models::Transformer. Include ONLY from .cpp files (it pulls
// in torch/nn); the rest of keel uses transformer.h. Submodule names are chosen so that
// named_parameters() yields HF names directly.
// Shape legend: B batch, T new tokens, S keys (past + T), H hidden, Hq query heads,
// Hkv key/value heads, D head_dim, I intermediate, V vocab.
#pragma once

#include <array>
#include <memory>

#include <torch/nn.h>

#include "models/lora_options.h"
#include "models/model_config.h"
#include "models/transformer.h"

namespace keel::models {

/// RoPE inverse frequencies [D/2] (fp32), with linear or llama3 scaling applied (HF's
/// _compute_default / _compute_linear / _compute_llama3_parameters).
at::Tensor rope_inv_freq(const ModelConfig& cfg);
/// cos, sin [B, T, D] (fp32) for position_ids [B, T]; emb = cat(freqs, freqs) (rotate_half layout).
std::pair<at::Tensor, at::Tensor> rope_cos_sin(const at::Tensor& inv_freq, const at::Tensor& position_ids);
/// Additive attention mask [B, 1, T, S] (0 allowed, -inf blocked): causal over cache slots, keys with
/// attention_mask 0 blocked, optional sliding window (q_slot - k_slot < window). A query always
/// sees its own slot, so padded query rows never become all -inf (no NaN); their outputs are
/// meaningless and ignored by callers. attention_mask [B, S] 0/1.
at::Tensor build_attention_mask(const at::Tensor& attention_mask, int64_t past, int64_t t, int64_t window,
                                at::ScalarType dtype);

/// One projection's LoRA adapter (undefined tensors = none): a [r, in], b [out, r], registered on
/// the projection's Linear module as "lora_A" / "lora_B".
struct LoraAdapter {
  at::Tensor a, b;
};

/// The model's adapters' shared settings. `enabled` is what the current forward uses: the
/// Transformer handle sets it for the duration of each forward (a handle from without_adapters()
/// runs the base model on the same parameters).
struct LoraState {
  LoraOptions opts;
  bool enabled = true;
};

/// W x + b, plus scale * B A dropout(x) when `ad` is set and the adapters are enabled.
at::Tensor lora_linear(const torch::nn::Linear& l, const at::Tensor& x, const LoraAdapter& ad, const LoraState* st,
                       bool training);

struct RMSNormImpl : torch::nn::Module {
  RMSNormImpl(int64_t dim, double eps);
  at::Tensor forward(const at::Tensor& x);  // [..., H] -> [..., H]
  at::Tensor weight;                        // [H]
  double eps;
};
TORCH_MODULE(RMSNorm);

struct AttentionImpl : torch::nn::Module {
  explicit AttentionImpl(const ModelConfig& cfg);
  /// x [B, T, H]; cos/sin [B, T, D]; mask [B, 1, T, S] or undefined (= causal, no padding);
  /// k_cache/v_cache [B, Hkv, capacity, D] or undefined; past = filled slots.
  /// segments (padding-free batches, Transformer::forward_hidden_packed): int64 CPU [K], the
  /// lengths of the sequences packed back to back in x [1, T]; each attends causally within
  /// itself only (and within `window` when this layer slides). Then mask and cache are unused.
  at::Tensor forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin, const at::Tensor& mask,
                     at::Tensor* k_cache, at::Tensor* v_cache, int64_t past, const at::Tensor& segments = {});
  /// The projections of x [B, T, H] with rotary applied to q and k: q [B, Hq, T, D], k and v
  /// [B, Hkv, T, D] (heads moved in front of time as views of the [B, T, heads, D] layout). The
  /// first half of forward; the paged decode step (rollout_engine.cpp) runs the rest its own way.
  std::tuple<at::Tensor, at::Tensor, at::Tensor> project(const at::Tensor& x, const at::Tensor& cos,
                                                         const at::Tensor& sin);
  torch::nn::Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};
  RMSNorm q_norm{nullptr}, k_norm{nullptr};  // qwen3 (ModelConfig::qk_norm): over each head, before RoPE
  int64_t num_heads, num_kv_heads, head_dim;
  /// This layer's sliding window (0 = full attention); read by the packed path, which builds its
  /// masks per sequence (the padded path gets its mask from Transformer::decode).
  int64_t window = 0;
  /// o_proj of the attention output [..., Hq * D] (LoRA-aware; the paged decode step calls it too).
  at::Tensor output(const at::Tensor& attn) { return lora_linear(o_proj, attn, lora[3], lora_state, is_training()); }
  std::array<LoraAdapter, 4> lora;     ///< q, k, v, o (Transformer::add_lora)
  LoraState* lora_state = nullptr;

 private:
  /// Causal attention of each packed sequence within itself: q [1, Hq, T, D], k / v [1, Hkv, T, D]
  /// -> [1, Hq, T, D].
  at::Tensor varlen_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                              const at::Tensor& segments, double scale) const;
};
TORCH_MODULE(Attention);

struct MLPImpl : torch::nn::Module {
  explicit MLPImpl(const ModelConfig& cfg);
  at::Tensor forward(const at::Tensor& x);  // down(silu(gate(x)) * up(x)), [B, T, H]
  torch::nn::Linear gate_proj{nullptr}, up_proj{nullptr}, down_proj{nullptr};
  std::array<LoraAdapter, 3> lora;  ///< gate, up, down (Transformer::add_lora)
  LoraState* lora_state = nullptr;
};
TORCH_MODULE(MLP);

struct DecoderLayerImpl : torch::nn::Module {
  explicit DecoderLayerImpl(const ModelConfig& cfg);
  at::Tensor forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin, const at::Tensor& mask,
                     at::Tensor* k_cache, at::Tensor* v_cache, int64_t past, const at::Tensor& segments = {});
  Attention self_attn{nullptr};
  MLP mlp{nullptr};
  RMSNorm input_layernorm{nullptr}, post_attention_layernorm{nullptr};
};
TORCH_MODULE(DecoderLayer);

/// HF's "model" submodule.
struct DecoderImpl : torch::nn::Module {
  explicit DecoderImpl(const ModelConfig& cfg);
  torch::nn::Embedding embed_tokens{nullptr};
  std::vector<DecoderLayer> layer_list;  // registered as "layers.{i}" through a ModuleList
  RMSNorm norm{nullptr};
};
TORCH_MODULE(Decoder);

struct TransformerImpl : torch::nn::Module {
  TransformerImpl(const ModelConfig& cfg, const HeadOptions& heads);
  void add_value_head();
  void add_reward_head();
  ModelConfig cfg;
  Decoder model{nullptr};
  torch::nn::Linear lm_head{nullptr};     // absent when tied or not requested
  torch::nn::Linear score{nullptr};       // reward head [1, H]
  torch::nn::Linear value_head{nullptr};  // critic head [1, H]
  at::Tensor inv_freq;                    // [D/2] fp32, not a parameter
  std::unique_ptr<LoraState> lora;        // set by Transformer::add_lora
  std::shared_ptr<LayerResidency> residency;  // Transformer::set_layer_residency (shared by every handle)
};

}  // namespace keel::models
