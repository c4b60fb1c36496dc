// Transformer: keel's decoder-only model (Llama / Qwen2 / Qwen3 / Mistral layout) behind a narrow handle.
// RMSNorm, RoPE (HF rotate_half convention; linear and llama3 scaling), GQA, SwiGLU, optional
// q/k/v (and o / MLP) bias, tied or untied embeddings, optional sliding window, a KV cache, and
// left-padded batches through attention_mask + position_ids. Heads: the LM head, a scalar value
// head (critic, "value_head.weight") and a scalar reward head ("score.weight", the name HF's
// *ForSequenceClassification uses, so those checkpoints load into it).
// Parameter names are HF's (model.embed_tokens.weight, model.layers.{i}.self_attn.q_proj.weight, ...).
// The torch::nn modules live in transformer_impl.h, included only by .cpp files.
// Loading / saving HF directories: pretrained.h. Deliberately not here: sampling (generate.h),
// log-prob bookkeeping (logprobs.h), tokenizers.
//
// Shape legend: B batch, T new tokens this call, S = past + T keys, H hidden, V vocab,
// Hkv key/value heads, D head_dim.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <torch/types.h>

#include "models/lora_options.h"
#include "models/model_config.h"

namespace keel::models {

struct TransformerImpl;  // torch::nn module, transformer_impl.h

/// Per-layer key/value buffers, preallocated to `capacity` slots. Slot i of sequence b holds the
/// token at column i of that sequence's (left-padded) attention_mask.
struct KVCache {
  std::vector<at::Tensor> k;  ///< per layer [B, Hkv, capacity, D]
  std::vector<at::Tensor> v;  ///< per layer [B, Hkv, capacity, D]
  int64_t length = 0;         ///< filled slots
  int64_t capacity() const { return k.empty() ? 0 : k[0].size(2); }
};

/// [interp] Forwards over at most this many tokens (B * T) run single-threaded (BLAS and ATen,
/// compat::SingleThreaded): a decode step of up to 32 sequences. Larger ones (prefill, training)
/// keep all threads, which pay off for big matmuls. The exception is the weight-bound linear
/// layer of up to 4 rows (models::linear), which still splits over the held-back threads while
/// other cores are idle.
inline constexpr int64_t kSmallForwardTokens = 32;

/// Which heads the model carries.
struct HeadOptions {
  bool lm_head = true;       ///< logits; with tie_word_embeddings it reuses model.embed_tokens.weight
  bool value_head = false;   ///< "value_head.weight" [1, H] (critic)
  bool reward_head = false;  ///< "score.weight" [1, H] (HF *ForSequenceClassification, num_labels = 1)
};

/// Where a decoder layer's weights live between uses: trainer/dist's sharded model (dist.sharding
/// full / gradients, ZeRO-3 / 2) keeps each layer's weights (or gradients) as shards and implements
/// this to make them whole around the layer's computation. While active(), every forward calls
/// acquire(i, next) before layer i and release(i) after it; with gradient checkpointing the
/// recomputing backward calls acquire(i, next), recomputes, backpropagates, then
/// gradients_ready(i) (layer i's parameter gradients are complete for this backward) and
/// release(i). `next` is the layer the caller will need after this one (-1: none), for
/// prefetching. Inactive: no calls, the weights are whole.
class LayerResidency {
 public:
  virtual ~LayerResidency() = default;
  virtual bool active() const = 0;
  /// Whether a forward that records a graph may run without gradient checkpointing (false when
  /// release() frees weights the graph would need in backward).
  virtual bool allows_graph_without_checkpointing() const = 0;
  virtual void acquire(int64_t layer, int64_t next) = 0;
  virtual void release(int64_t layer) = 0;
  virtual void gradients_ready(int64_t layer) = 0;
};

class Transformer {
 public:
  /// A randomly initialised model (HF init: normal(0, initializer_range), norms 1, biases 0) in fp32 on CPU.
  explicit Transformer(const ModelConfig& cfg, const HeadOptions& heads = {});

