// The decoder from input embeddings (see embeds_forward.h): Transformer::forward_hidden_from_embeds,
// which shares forward_hidden's body.
#include "models/embeds_forward.h"

#include <torch/torch.h>

#include "models/transformer_impl.h"

namespace keel::models {

at::Tensor embed_tokens(const Transformer& model, const at::Tensor& input_ids) {
  TORCH_CHECK(input_ids.dim() == 2, "embed_tokens: input_ids must be [B, T], got ", input_ids.sizes());
  return model.impl()->model->embed_tokens(input_ids);
}

at::Tensor forward_hidden_from_embeds(Transformer& model, const at::Tensor& embeds, const at::Tensor& attention_mask) {
  return model.forward_hidden_from_embeds(embeds, attention_mask);
}

}  // namespace keel::models
