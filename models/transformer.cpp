// The decoder-only transformer: modules (transformer_impl.h) and the Transformer handle
// (transformer.h). Follows HF's modeling_llama.py / modeling_qwen2.py / modeling_mistral.py.
#include "models/transformer.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>

#include <torch/torch.h>

#include "models/compat.h"
#include "models/fused_cpu.h"
#include "models/transformer_impl.h"
#include "base/error.h"

namespace keel::models {

// ---- RoPE and masks ----------------------------------------------------------------------------

at::Tensor rope_inv_freq(const ModelConfig& cfg) {
  const int64_t d = cfg.head_dim;
  // inv_freq_i = 1 / theta^(2i / D), i = 0 .. D/2-1
  auto inv_freq = 1.0 / torch::pow(cfg.rope_theta, torch::arange(0, d, 2, torch::kFloat64) / static_cast<double>(d));
  const auto& rs = cfg.rope_scaling;
  if (rs.type == RopeScalingType::kLinear) {
    inv_freq = inv_freq / rs.factor;  // positions divided by factor
  } else if (rs.type == RopeScalingType::kLlama3) {
    // Llama 3.1: long wavelengths are slowed by `factor`, short ones kept, the band between
    // interpolated smoothly (HF _compute_llama3_parameters).
    const double old_ctx = static_cast<double>(rs.original_max_position_embeddings);
    const double low_freq_wavelen = old_ctx / rs.low_freq_factor;
    const double high_freq_wavelen = old_ctx / rs.high_freq_factor;
    auto wavelen = 2.0 * std::numbers::pi / inv_freq;
    auto scaled = torch::where(wavelen > low_freq_wavelen, inv_freq / rs.factor, inv_freq);
    auto smooth = (old_ctx / wavelen - rs.low_freq_factor) / (rs.high_freq_factor - rs.low_freq_factor);
    auto smoothed = (1.0 - smooth) * scaled / rs.factor + smooth * scaled;
    auto is_medium = (wavelen >= high_freq_wavelen).logical_and(wavelen <= low_freq_wavelen);
    inv_freq = torch::where(is_medium, smoothed, scaled);
  }
  // HF computes inv_freq in fp32 (int64 arange -> float); match that rounding.
  return inv_freq.to(torch::kFloat);
}

std::pair<at::Tensor, at::Tensor> rope_cos_sin(const at::Tensor& inv_freq, const at::Tensor& position_ids) {
  auto freqs = position_ids.to(torch::kFloat).unsqueeze(-1) * inv_freq.to(position_ids.device());  // [B, T, D/2]
  auto emb = torch::cat({freqs, freqs}, -1);                                                          // [B, T, D]
  return {emb.cos(), emb.sin()};
}

at::Tensor build_attention_mask(const at::Tensor& attention_mask, int64_t past, int64_t t, int64_t window,
                                at::ScalarType dtype) {
  const int64_t s = attention_mask.size(1);
  const auto dev = attention_mask.device();
  auto q_slot = torch::arange(past, past + t, torch::TensorOptions().dtype(torch::kLong).device(dev));
  auto k_slot = torch::arange(s, torch::TensorOptions().dtype(torch::kLong).device(dev));
  auto diff = q_slot.unsqueeze(1) - k_slot.unsqueeze(0);  // [T, S]
  auto allowed = diff >= 0;
  // [interp] sliding window as in transformers >= 4.48 (masking_utils): keys with q - k < window,
  // i.e. `window` keys including the query itself.
  if (window > 0) allowed = allowed.logical_and(diff < window);
  auto keys = attention_mask.to(torch::kBool).unsqueeze(1);                   // [B, 1, S]
  auto full = allowed.unsqueeze(0).logical_and(keys).logical_or((diff == 0).unsqueeze(0));  // [B, T, S]
  auto out = torch::zeros({attention_mask.size(0), 1, t, s}, torch::TensorOptions().dtype(dtype).device(dev));
  return out.masked_fill(full.unsqueeze(1).logical_not(), -std::numeric_limits<double>::infinity());
}

at::Tensor position_ids_from_mask(const at::Tensor& attention_mask) {
  return (attention_mask.to(torch::kLong).cumsum(-1) - 1).clamp_min(0);
}

at::Tensor last_token_values(const at::Tensor& values, const at::Tensor& mask) {
  TORCH_CHECK(values.dim() == 2 && mask.sizes() == values.sizes(), "last_token_values: values ", values.sizes(),
              " and mask ", mask.sizes(), " must both be [B, T]");
  auto pos = torch::arange(values.size(1), torch::TensorOptions().dtype(torch::kLong).device(values.device()));
  auto last = torch::where(mask.to(torch::kBool), pos.unsqueeze(0), torch::full_like(pos, -1).unsqueeze(0)).amax(1);
  TORCH_CHECK((last >= 0).all().item<bool>(), "last_token_values: a row of mask has no 1");
  return values.gather(1, last.unsqueeze(1)).squeeze(1);
}

// ---- modules -----------------------------------------------------------------------------------

RMSNormImpl::RMSNormImpl(int64_t dim, double eps_) : eps(eps_) {
  weight = register_parameter("weight", torch::ones({dim}));
}

at::Tensor RMSNormImpl::forward(const at::Tensor& x) { return rms_norm(x, weight, eps); }

AttentionImpl::AttentionImpl(const ModelConfig& c)
    : num_heads(c.num_attention_heads), num_kv_heads(c.num_key_value_heads), head_dim(c.head_dim) {
  using torch::nn::LinearOptions;
  q_proj = register_module("q_proj", torch::nn::Linear(LinearOptions(c.hidden_size, num_heads * head_dim).bias(c.attention_bias)));
  k_proj = register_module("k_proj", torch::nn::Linear(LinearOptions(c.hidden_size, num_kv_heads * head_dim).bias(c.attention_bias)));
  v_proj = register_module("v_proj", torch::nn::Linear(LinearOptions(c.hidden_size, num_kv_heads * head_dim).bias(c.attention_bias)));
  o_proj = register_module("o_proj", torch::nn::Linear(LinearOptions(num_heads * head_dim, c.hidden_size).bias(c.o_proj_bias)));
  if (c.qk_norm) {
    q_norm = register_module("q_norm", RMSNorm(head_dim, c.rms_norm_eps));
    k_norm = register_module("k_norm", RMSNorm(head_dim, c.rms_norm_eps));
  }
}

namespace {
/// A Linear module's forward through models::linear (the decode-step fast path, fused_cpu.h).
at::Tensor apply_linear(const torch::nn::Linear& l, const at::Tensor& x) { return linear(x, l->weight, l->bias); }

/// GQA (HF repeat_kv): key / value heads [B, Hkv, S, D] repeated to [B, Hkv * rep, S, D], query
/// head h reading key/value head h / rep.
at::Tensor repeat_kv(const at::Tensor& t, int64_t rep) {
  if (rep == 1) return t;
  const int64_t b = t.size(0), hkv = t.size(1), s = t.size(2), d = t.size(3);
  return t.unsqueeze(2).expand({b, hkv, rep, s, d}).reshape({b, hkv * rep, s, d});
}
}  // namespace

at::Tensor lora_linear(const torch::nn::Linear& l, const at::Tensor& x, const LoraAdapter& ad, const LoraState* st,
                       bool training) {
  auto y = apply_linear(l, x);
  if (st == nullptr || !st->enabled || !ad.a.defined()) return y;
  // LoRA eq. 3: h = W0 x + (alpha / r) B A x; PEFT applies its dropout to the adapter's input only.
  const auto h = st->opts.dropout > 0 && training ? torch::dropout(x, st->opts.dropout, /*train=*/true) : x;
  return y + torch::linear(torch::linear(h, ad.a), ad.b) * st->opts.scale();
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> AttentionImpl::project(const at::Tensor& x, const at::Tensor& cos,
                                                                       const at::Tensor& sin) {
  const int64_t b = x.size(0), t = x.size(1);
  // Rotary on [B, T, H, D] (the projections' own layout, so the fused kernel reads it in order),
  // then heads in front of time.
  const bool tr = is_training();
  auto q = lora_linear(q_proj, x, lora[0], lora_state, tr).view({b, t, num_heads, head_dim});
  auto k = lora_linear(k_proj, x, lora[1], lora_state, tr).view({b, t, num_kv_heads, head_dim});
  if (!q_norm.is_empty()) {  // Qwen3: RMSNorm over each head's D before RoPE
    q = q_norm(q);
    k = k_norm(k);
  }
  q = rotary(q, cos, sin).transpose(1, 2);  // [B, Hq, T, D]
  k = rotary(k, cos, sin).transpose(1, 2);  // [B, Hkv, T, D]
  auto v = lora_linear(v_proj, x, lora[2], lora_state, tr).view({b, t, num_kv_heads, head_dim}).transpose(1, 2);
  return {q, k, v};
}

at::Tensor AttentionImpl::varlen_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                           const at::Tensor& segments, double scale) const {
  // What flash-attn's varlen kernels do for verl / TRL padding-free batches, one sequence at a
  // time: the cost is sum(len^2), not (sum len)^2, and no token sees another sequence.
  const int64_t rep = num_heads / num_kv_heads;
  const auto* lens = segments.data_ptr<int64_t>();
  std::vector<at::Tensor> outs;
  outs.reserve(static_cast<size_t>(segments.numel()));
  int64_t o = 0;
  for (int64_t i = 0; i < segments.numel(); ++i) {
    const int64_t len = lens[i];
    const auto qs = q.narrow(2, o, len);
    const auto ks = repeat_kv(k.narrow(2, o, len), rep);
    const auto vs = repeat_kv(v.narrow(2, o, len), rep);
    at::Tensor m;  // a sliding layer's window only matters once the sequence is longer than it
    if (window > 0 && len > window)
      m = build_attention_mask(torch::ones({1, len}, torch::TensorOptions().dtype(torch::kLong).device(q.device())), 0,
                               len, window, q.scalar_type());
    outs.push_back(compat::scaled_dot_product_attention(qs, ks, vs, m, /*is_causal=*/!m.defined(), scale));
    o += len;
  }
  return outs.size() == 1 ? outs[0] : torch::cat(outs, 2);
}

at::Tensor AttentionImpl::forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                                  const at::Tensor& mask, at::Tensor* k_cache, at::Tensor* v_cache, int64_t past,
                                  const at::Tensor& segments) {
  const int64_t b = x.size(0), t = x.size(1);
  auto [q, k, v] = project(x, cos, sin);
  if (segments.defined()) {
    const double scale = 1.0 / std::sqrt(static_cast<double>(head_dim));
    const auto out = varlen_attention(q, k, v, segments, scale);  // [1, Hq, T, D]
    return output(out.transpose(1, 2).reshape({b, t, num_heads * head_dim}));
  }
  if (k_cache != nullptr) {
    k_cache->narrow(2, past, t).copy_(k);
    v_cache->narrow(2, past, t).copy_(v);
    k = k_cache->narrow(2, 0, past + t);  // [B, Hkv, S, D]
    v = v_cache->narrow(2, 0, past + t);
  }
  const int64_t s = k.size(2);
  const double scale = 1.0 / std::sqrt(static_cast<double>(head_dim));
  const int64_t rep = num_heads / num_kv_heads;
  if (mask.defined()) {
    // A decode step (a few query rows, the keys and values read from the cache in place; no
    // autograd): one fused pass per row, already in o_proj's layout [B, T, Hq, D].
    auto fused = small_attention(q, k, v, mask, scale);
    if (fused.defined()) return output(fused.view({b, t, num_heads * head_dim}));
  }
  at::Tensor out;  // [B, Hq, T, D]
  if (rep > 1 && mask.defined() && x.device().is_cpu()) {
    // GQA with an explicit mask on CPU (every cached decode step): the rep query heads that share
    // a key/value head attend as rep * T rows of that head, so the keys and values are read in
    // place (from the cache) instead of copied rep times. Same products as repeat_kv below.
    auto qg = q.reshape({b, num_kv_heads, rep * t, head_dim});  // query head h = g * rep + r
    auto mg = mask.unsqueeze(2).expand({b, mask.size(1), rep, t, s}).reshape({b, mask.size(1), rep * t, s});
    out = compat::scaled_dot_product_attention(qg, k, v, mg, /*is_causal=*/false, scale)
              .reshape({b, num_heads, t, head_dim});
  } else {
    k = repeat_kv(k, rep);
    v = repeat_kv(v, rep);
    // An undefined mask means plain causal attention with T == S (no cache, no padding).
    out = compat::scaled_dot_product_attention(q, k, v, mask, /*is_causal=*/!mask.defined(), scale);
  }
  return output(out.transpose(1, 2).reshape({b, t, num_heads * head_dim}));
}

