// See compat.h: the LibTorch 1.13 / 2.x switches, compiled in one translation unit.
#include "models/compat.h"

#include <torch/torch.h>

#if defined(KEEL_WITH_CUDA)
#include <torch/cuda.h>
#endif

namespace keel::compat {

at::Tensor scaled_dot_product_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                        const at::Tensor& attn_mask, bool is_causal, double scale) {
#if KEEL_TORCH_AT_LEAST(2, 1)
  // 2.1+ takes an explicit scale.
  return at::scaled_dot_product_attention(q, k, v, attn_mask.defined() ? c10::optional<at::Tensor>(attn_mask) : c10::nullopt,
                                          /*dropout_p=*/0.0, /*is_causal=*/is_causal && !attn_mask.defined(), scale);
#else
  // 1.13: explicit attention in the input dtype with an fp32 softmax.
  auto scores = torch::matmul(q, k.transpose(-2, -1)) * scale;  // [B, H, T, S]
  if (attn_mask.defined()) {
    scores = scores + attn_mask;
  } else if (is_causal) {
    const auto t = q.size(-2), s = k.size(-2);
    auto causal = torch::ones({t, s}, q.options().dtype(torch::kBool)).tril(s - t);
    scores = scores.masked_fill(causal.logical_not(), -std::numeric_limits<float>::infinity());
  }
  auto probs = torch::softmax(scores.to(torch::kFloat), -1).to(q.scalar_type());
  return torch::matmul(probs, v);
#endif
}

bool cuda_available() { return torch::cuda::is_available(); }
int cuda_device_count() { return static_cast<int>(torch::cuda::device_count()); }

bool nccl_available() {
#if defined(USE_C10D_NCCL) || defined(KEEL_WITH_CUDA)
  return torch::cuda::is_available();
#else
  return false;
#endif
}

}  // namespace keel::compat