  /// Final-normed hidden states [B, T, H].
  /// input_ids [B, T] int64. attention_mask [B, S] (1 real / 0 pad, covering cached + new tokens;
  /// undefined = all real). position_ids [B, T] (undefined: from the mask as cumsum - 1, which
  /// makes left padding transparent; without a mask past + arange(T)). cache: keys/values of the
  /// new tokens are written at slots [cache->length, +T) and cache->length advances.
  at::Tensor forward_hidden(const at::Tensor& input_ids, const at::Tensor& attention_mask = {},
                            const at::Tensor& position_ids = {}, KVCache* cache = nullptr);
  /// Padding-free (varlen) forward: input_ids [1, T] holds sequences back to back, seq_lens their
  /// lengths (each >= 1, summing to T). Each sequence gets positions 0 .. len - 1 and attends only
  /// within itself, so its hidden states equal those of running it alone; the cost is its real
  /// tokens (verl's use_remove_padding, TRL's padding_free). Final-normed hidden states [1, T, H].
  at::Tensor forward_hidden_packed(const at::Tensor& input_ids, const std::vector<int64_t>& seq_lens);
  /// forward_hidden from input embeddings [B, T, H] (e.g. embed_tokens(ids), perturbed) instead of
  /// ids: no cache, positions from attention_mask [B, T]. For gradients w.r.t. the embeddings (the
  /// reward model's gradient penalty); it never checkpoints layers, since the reentrant
  /// checkpoint's backward cannot be differentiated again.
  at::Tensor forward_hidden_from_embeds(const at::Tensor& embeds, const at::Tensor& attention_mask = {});
  /// Logits [B, T, V] for hidden [B, T, H], in the model dtype.
  at::Tensor lm_logits(const at::Tensor& hidden) const;
  /// forward_hidden + lm_logits.
  at::Tensor forward(const at::Tensor& input_ids, const at::Tensor& attention_mask = {},
                     const at::Tensor& position_ids = {}, KVCache* cache = nullptr);
  /// Scalar value per position [B, T] (value head).
  at::Tensor values(const at::Tensor& hidden) const;
  /// Scalar reward per position [B, T] (score head); the sequence reward is the value at the last
  /// real token (see last_token_values).
  at::Tensor rewards(const at::Tensor& hidden) const;

  /// A deep copy (own parameters, same config, heads, device, dtype; adapters merged into a plain
  /// model). Copying a Transformer handle instead shares the parameters, like a torch::nn ModuleHolder.
  Transformer clone() const;
  /// Sets requires_grad on every parameter (false: a frozen reference / reward model).
  void set_requires_grad(bool on);

  /// Empty cache for `batch` sequences of up to `capacity` tokens, on the model's device and dtype.
  KVCache make_cache(int64_t batch, int64_t capacity) const;

  const ModelConfig& config() const { return cfg_; }
  const HeadOptions& heads() const { return heads_; }
  /// Adds a freshly initialised value / reward head (no-op if present).
  void add_value_head();
  void add_reward_head();

  /// All trainable parameters (for an optimizer, gradient reduction and clipping, weight sync):
  /// every parameter, or with LoRA adapters the adapters and the value / reward heads.
  std::vector<at::Tensor> parameters() const;
  /// Every parameter, HF names (adapters as <projection>.lora_A / .lora_B).
  std::map<std::string, at::Tensor> named_parameters() const;
  /// Tensors as written to model.safetensors (lm_head.weight left out when tied). With adapters:
  /// each adapted weight merged, W + (alpha / r) B A (a plain HF model, what export writes);
  /// from a without_adapters() handle, the base.
  std::map<std::string, at::Tensor> state_dict() const;
  /// state_dict without merging: the frozen base of a LoRA model.
  std::map<std::string, at::Tensor> base_state_dict() const;