MLPImpl::MLPImpl(const ModelConfig& c) {
  using torch::nn::LinearOptions;
  gate_proj = register_module("gate_proj", torch::nn::Linear(LinearOptions(c.hidden_size, c.intermediate_size).bias(c.mlp_bias)));
  up_proj = register_module("up_proj", torch::nn::Linear(LinearOptions(c.hidden_size, c.intermediate_size).bias(c.mlp_bias)));
  down_proj = register_module("down_proj", torch::nn::Linear(LinearOptions(c.intermediate_size, c.hidden_size).bias(c.mlp_bias)));
}

at::Tensor MLPImpl::forward(const at::Tensor& x) {
  const bool tr = is_training();
  return lora_linear(down_proj,
                     swiglu(lora_linear(gate_proj, x, lora[0], lora_state, tr), lora_linear(up_proj, x, lora[1], lora_state, tr)),
                     lora[2], lora_state, tr);
}

DecoderLayerImpl::DecoderLayerImpl(const ModelConfig& c) {
  self_attn = register_module("self_attn", Attention(c));
  mlp = register_module("mlp", MLP(c));
  input_layernorm = register_module("input_layernorm", RMSNorm(c.hidden_size, c.rms_norm_eps));
  post_attention_layernorm = register_module("post_attention_layernorm", RMSNorm(c.hidden_size, c.rms_norm_eps));
}

