// Entropy from logits, chunked over rows (spec §1.5). See entropy.h.
#include "trainer/learner/entropy.h"

#include <vector>

namespace keel::learner {

torch::Tensor entropy_from_logits(const torch::Tensor& logits, int64_t chunk_rows) {
  TORCH_CHECK(logits.dim() >= 1, "entropy_from_logits: logits must be [..., V], got ", logits.sizes());
  TORCH_CHECK(logits.is_floating_point(), "entropy_from_logits: logits must be floating, got ", logits.scalar_type());
  const int64_t vocab = logits.size(-1);
  TORCH_CHECK(vocab > 0, "entropy_from_logits: empty vocabulary dimension");
  std::vector<int64_t> out_shape(logits.sizes().begin(), logits.sizes().end() - 1);
  const torch::Tensor flat = logits.reshape({-1, vocab});  // [R, V]
  const int64_t rows = flat.size(0);
  const auto compute_type = logits.scalar_type() == torch::kDouble ? torch::kDouble : torch::kFloat;
  const int64_t step = chunk_rows > 0 ? chunk_rows : std::max<int64_t>(rows, 1);
  std::vector<torch::Tensor> parts;
  for (int64_t start = 0; start < rows; start += step) {
    const torch::Tensor z = flat.narrow(0, start, std::min(step, rows - start)).to(compute_type);  // [r, V]
    const torch::Tensor lse = torch::logsumexp(z, -1);                                        // [r]
    const torch::Tensor p = torch::softmax(z, -1);                                            // [r, V]
    parts.push_back(lse - (p * z).sum(-1));
  }
  const torch::Tensor h = parts.empty() ? torch::zeros({0}, flat.options().dtype(compute_type)) : torch::cat(parts);
  return h.reshape(out_shape);
}

}  // namespace keel::learner
