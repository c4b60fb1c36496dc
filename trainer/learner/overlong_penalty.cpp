// DAPO soft overlong punishment (spec §2.3). See overlong_penalty.h.
#include "trainer/learner/overlong_penalty.h"

#include <algorithm>

namespace keel::learner {

namespace {
void check(const OverlongOptions& o) {
  TORCH_CHECK(o.buffer_len >= 1, "overlong_penalty: buffer_len must be >= 1, got ", o.buffer_len);
  TORCH_CHECK(o.max_len >= o.buffer_len, "overlong_penalty: max_len (", o.max_len, ") must be >= buffer_len (",
              o.buffer_len, ")");
  TORCH_CHECK(o.penalty_factor >= 0, "overlong_penalty: penalty_factor must be >= 0, got ", o.penalty_factor);
}
}  // namespace

double overlong_penalty(int64_t length, const OverlongOptions& opts) {
  check(opts);
  const double expected = static_cast<double>(opts.max_len - opts.buffer_len);  // L_exp
  const double over = static_cast<double>(length) - expected;
  return std::min(-over / static_cast<double>(opts.buffer_len) * opts.penalty_factor, 0.0);
}

torch::Tensor overlong_penalty(const torch::Tensor& lengths, const OverlongOptions& opts) {
  check(opts);
  TORCH_CHECK(lengths.dim() == 1, "overlong_penalty: lengths must be [N], got ", lengths.sizes());
  const torch::Tensor l = lengths.is_floating_point() ? lengths : lengths.to(torch::kDouble);
  const double expected = static_cast<double>(opts.max_len - opts.buffer_len);
  return (-(l - expected) / static_cast<double>(opts.buffer_len) * opts.penalty_factor).clamp_max(0.0);
}

}  // namespace keel::learner