at::Tensor DecoderLayerImpl::forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                                     const at::Tensor& mask, at::Tensor* k_cache, at::Tensor* v_cache, int64_t past,
                                     const at::Tensor& segments) {
  auto h = x + self_attn->forward(input_layernorm(x), cos, sin, mask, k_cache, v_cache, past, segments);
  return h + mlp(post_attention_layernorm(h));
}

DecoderImpl::DecoderImpl(const ModelConfig& c) {
  embed_tokens = register_module("embed_tokens", torch::nn::Embedding(c.vocab_size, c.hidden_size));
  torch::nn::ModuleList layers;
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    layer_list.emplace_back(c);
    if (c.layer_uses_sliding_window(i)) layer_list.back()->self_attn->window = c.sliding_window;
    layers->push_back(layer_list.back());
  }
  register_module("layers", layers);
  norm = register_module("norm", RMSNorm(c.hidden_size, c.rms_norm_eps));
}

namespace {
// HF _init_weights: Linear / Embedding weights ~ N(0, initializer_range), biases 0 (norms stay 1).
void init_linear(torch::nn::Linear& l, double std) {
  torch::NoGradGuard g;
  l->weight.normal_(0.0, std);
  if (l->bias.defined()) l->bias.zero_();
}
}  // namespace

TransformerImpl::TransformerImpl(const ModelConfig& c, const HeadOptions& heads) : cfg(c) {
  validate_model_config(c, "model config");
  model = register_module("model", Decoder(c));
  {
    torch::NoGradGuard g;
    model->embed_tokens->weight.normal_(0.0, c.initializer_range);
    for (auto& layer : model->layer_list) {
      init_linear(layer->self_attn->q_proj, c.initializer_range);
      init_linear(layer->self_attn->k_proj, c.initializer_range);
      init_linear(layer->self_attn->v_proj, c.initializer_range);
      init_linear(layer->self_attn->o_proj, c.initializer_range);
      init_linear(layer->mlp->gate_proj, c.initializer_range);
      init_linear(layer->mlp->up_proj, c.initializer_range);
      init_linear(layer->mlp->down_proj, c.initializer_range);
    }
  }
  if (heads.lm_head && !c.tie_word_embeddings) {
    lm_head = register_module("lm_head", torch::nn::Linear(torch::nn::LinearOptions(c.hidden_size, c.vocab_size).bias(false)));
    init_linear(lm_head, c.initializer_range);
  }
  if (heads.value_head) add_value_head();
  if (heads.reward_head) add_reward_head();
  inv_freq = rope_inv_freq(c);
  pack_on_huge_pages(parameters());  // CPU models of 8 MB or more: decode streams the weights
}