  /// LoRA (models/lora.h): adapters A [r, in] (PEFT's init, kaiming-uniform with a = sqrt(5), drawn
  /// from `seed`) and B [out, r] = 0 on every targeted projection of every layer; the base
  /// (embeddings, decoder, lm_head) stops requiring grad, value / reward heads keep training.
  /// Once per model; errors name model.lora.
  void add_lora(const LoraOptions& opts, uint64_t seed);
  bool has_lora() const;
  const LoraOptions& lora_options() const;  ///< has_lora() only
  /// The adapters' parameters by name (empty without LoRA).
  std::map<std::string, at::Tensor> adapter_parameters() const;
  /// A handle on the same parameters whose forwards leave the adapters out: the base model, e.g.
  /// the frozen reference of a LoRA run without a second copy. (The paged engine and DecodeSession
  /// drive the layers themselves and always apply the adapters.)
  Transformer without_adapters() const;
  bool adapters_enabled() const { return adapters_enabled_; }
  /// Copies `tensors` into the parameters. Every parameter must be present with its exact shape;
  /// unexpected names are errors except rotary inv_freq buffers and a tied lm_head.weight.
  /// Tensors of heads this model does not carry (lm_head / score / value_head) are ignored.
  /// With allow_missing_heads, an absent value_head.weight / score.weight keeps its fresh init.
  /// `where` (a directory or file) prefixes error messages.
  void load_state_dict(const std::map<std::string, at::Tensor>& tensors, const std::string& where,
                       bool allow_missing_heads = false);

  void to(at::Device device, std::optional<at::ScalarType> dtype = std::nullopt);
  at::Device device() const;
  at::ScalarType dtype() const;
  void train(bool on = true);
  bool is_training() const;
  /// Recompute each decoder layer in backward instead of storing its activations (see .cpp:
  /// LibTorch's C++ API has no torch.utils.checkpoint; keel implements the reentrant variant).
  void set_gradient_checkpointing(bool on) { checkpointing_ = on; }
  bool gradient_checkpointing() const { return checkpointing_; }
  /// Mixed precision on CUDA: forward_hidden / lm_logits / values / rewards run under CUDA autocast
  /// in this dtype (bfloat16 or float16) while parameters, optimizer state and gradients stay in
  /// the parameter dtype (fp32), like torch.autocast. nullopt (the default) = no autocast; ignored
  /// on CPU, where keel computes in fp32. Callers get fp32 log-probs / values either way (see
  /// models/logprobs.h); logits are in the autocast dtype.
  void set_autocast(std::optional<at::ScalarType> dtype) { autocast_ = dtype; }
  std::optional<at::ScalarType> autocast() const { return autocast_; }

  /// Hooks around each decoder layer (LayerResidency); null = none. Shared by every handle on these
  /// parameters (copies, without_adapters()), not by clone().
  void set_layer_residency(std::shared_ptr<LayerResidency> r);
  LayerResidency* layer_residency() const;

  /// The directory this model was loaded from ("" if built); save_pretrained copies tokenizer files from it.
  const std::string& source_dir() const { return source_dir_; }
  void set_source_dir(std::string dir) { source_dir_ = std::move(dir); }

  /// The torch::nn module, for .cpp files that include transformer_impl.h.
  std::shared_ptr<TransformerImpl> impl() const { return impl_; }

 private:
  /// The decoder layers and final norm over x [B, T, H] (the one body of forward_hidden,
  /// forward_hidden_packed and forward_hidden_from_embeds; segments: see AttentionImpl::forward).
  at::Tensor decode(at::Tensor x, const at::Tensor& attention_mask, const at::Tensor& pos, KVCache* cache,
                    bool allow_checkpointing, const at::Tensor& segments = {});

  ModelConfig cfg_;
  HeadOptions heads_;
  std::shared_ptr<TransformerImpl> impl_;
  bool checkpointing_ = false;
  std::optional<at::ScalarType> autocast_;
  std::string source_dir_;
  bool adapters_enabled_ = true;
};

/// values [B, T] at each row's last position where mask [B, T] is 1 -> [B]. A row with no 1 is an error.
at::Tensor last_token_values(const at::Tensor& values, const at::Tensor& mask);

/// Position ids [B, S] for a 0/1 attention mask [B, S]: cumsum - 1, clamped at 0 on padding (HF).
at::Tensor position_ids_from_mask(const at::Tensor& attention_mask);

}  // namespace keel::models
