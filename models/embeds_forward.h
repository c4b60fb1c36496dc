// The decoder run from input embeddings instead of token ids (HF's inputs_embeds): what a loss
// needs that differentiates with respect to the inputs themselves — the gradient penalty of a
// discriminator-style reward model (spec/rewards.md D6) interpolates two sequences' embeddings.
// No KV cache, no gradient checkpointing (its recomputation is not twice differentiable); wrap the
// call in compat::TwiceDifferentiableAttention when the result's gradient is differentiated again.
// Deliberately not here: the token-id forward (transformer.h), sampling.
//
// Shape legend: B batch, T tokens, H hidden.
#pragma once

#include <ATen/core/Tensor.h>

#include "models/transformer.h"

namespace keel::models {

/// Token embeddings [B, T, H] of input_ids [B, T] (model.embed_tokens, differentiable).
at::Tensor embed_tokens(const Transformer& model, const at::Tensor& input_ids);

/// Final-normed hidden states [B, T, H], as Transformer::forward_hidden, from embeds [B, T, H] (the
/// model's dtype and device). attention_mask [B, T] 0/1 (left padding; positions from the mask) or
/// undefined (all real, plain causal).
at::Tensor forward_hidden_from_embeds(Transformer& model, const at::Tensor& embeds, const at::Tensor& attention_mask = {});

}  // namespace keel::models