void TransformerImpl::add_value_head() {
  if (value_head) return;
  auto w = model->embed_tokens->weight;
  value_head = register_module("value_head", torch::nn::Linear(torch::nn::LinearOptions(cfg.hidden_size, 1).bias(false)));
  value_head->to(w.device(), w.scalar_type());
  init_linear(value_head, cfg.initializer_range);
}

void TransformerImpl::add_reward_head() {
  if (score) return;
  auto w = model->embed_tokens->weight;
  score = register_module("score", torch::nn::Linear(torch::nn::LinearOptions(cfg.hidden_size, 1).bias(false)));
  score->to(w.device(), w.scalar_type());
  init_linear(score, cfg.initializer_range);
}

// ---- LoRA adapters switch -----------------------------------------------------------------------
namespace {
/// Sets LoraState::enabled for one forward and restores it after (no-op without adapters).
class AdapterScope {
 public:
  AdapterScope(LoraState* s, bool on) : s_(s), prev_(s != nullptr && s->enabled) {
    if (s_ != nullptr) s_->enabled = on;
  }
  ~AdapterScope() {
    if (s_ != nullptr) s_->enabled = prev_;
  }
  AdapterScope(const AdapterScope&) = delete;
  AdapterScope& operator=(const AdapterScope&) = delete;

 private:
  LoraState* s_;
  bool prev_;
};
}  // namespace

// ---- activation checkpointing ------------------------------------------------------------------
// LibTorch's C++ API (1.13 and 2.x) has no torch.utils.checkpoint. This is the reentrant variant:
// forward runs the layer without building a graph; backward recomputes it with grad enabled from
// the saved input and calls torch::autograd::backward on it, which accumulates the layer's
// parameter gradients into .grad directly and yields the input gradient. Like PyTorch's
// reentrant checkpoint, it therefore supports loss.backward() but not torch::autograd::grad()
// w.r.t. parameters. Recomputation is exact: the layer has no dropout or other randomness.
namespace {
struct CheckpointedLayer : public torch::autograd::Function<CheckpointedLayer> {
  // LibTorch 1.13's Function::apply rejects undefined tensor arguments, so "no mask" travels as
  // an empty placeholder and is turned back into an undefined tensor here.
  static at::Tensor unwrap_mask(const at::Tensor& m) { return m.numel() == 0 ? at::Tensor() : m; }

