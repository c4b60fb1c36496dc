// The decoder from input embeddings (see embeds_forward.h). Mirrors the no-cache branch of
// Transformer::forward_hidden (transformer.cpp); keep the two in step.
#include "models/embeds_forward.h"

#include <torch/torch.h>

#include "models/transformer_impl.h"

namespace keel::models {

at::Tensor embed_tokens(const Transformer& model, const at::Tensor& input_ids) {
  TORCH_CHECK(input_ids.dim() == 2, "embed_tokens: input_ids must be [B, T], got ", input_ids.sizes());
  return model.impl()->model->embed_tokens(input_ids);
}

at::Tensor forward_hidden_from_embeds(Transformer& model, const at::Tensor& embeds, const at::Tensor& attention_mask) {
  const auto& cfg = model.config();
  TORCH_CHECK(embeds.dim() == 3 && embeds.size(2) == cfg.hidden_size, "forward_hidden_from_embeds: embeds must be [B, T, ",
              cfg.hidden_size, "], got ", embeds.sizes());
  const int64_t b = embeds.size(0), t = embeds.size(1);
  if (attention_mask.defined())
    TORCH_CHECK(attention_mask.dim() == 2 && attention_mask.size(0) == b && attention_mask.size(1) == t,
                "forward_hidden_from_embeds: attention_mask must be [B, T] = [", b, ", ", t, "], got ",
                attention_mask.sizes());
  const auto dev = embeds.device();
  const auto pos = attention_mask.defined()
                       ? position_ids_from_mask(attention_mask)
                       : torch::arange(t, torch::TensorOptions().dtype(torch::kLong).device(dev)).unsqueeze(0).expand({b, t});
  auto& m = *model.impl();
  auto x = embeds;
  auto [cos, sin] = rope_cos_sin(m.inv_freq, pos);
  cos = cos.to(x.scalar_type()).unsqueeze(1);  // [B, 1, T, D]
  sin = sin.to(x.scalar_type()).unsqueeze(1);
  const at::Tensor keys = attention_mask.defined()
                              ? attention_mask
                              : torch::ones({b, t}, torch::TensorOptions().dtype(torch::kLong).device(dev));
  const at::Tensor full_mask =
      attention_mask.defined() ? build_attention_mask(keys, 0, t, 0, x.scalar_type()) : at::Tensor();
  at::Tensor window_mask;
  if (cfg.sliding_window > 0) window_mask = build_attention_mask(keys, 0, t, cfg.sliding_window, x.scalar_type());
  for (int64_t i = 0; i < cfg.num_hidden_layers; ++i) {
    auto& layer = m.model->layer_list[static_cast<size_t>(i)];
    const auto& mask = cfg.layer_uses_sliding_window(i) ? window_mask : full_mask;
    x = layer->forward(x, cos, sin, mask, nullptr, nullptr, 0);
  }
  return m.model->norm(x);
}

}  // namespace keel::models
