// Fused CPU kernels for the transformer's elementwise blocks (RMSNorm, rotary embedding, the SwiGLU
// gate) and for the token log-probs of the LM head's logits, each one pass forward and one pass backward as an
// autograd Function (fp32, CPU, contiguous), and for the AdamW update (learner/fused_adamw.h). Eager ATen
// runs each block as 4-8 separate passes over the activations; once the
// matmuls use the right BLAS kernels (base/startup_env.h), those passes are a third of
// a CPU training step (bench/train_step_bench.cpp).
//
// Every function falls back to the plain ATen composite (the reference the fused kernels are
// tested against, models/fused_cpu_test.cpp) for other devices and dtypes, non-contiguous inputs,
// and while a compat::TwiceDifferentiableAttention guard is alive: the fused backwards are not
// themselves differentiable.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <vector>

#include "models/fused_cpu_kernels.h"  // AdamWCoefficients

namespace keel::models {

/// HF LlamaRMSNorm: weight * (x * rsqrt(mean(x^2, -1) + eps)), computed in fp32 and cast back.
/// x [..., H], weight [H].
at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps);

/// Rotary embedding (HF rotate_half): x * cos + rotate_half(x) * sin, rotate_half(x) = cat(-x2, x1).
/// x [B, T, H, D] (heads not yet moved in front of time); cos, sin [B, T, D].
at::Tensor rotary(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin);

/// SwiGLU gate: silu(gate) * up (same shapes), one pass forward, one backward.
at::Tensor swiglu(const at::Tensor& gate, const at::Tensor& up);

/// log softmax(logits / temperature)[target] over the last dim, without the [..., V] log-softmax:
/// one pass forward (logsumexp and the target's logit per row), one pass backward
/// (g * (onehot - softmax) / temperature). logits [..., V] fp32, targets [...] int64 in [0, V).
/// What sequence_logprobs computes for the learner.
at::Tensor token_logprobs(const at::Tensor& logits, const at::Tensor& targets, double temperature);

/// Causal softmax over the last dim of fp32 CPU scores [N, T, S], in place: row i of each T sees
/// keys 0 .. i + S - T (queries are the last T of S positions), the keys after become 0. Its
/// backward returns dS = P * (dP - rowsum(P * dP)) over the visible keys, 0 after; dP there is not
/// read. The causal path of 1.13's CPU attention (compat.cpp ExplicitAttention). Contiguous only.
void causal_softmax_(at::Tensor& scores);
at::Tensor causal_softmax_backward(const at::Tensor& dp, const at::Tensor& probs);

/// torch::linear(x, weight, bias) (bias may be undefined), x [..., in], weight [out, in]. For at
/// most kernels::kSmallLinearMaxRows rows of fp32 CPU contiguous input with nothing to
/// differentiate (a decode step under no-grad) it is one streaming pass over the weight
/// (kernels::small_linear_rows, about twice OpenBLAS's sgemv here), split over the intra-op
/// threads by output; everything else is torch::linear.
at::Tensor linear(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias);

/// Attention of a decode step with nothing to differentiate: softmax(scale * q k^T + mask) v for
/// q [B, Hq, T, D], k, v [B, Hkv, S, D] (query head h reads key/value head h / (Hq / Hkv), as
/// HF's repeat_kv), mask additive [B or 1, 1, T, S]; returns [B, T, Hq, D] contiguous (heads after
/// time: o_proj's input). One pass per query row (kernels::attention_rows), reading q, k, v and the
/// mask in place: a cached step's keys and values straight from the cache, where the general path
/// copies the mask per head and runs two GEMMs and a softmax as separate ATen ops. Applies to fp32
/// CPU tensors with a unit last stride, T <= kSmallAttentionMaxRows and no autograd; otherwise it
/// returns an undefined tensor and the caller takes the general path.
inline constexpr int64_t kSmallAttentionMaxRows = 8;
at::Tensor small_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask,
                           double scale);

/// Moves CPU parameters of one dtype, `min_bytes` or more in all, into one arena of 2 MiB pages
/// (madvise MADV_HUGEPAGE; each tensor 64-byte aligned, values unchanged) through set_data, so
/// that the tensors themselves stay the same objects (modules, optimizers keep them). A decode
/// step streams every weight once: on 4 KiB pages that is a TLB miss per page, and a Zen 3 core
/// read the model's weights at 12.9-14.7 GB/s that way against 16.5-18.2 on 2 MiB pages. Anything
/// else (other devices, mixed dtypes, too small, no memory) is left as it is; returns whether
/// it packed.
bool pack_on_huge_pages(const std::vector<at::Tensor>& params, int64_t min_bytes = int64_t{8} << 20);

/// An uninitialised fp32/any-dtype CPU tensor of `sizes` on 2 MiB-aligned memory advised as huge
/// pages (madvise MADV_HUGEPAGE; advice only), for buffers read in many small scattered pieces:
/// the paged KV cache's blocks (rollout_engine.cpp), where 4 KiB pages cost a TLB miss per block
/// and head. Pages are committed on first touch, as with any allocation.
at::Tensor empty_on_huge_pages(at::IntArrayRef sizes, at::ScalarType dtype);

/// at::parallel_for's split over ATen's intra-op threads (at::get_num_threads(); one inside a
/// parallel region), run by models/parallel.h: in keel's sources, which are not compiled with
/// OpenMP, at::parallel_for itself runs every range on the calling thread.
void parallel_for(int64_t begin, int64_t end, int64_t grain, const std::function<void(int64_t, int64_t)>& f);

/// fp32, CPU, contiguous: the tensors the fused kernels take (and FusedAdamW's test for its own path).
bool fused_cpu_tensor(const at::Tensor& t);

/// One AdamW update of one fp32 CPU tensor in one pass (see AdamWCoefficients); all four
/// contiguous, same number of elements (checked).
void adamw_update(at::Tensor& p, const at::Tensor& g, at::Tensor& m, at::Tensor& v, const AdamWCoefficients& c);

/// The plain ATen composites (what the fused kernels must equal; also the fallback).
at::Tensor rms_norm_reference(const at::Tensor& x, const at::Tensor& weight, double eps);
at::Tensor swiglu_reference(const at::Tensor& gate, const at::Tensor& up);
at::Tensor token_logprobs_reference(const at::Tensor& logits, const at::Tensor& targets, double temperature);
at::Tensor rotary_reference(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin);

}  // namespace keel::models