  // residency_ptr: the model's LayerResidency (0 = none), index: the layer's index (see backward).
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, at::Tensor x, at::Tensor cos, at::Tensor sin,
                            at::Tensor mask, at::Tensor segments, int64_t layer_ptr, int64_t residency_ptr,
                            int64_t index) {
    ctx->saved_data["layer"] = layer_ptr;
    ctx->saved_data["residency"] = residency_ptr;
    ctx->saved_data["index"] = index;
    // Backward runs outside the caller's autocast region: the recomputation re-enters it so that
    // it reproduces the forward (torch.utils.checkpoint does the same).
    ctx->saved_data["autocast"] = compat::CudaAutocast::enabled() && x.is_cuda();
    ctx->saved_data["autocast_dtype"] = static_cast<int64_t>(compat::CudaAutocast::dtype());
    auto* layer = reinterpret_cast<DecoderLayerImpl*>(layer_ptr);
    // The recomputation runs after the forward's AdapterScope has ended: it re-enters the same setting.
    const auto* lora = layer->self_attn->lora_state;
    ctx->saved_data["lora_on"] = lora == nullptr || lora->enabled;
    ctx->save_for_backward({x, cos, sin, mask, segments});
    return layer->forward(x, cos, sin, unwrap_mask(mask), nullptr, nullptr, 0, unwrap_mask(segments));
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_out) {
    auto saved = ctx->get_saved_variables();
    auto* layer = reinterpret_cast<DecoderLayerImpl*>(ctx->saved_data["layer"].toInt());
    auto x = saved[0].detach().requires_grad_(true);
    // Sharded weights (LayerResidency): whole for the recomputation and its backward, the layer's
    // gradients handed over once complete, then released. Backward runs the layers last to first,
    // so the one needed next is index - 1.
    auto* residency = reinterpret_cast<LayerResidency*>(ctx->saved_data["residency"].toInt());
    if (residency != nullptr && !residency->active()) residency = nullptr;
    const int64_t index = ctx->saved_data["index"].toInt();
    if (residency != nullptr) residency->acquire(index, index - 1);
    at::Tensor out;
    {
      torch::AutoGradMode enable(true);
      const AdapterScope adapters(layer->self_attn->lora_state, ctx->saved_data["lora_on"].toBool());
      const compat::CudaAutocast ac(x.device(), static_cast<at::ScalarType>(ctx->saved_data["autocast_dtype"].toInt()),
                                    ctx->saved_data["autocast"].toBool());
      out = layer->forward(x, saved[1], saved[2], unwrap_mask(saved[3]), nullptr, nullptr, 0, unwrap_mask(saved[4]));
    }
    torch::autograd::backward({out}, {grad_out[0]});
    if (residency != nullptr) {
      residency->gradients_ready(index);
      residency->release(index);
    }
    return {x.grad(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(),
            at::Tensor()};
  }
};
}  // namespace

// ---- Transformer handle ------------------------------------------------------------------------

Transformer::Transformer(const ModelConfig& cfg, const HeadOptions& heads)
    : cfg_(cfg), heads_(heads), impl_(std::make_shared<TransformerImpl>(cfg, heads)) {}

at::Tensor Transformer::forward_hidden(const at::Tensor& input_ids, const at::Tensor& attention_mask,
                                       const at::Tensor& position_ids, KVCache* cache) {
  TORCH_CHECK(input_ids.dim() == 2, "forward: input_ids must be [B, T], got ", input_ids.sizes());
  const int64_t b = input_ids.size(0), t = input_ids.size(1);
  const int64_t past = cache != nullptr ? cache->length : 0;
  const int64_t s = past + t;
  if (cache != nullptr) {
    TORCH_CHECK(static_cast<int64_t>(cache->k.size()) == cfg_.num_hidden_layers, "forward: cache has ",
                cache->k.size(), " layers, model has ", cfg_.num_hidden_layers);
    TORCH_CHECK(cache->k[0].size(0) == b, "forward: cache batch ", cache->k[0].size(0), " != input batch ", b);
    TORCH_CHECK(s <= cache->capacity(), "forward: cache capacity ", cache->capacity(), " < ", s, " tokens");
  }
  if (attention_mask.defined())
    TORCH_CHECK(attention_mask.dim() == 2 && attention_mask.size(0) == b && attention_mask.size(1) == s,
                "forward: attention_mask must be [B, past + T] = [", b, ", ", s, "], got ", attention_mask.sizes());
  const auto dev = input_ids.device();
  at::Tensor pos = position_ids;
  if (pos.defined()) {
    TORCH_CHECK(pos.sizes() == input_ids.sizes(), "forward: position_ids ", pos.sizes(), " must match input_ids ",
                input_ids.sizes());
  } else if (attention_mask.defined()) {
    pos = position_ids_from_mask(attention_mask).narrow(1, past, t);
  } else {
    pos = torch::arange(past, s, torch::TensorOptions().dtype(torch::kLong).device(dev)).unsqueeze(0).expand({b, t});
  }

  const compat::SingleThreaded serial(dev.is_cpu() && b * t <= kSmallForwardTokens);  // see compat.h
  const compat::CudaAutocast ac(dev, autocast_.value_or(at::kBFloat16), autocast_.has_value());
  const AdapterScope adapters(impl_->lora.get(), adapters_enabled_);
  return decode(impl_->model->embed_tokens(input_ids), attention_mask, pos, cache, /*allow_checkpointing=*/true);
}

at::Tensor Transformer::forward_hidden_packed(const at::Tensor& input_ids, const std::vector<int64_t>& seq_lens) {
  TORCH_CHECK(input_ids.dim() == 2 && input_ids.size(0) == 1, "forward_hidden_packed: input_ids must be [1, T], got ",
              input_ids.sizes());
  TORCH_CHECK(!seq_lens.empty(), "forward_hidden_packed: no sequences");
  int64_t total = 0;
  for (const int64_t len : seq_lens) {
    TORCH_CHECK(len >= 1, "forward_hidden_packed: a sequence of length ", len);
    total += len;
  }
  TORCH_CHECK(total == input_ids.size(1), "forward_hidden_packed: the lengths sum to ", total, ", input_ids has ",
              input_ids.size(1), " tokens");
  const auto dev = input_ids.device();
  // Positions restart at 0 for every sequence (as HF's position_ids for padding-free batches).
  std::vector<int64_t> pos_host;
  pos_host.reserve(static_cast<size_t>(total));
  for (const int64_t len : seq_lens)
    for (int64_t j = 0; j < len; ++j) pos_host.push_back(j);
  const auto pos = torch::tensor(pos_host, torch::kLong).to(dev).unsqueeze(0);
  const auto segments = torch::tensor(seq_lens, torch::kLong);  // stays on the CPU: read on the host
  const compat::SingleThreaded serial(dev.is_cpu() && total <= kSmallForwardTokens);
  const compat::CudaAutocast ac(dev, autocast_.value_or(at::kBFloat16), autocast_.has_value());
  const AdapterScope adapters(impl_->lora.get(), adapters_enabled_);
  return decode(impl_->model->embed_tokens(input_ids), at::Tensor(), pos, nullptr, /*allow_checkpointing=*/true,
                segments);
}

at::Tensor Transformer::forward_hidden_from_embeds(const at::Tensor& embeds, const at::Tensor& attention_mask) {
  TORCH_CHECK(embeds.dim() == 3 && embeds.size(2) == cfg_.hidden_size, "forward_hidden_from_embeds: embeds must be [B, T, ",
              cfg_.hidden_size, "], got ", embeds.sizes());
  const int64_t b = embeds.size(0), t = embeds.size(1);
  if (attention_mask.defined())
    TORCH_CHECK(attention_mask.dim() == 2 && attention_mask.size(0) == b && attention_mask.size(1) == t,
                "forward_hidden_from_embeds: attention_mask must be [B, T] = [", b, ", ", t, "], got ",
                attention_mask.sizes());
  const auto dev = embeds.device();
  const auto pos = attention_mask.defined()
                       ? position_ids_from_mask(attention_mask)
                       : torch::arange(t, torch::TensorOptions().dtype(torch::kLong).device(dev)).unsqueeze(0).expand({b, t});
  const compat::CudaAutocast ac(dev, autocast_.value_or(at::kBFloat16), autocast_.has_value());
  const AdapterScope adapters(impl_->lora.get(), adapters_enabled_);
  return decode(embeds, attention_mask, pos, nullptr, /*allow_checkpointing=*/false);
}

at::Tensor Transformer::decode(at::Tensor x, const at::Tensor& attention_mask, const at::Tensor& pos, KVCache* cache,
                               bool allow_checkpointing, const at::Tensor& segments) {
  const int64_t b = x.size(0), t = x.size(1);
  const int64_t past = cache != nullptr ? cache->length : 0;
  const int64_t s = past + t;
  const auto dev = x.device();
  auto& m = *impl_;
  auto [cos, sin] = rope_cos_sin(m.inv_freq, pos);
  cos = cos.to(x.scalar_type());  // [B, T, D]
  sin = sin.to(x.scalar_type());

  // Masks: undefined (fast causal path) only when there is no padding, no cache history and no window.
  const bool plain = !attention_mask.defined() && past == 0;
  at::Tensor keys = attention_mask.defined() ? attention_mask
                                             : torch::ones({b, s}, torch::TensorOptions().dtype(torch::kLong).device(dev));
  at::Tensor full_mask = plain ? at::Tensor() : build_attention_mask(keys, past, t, 0, x.scalar_type());
  at::Tensor window_mask;
  // Packed sequences build their (window) masks per sequence in the attention (varlen_attention).
  if (cfg_.sliding_window > 0 && !segments.defined())
    window_mask = build_attention_mask(keys, past, t, cfg_.sliding_window, x.scalar_type());

  const bool ckpt = allow_checkpointing && checkpointing_ && cache == nullptr && is_training() && torch::GradMode::is_enabled();
  // A frozen embedding (LoRA) gives the first checkpointed layer an input that needs no gradient,
  // and autograd would then never call its backward, so the adapters inside would get none: the
  // input is made a leaf that requires grad (HF's enable_input_require_grads, for the same reason).
  if (ckpt && !x.requires_grad()) x = x.detach().requires_grad_(true);
  LayerResidency* residency = m.residency != nullptr && m.residency->active() ? m.residency.get() : nullptr;
  TORCH_CHECK(residency == nullptr || ckpt || !torch::GradMode::is_enabled() ||
                  residency->allows_graph_without_checkpointing(),
              "Transformer: a forward with gradients over sharded weights (dist.sharding full) needs gradient "
              "checkpointing (model.activation_checkpointing: true), which gathers each layer again for backward");
  const int64_t layers = cfg_.num_hidden_layers;
  for (int64_t i = 0; i < layers; ++i) {
    auto& layer = m.model->layer_list[static_cast<size_t>(i)];
    const auto& mask = cfg_.layer_uses_sliding_window(i) ? window_mask : full_mask;
    if (residency != nullptr) residency->acquire(i, i + 1 < layers ? i + 1 : -1);
    if (ckpt) {
      const at::Tensor mask_arg = mask.defined() ? mask : torch::empty({0}, x.options());
      const at::Tensor seg_arg = segments.defined() ? segments : torch::empty({0}, torch::kLong);
      x = CheckpointedLayer::apply(x, cos, sin, mask_arg, seg_arg, reinterpret_cast<int64_t>(layer.get()),
                                   reinterpret_cast<int64_t>(residency), i);
    } else if (cache != nullptr) {
      x = layer->forward(x, cos, sin, mask, &cache->k[static_cast<size_t>(i)], &cache->v[static_cast<size_t>(i)], past);
    } else {
      x = layer->forward(x, cos, sin, mask, nullptr, nullptr, 0, segments);
    }
    if (residency != nullptr) residency->release(i);
  }
  if (cache != nullptr) cache->length = s;
  return m.model->norm(x);
}

void Transformer::set_layer_residency(std::shared_ptr<LayerResidency> r) { impl_->residency = std::move(r); }

LayerResidency* Transformer::layer_residency() const { return impl_->residency.get(); }

at::Tensor Transformer::lm_logits(const at::Tensor& hidden) const {
  const compat::SingleThreaded serial(hidden.device().is_cpu() &&
                                      hidden.numel() <= kSmallForwardTokens * cfg_.hidden_size);
  const compat::CudaAutocast ac(hidden.device(), autocast_.value_or(at::kBFloat16), autocast_.has_value());
  if (cfg_.tie_word_embeddings) return linear(hidden, impl_->model->embed_tokens->weight, at::Tensor());
  TORCH_CHECK(!impl_->lm_head.is_empty(), "lm_logits: this model was built without an LM head");
  return apply_linear(impl_->lm_head, hidden);
}

at::Tensor Transformer::forward(const at::Tensor& input_ids, const at::Tensor& attention_mask,
                                const at::Tensor& position_ids, KVCache* cache) {
  return lm_logits(forward_hidden(input_ids, attention_mask, position_ids, cache));
}

at::Tensor Transformer::values(const at::Tensor& hidden) const {
  TORCH_CHECK(!impl_->value_head.is_empty(), "values: this model has no value head (HeadOptions::value_head)");
  const compat::CudaAutocast ac(hidden.device(), autocast_.value_or(at::kBFloat16), autocast_.has_value());
  return impl_->value_head(hidden).squeeze(-1);
}

at::Tensor Transformer::rewards(const at::Tensor& hidden) const {
  TORCH_CHECK(!impl_->score.is_empty(), "rewards: this model has no reward head (HeadOptions::reward_head)");
  const compat::CudaAutocast ac(hidden.device(), autocast_.value_or(at::kBFloat16), autocast_.has_value());
  return impl_->score(hidden).squeeze(-1);
}

Transformer Transformer::clone() const {
  Transformer out(cfg_, heads_);
  out.to(device(), dtype());
  out.load_state_dict(state_dict(), "clone");
  out.checkpointing_ = checkpointing_;
  out.autocast_ = autocast_;
  out.source_dir_ = source_dir_;
  out.train(is_training());
  return out;
}

void Transformer::set_requires_grad(bool on) {
  for (auto& p : impl_->parameters()) p.set_requires_grad(on);
}

KVCache Transformer::make_cache(int64_t batch, int64_t capacity) const {
  KVCache c;
  const auto opts = torch::TensorOptions().dtype(dtype()).device(device());
  for (int64_t i = 0; i < cfg_.num_hidden_layers; ++i) {
    c.k.push_back(torch::zeros({batch, cfg_.num_key_value_heads, capacity, cfg_.head_dim}, opts));
    c.v.push_back(torch::zeros({batch, cfg_.num_key_value_heads, capacity, cfg_.head_dim}, opts));
  }
  return c;
}

void Transformer::add_value_head() {
  impl_->add_value_head();
  heads_.value_head = true;
}
void Transformer::add_reward_head() {
  impl_->add_reward_head();
  heads_.reward_head = true;
}

std::vector<at::Tensor> Transformer::parameters() const {
  auto all = impl_->parameters();
  if (!impl_->lora) return all;
  std::vector<at::Tensor> trained;
  for (auto& p : all)
    if (p.requires_grad()) trained.push_back(p);
  return trained;
}

std::map<std::string, at::Tensor> Transformer::named_parameters() const {
  std::map<std::string, at::Tensor> out;
  for (const auto& item : impl_->named_parameters()) out.emplace(item.key(), item.value());
  return out;
}

namespace {
bool is_adapter_name(const std::string& name) { return name.find(".lora_") != std::string::npos; }
}  // namespace

std::map<std::string, at::Tensor> Transformer::base_state_dict() const {
  std::map<std::string, at::Tensor> out;
  for (auto& [name, p] : named_parameters())
    if (!is_adapter_name(name)) out.emplace(name, p);
  return out;
}

std::map<std::string, at::Tensor> Transformer::state_dict() const {
  auto out = base_state_dict();
  if (!impl_->lora || !adapters_enabled_) return out;  // a without_adapters() handle is the base
  torch::NoGradGuard g;
  const double scale = impl_->lora->opts.scale();
  const auto adapters = adapter_parameters();
  for (const auto& [name, a] : adapters) {
    if (!name.ends_with(".lora_A")) continue;
    const std::string module = name.substr(0, name.size() - 7);
    const auto& b = adapters.at(module + ".lora_B");
    auto& w = out.at(module + ".weight");
    w = w.detach() + torch::mm(b.detach().to(torch::kFloat), a.detach().to(torch::kFloat)).mul_(scale).to(w.scalar_type());
  }
  return out;
}

std::map<std::string, at::Tensor> Transformer::adapter_parameters() const {
  std::map<std::string, at::Tensor> out;
  for (auto& [name, p] : named_parameters())
    if (is_adapter_name(name)) out.emplace(name, p);
  return out;
}

bool Transformer::has_lora() const { return impl_->lora != nullptr; }

const LoraOptions& Transformer::lora_options() const {
  TORCH_CHECK(impl_->lora, "lora_options: this model carries no adapters");
  return impl_->lora->opts;
}

Transformer Transformer::without_adapters() const {
  Transformer t = *this;
  t.adapters_enabled_ = false;
  return t;
}

void Transformer::add_lora(const LoraOptions& opts, uint64_t seed) {
  if (impl_->lora) fail("model.lora: the model already carries LoRA adapters");
  if (opts.rank < 1) fail("model.lora.rank: expected >= 1, got {}", opts.rank);
  const auto targets = opts.targets("model.lora.target_modules");
  auto& m = *impl_;
  m.lora = std::make_unique<LoraState>(LoraState{opts, true});
  torch::NoGradGuard g;
  for (auto& p : m.parameters()) p.set_requires_grad(false);  // the base is frozen
  if (m.value_head) m.value_head->weight.set_requires_grad(true);  // heads train (PEFT's modules_to_save)
  if (m.score) m.score->weight.set_requires_grad(true);
  auto gen = at::detail::createCPUGenerator(seed);
  const auto attach = [&](torch::nn::Linear& l, const std::string& name, LoraAdapter& ad) {
    if (std::find(targets.begin(), targets.end(), name) == targets.end()) return;
    const int64_t out = l->weight.size(0), in = l->weight.size(1);
    // nn.Linear's (and PEFT's lora_A) init: kaiming_uniform_(a = sqrt(5)) = U(-1/sqrt(in), 1/sqrt(in)).
    const double bound = 1.0 / std::sqrt(static_cast<double>(in));
    auto a = torch::empty({opts.rank, in}, torch::kFloat).uniform_(-bound, bound, gen).to(l->weight.options());
    auto b = torch::zeros({out, opts.rank}, l->weight.options());
    ad.a = l->register_parameter("lora_A", a);
    ad.b = l->register_parameter("lora_B", b);
  };
  for (auto& layer : m.model->layer_list) {
    auto& attn = *layer->self_attn;
    attn.lora_state = m.lora.get();
    attach(attn.q_proj, "q_proj", attn.lora[0]);
    attach(attn.k_proj, "k_proj", attn.lora[1]);
    attach(attn.v_proj, "v_proj", attn.lora[2]);
    attach(attn.o_proj, "o_proj", attn.lora[3]);
    auto& mlp = *layer->mlp;
    mlp.lora_state = m.lora.get();
    attach(mlp.gate_proj, "gate_proj", mlp.lora[0]);
    attach(mlp.up_proj, "up_proj", mlp.lora[1]);
    attach(mlp.down_proj, "down_proj", mlp.lora[2]);
  }
}

void Transformer::load_state_dict(const std::map<std::string, at::Tensor>& tensors, const std::string& where,
                                  bool allow_missing_heads) {
  const auto params = base_state_dict();  // adapters load through models/lora.h
  torch::NoGradGuard g;
  for (const auto& [name, p] : params) {
    auto it = tensors.find(name);
    if (it == tensors.end()) {
      if (allow_missing_heads && (name == "value_head.weight" || name == "score.weight")) continue;
      fail("{}: missing tensor '{}' (expected shape {})", where, name, c10::str(p.sizes()));
    }
    if (it->second.sizes() != p.sizes())
      fail("{}: tensor '{}' has shape {}, the config implies {}", where, name, c10::str(it->second.sizes()),
           c10::str(p.sizes()));
    p.copy_(it->second);
  }
  for (const auto& [name, t] : tensors) {
    if (params.count(name)) continue;
    const bool head = name == "lm_head.weight" || name == "score.weight" || name == "value_head.weight";
    const bool rotary = name.size() >= 20 && name.ends_with("rotary_emb.inv_freq");
    if (head || rotary) continue;
    fail("{}: unexpected tensor '{}' (shape {}) for a {} model with this config", where, name,
         c10::str(t.sizes()), cfg_.model_type);
  }
}

void Transformer::to(at::Device device, std::optional<at::ScalarType> dtype) {
  if (dtype) impl_->to(device, *dtype);
  else impl_->to(device);
  impl_->inv_freq = impl_->inv_freq.to(device);  // stays fp32
}

at::Device Transformer::device() const { return impl_->model->embed_tokens->weight.device(); }
at::ScalarType Transformer::dtype() const { return impl_->model->embed_tokens->weight.scalar_type(); }
void Transformer::train(bool on) { impl_->train(on); }
bool Transformer::is_training() const { return impl_->is_training(); }

}  // namespace keel::models
